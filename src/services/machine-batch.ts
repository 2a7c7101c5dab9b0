import type { MachineConfig, ProjectConfig } from '../config/types.js';
import type { MachineHandle } from '../hosts/handle.js';
import { withAnsibleBatch, type AnsibleBatch } from '../provision/provision.js';
import { forEachMachine } from './batch.js';
import { withProjectLock } from './project.js';

export interface MachineBatchOptions<T> {
  signal: AbortSignal;
  /** All machines at once instead of one after another. */
  parallel?: boolean | undefined;
  /** Told each machine's result as soon as it has one (in parallel: as the machines finish). */
  onResult?: ((machine: string, result: T) => void) | undefined;
}

/** Runs `work` on each machine (see forEachMachine) holding the project's lock for `purpose` (the verb, shown to a command that waits). */
export function eachMachineLocked<T>(
  project: ProjectConfig,
  machines: readonly MachineConfig[],
  purpose: string,
  options: MachineBatchOptions<T>,
  work: (h: MachineHandle) => Promise<T>,
): Promise<void> {
  return withProjectLock(project, purpose, options.signal, () => eachMachine(project, machines, options, work));
}

function eachMachine<T>(project: ProjectConfig, machines: readonly MachineConfig[], options: MachineBatchOptions<T>, work: (h: MachineHandle) => Promise<T>): Promise<void> {
  const { signal, parallel, onResult } = options;
  return forEachMachine(project, machines, { signal, parallel }, async (h) => {
    // Not `onResult?.(…, await work(h))`: without a listener that would skip the work itself.
    const result = await work(h);
    onResult?.(h.machine.name, result);
  });
}

/**
 * eachMachineLocked for verbs that run provisioners: the ansible provisioners with
 * `limit: all` are collected across the machines and run once at the end.
 */
export function eachMachineProvisioning<T>(
  project: ProjectConfig,
  machines: readonly MachineConfig[],
  purpose: string,
  options: MachineBatchOptions<T>,
  work: (h: MachineHandle, ansibleBatch: AnsibleBatch) => Promise<T>,
): Promise<void> {
  const { signal } = options;
  // The lock is held until the batched ansible run at the end is done too.
  return withProjectLock(project, purpose, signal, () =>
    withAnsibleBatch(project, { signal }, (ansibleBatch) => eachMachine(project, machines, options, (h) => work(h, ansibleBatch))),
  );
}
