import type { MachineConfig, ProjectConfig, SuspendMode } from '../config/types.js';
import { suspendMachine, type SuspendOutcome } from '../lifecycle/suspend.js';
import { eachMachineLocked } from './machine-batch.js';

export interface SuspendProjectOptions {
  signal: AbortSignal;
  parallel?: boolean | undefined;
  /** How to suspend, instead of each machine's suspend_mode. */
  mode?: SuspendMode | undefined;
  /** Told each machine's outcome as it is suspended. */
  onSuspended?: ((machine: string, how: SuspendOutcome) => void) | undefined;
}

/** `vmenv suspend`: pauses each machine, or saves its memory to disk. */
export function suspendProject(project: ProjectConfig, machines: readonly MachineConfig[], options: SuspendProjectOptions): Promise<void> {
  const { signal, mode } = options;
  return eachMachineLocked(project, machines, 'suspend', { signal, parallel: options.parallel, onResult: options.onSuspended }, (h) =>
    suspendMachine(h, mode ?? h.machine.suspend_mode),
  );
}
