import type { MachineConfig, ProjectConfig } from '../config/types.js';
import { withMachineSession } from '../access/ssh-access.js';
import { provisionMachine } from '../provision/provision.js';
import { eachMachineProvisioning } from './machine-batch.js';

export interface ProvisionProjectOptions {
  signal: AbortSignal;
  /** --provision-with: run only these provisioners, by name or type. */
  only?: readonly string[] | undefined;
  /** Told how many provisioners ran on each machine, as each is done. */
  onProvisioned?: ((machine: string, ran: number) => void) | undefined;
}

/** `vmenv provision`: runs the provisioners on each running machine, one machine after another. */
export function provisionProject(project: ProjectConfig, machines: readonly MachineConfig[], options: ProvisionProjectOptions): Promise<void> {
  const { signal } = options;
  return eachMachineProvisioning(project, machines, 'provision', { signal, onResult: options.onProvisioned }, (h, ansibleBatch) =>
    withMachineSession(h, signal, (session) => provisionMachine(h, session, { signal, provision: true, only: options.only ?? [], ansibleBatch })),
  );
}
