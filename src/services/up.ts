import type { MachineConfig, ProjectConfig } from '../config/types.js';
import { upMachine } from '../lifecycle/up.js';
import { bringUpEachMachine, type BringUpOptions } from './bring-up-batch.js';

export interface UpProjectOptions extends BringUpOptions {
  /** Keep what a failed first `up` made (`--no-destroy-on-error`). */
  keepOnError?: boolean | undefined;
}

/** `vmenv up`: creates or starts each machine, then syncs and provisions it. */
export function upProject(project: ProjectConfig, machines: readonly MachineConfig[], options: UpProjectOptions): Promise<void> {
  const { signal } = options;
  return bringUpEachMachine(project, machines, 'up', options, (h) => upMachine(h, { signal, keepOnError: options.keepOnError === true }));
}
