import type { MachineConfig, ProjectConfig } from '../config/types.js';
import { resumeMachine } from '../lifecycle/suspend.js';
import { eachMachineLocked } from './machine-batch.js';

export type ResumeOutcome = Awaited<ReturnType<typeof resumeMachine>>;

export interface ResumeProjectOptions {
  signal: AbortSignal;
  parallel?: boolean | undefined;
  /** Told each machine's outcome as it is resumed. */
  onResumed?: ((machine: string, how: ResumeOutcome) => void) | undefined;
}

/** `vmenv resume`: continues each suspended machine and waits until SSH answers. */
export function resumeProject(project: ProjectConfig, machines: readonly MachineConfig[], options: ResumeProjectOptions): Promise<void> {
  const { signal } = options;
  return eachMachineLocked(project, machines, 'resume', { signal, parallel: options.parallel, onResult: options.onResumed }, (h) => resumeMachine(h, { signal }));
}
