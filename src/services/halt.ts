import type { MachineConfig, ProjectConfig } from '../config/types.js';
import { haltMachine, type HaltOutcome } from '../lifecycle/halt.js';
import { eachMachineLocked } from './machine-batch.js';


export interface HaltProjectOptions {
  signal: AbortSignal;
  parallel?: boolean | undefined;
  /** Power off at once instead of a graceful shutdown. */
  force?: boolean | undefined;
  /** Seconds to wait for a graceful shutdown, instead of each machine's shutdown.timeout. */
  timeoutSeconds?: number | undefined;
  /** What halt did on the way ("the guest agent shut it down", a fallback and why). */
  onNote?: ((machine: string, note: string) => void) | undefined;
  /** Told each machine's outcome as it is halted. */
  onHalted?: ((machine: string, how: HaltOutcome) => void) | undefined;
}

/** `vmenv halt`: shuts each machine down, gracefully as shutdown.mode says or forced. */
export function haltProject(project: ProjectConfig, machines: readonly MachineConfig[], options: HaltProjectOptions): Promise<void> {
  const { signal, onNote, timeoutSeconds } = options;
  const chosen = timeoutSeconds === undefined ? machines : machines.map((m) => ({ ...m, shutdown: { ...m.shutdown, timeout: timeoutSeconds } }));
  return eachMachineLocked(project, chosen, 'halt', { signal, parallel: options.parallel, onResult: options.onHalted }, (h) =>
    haltMachine(h, { force: options.force === true, signal, onNote: (note) => onNote?.(h.machine.name, note) }),
  );
}
