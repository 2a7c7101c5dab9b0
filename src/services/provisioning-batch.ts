import type { MachineConfig, ProjectConfig } from '../config/types.js';
import type { MachineHandle } from '../hosts/handle.js';
import { withAnsibleBatch, type AnsibleBatch } from '../provision/provision.js';
import { eachMachine, type MachineBatchOptions, type MachineResult } from './machine-batch.js';
import { withProjectLock } from './project.js';

/**
 * eachMachine holding the project's lock, for verbs that run provisioners: the ansible
 * provisioners with `limit: all` are collected across the machines and run once at the end.
 */
export async function eachMachineProvisioning<T>(
  project: ProjectConfig,
  machines: readonly MachineConfig[],
  purpose: string,
  options: MachineBatchOptions<T>,
  work: (h: MachineHandle, ansibleBatch: AnsibleBatch) => Promise<T>,
): Promise<MachineResult<T>[]> {
  const { signal } = options;
  return withProjectLock(project, purpose, signal, async () => {
    let results: MachineResult<T>[] = [];
    await withAnsibleBatch(project, { signal }, async (ansibleBatch) => {
      results = await eachMachine(project, machines, options, (h) => work(h, ansibleBatch));
    });
    return results;
  });
}
