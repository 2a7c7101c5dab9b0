import type { MachineConfig, ProjectConfig } from '../config/types.js';
import type { MachineHandle } from '../hosts/handle.js';
import { forEachMachine } from './batch.js';
import { withProjectLock } from './project.js';

/** What a verb did to one machine. */
export interface MachineResult<T> {
  machine: string;
  result: T;
}

export interface MachineBatchOptions<T> {
  signal: AbortSignal;
  /** All machines at once instead of one after another. */
  parallel?: boolean | undefined;
  /** Told each machine's result as soon as it has one (in parallel: as the machines finish). */
  onResult?: ((machine: string, result: T) => void) | undefined;
}

/** Runs `work` on each machine (see forEachMachine); returns the results in the order they came. */
export async function eachMachine<T>(
  project: ProjectConfig,
  machines: readonly MachineConfig[],
  options: MachineBatchOptions<T>,
  work: (h: MachineHandle) => Promise<T>,
): Promise<MachineResult<T>[]> {
  const results: MachineResult<T>[] = [];
  await forEachMachine(project, machines, { signal: options.signal, parallel: options.parallel }, async (h) => {
    const result = await work(h);
    results.push({ machine: h.machine.name, result });
    options.onResult?.(h.machine.name, result);
  });
  return results;
}

/** eachMachine holding the project's lock for `purpose` (the verb, shown to a command that waits). */
export function eachMachineLocked<T>(
  project: ProjectConfig,
  machines: readonly MachineConfig[],
  purpose: string,
  options: MachineBatchOptions<T>,
  work: (h: MachineHandle) => Promise<T>,
): Promise<MachineResult<T>[]> {
  return withProjectLock(project, purpose, options.signal, () => eachMachine(project, machines, options, work));
}
