import type { MachineConfig, ProjectConfig } from '../config/types.js';
import type { MachineHandle } from '../hosts/handle.js';
import { bringUpAndProvision } from '../lifecycle/bring-up.js';
import type { Reached } from '../lifecycle/up-context.js';
import { eachMachineProvisioning } from './machine-batch.js';

export interface BringUpOptions {
  signal: AbortSignal;
  parallel?: boolean | undefined;
  /** --provision (true), --no-provision (false), or neither (the verb's default). */
  provision?: boolean | undefined;
  /** --provision-with: run only these provisioners, by name or type. */
  only?: readonly string[] | undefined;
}

/**
 * What `up` and `reload` share: under the project's lock, each machine brought up by
 * `bringUp`, then its folders synced and its provisioners run (bringUpAndProvision).
 */
export async function bringUpEachMachine(
  project: ProjectConfig,
  machines: readonly MachineConfig[],
  purpose: string,
  options: BringUpOptions,
  bringUp: (h: MachineHandle) => Promise<Reached>,
): Promise<void> {
  const { signal } = options;
  await eachMachineProvisioning(project, machines, purpose, { signal, parallel: options.parallel }, (h, ansibleBatch) =>
    bringUpAndProvision(h, () => bringUp(h), { signal, provision: options.provision, only: options.only ?? [], ansibleBatch }),
  );
}
