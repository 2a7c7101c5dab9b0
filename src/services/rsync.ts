import type { MachineConfig, ProjectConfig } from '../config/types.js';
import { withMachineSession } from '../access/ssh-access.js';
import { syncFolders } from '../sync/sync.js';
import { eachMachineLocked } from './machine-batch.js';

export interface RsyncProjectOptions {
  signal: AbortSignal;
  /** Told how many folders were synced into each machine, as each is done. */
  onSynced?: ((machine: string, folders: number) => void) | undefined;
}

/** `vmenv rsync`: copies the rsync synced folders into each running machine, one after another. */
export function rsyncProject(project: ProjectConfig, machines: readonly MachineConfig[], options: RsyncProjectOptions): Promise<void> {
  const { signal } = options;
  return eachMachineLocked(project, machines, 'rsync', { signal, onResult: options.onSynced }, (h) =>
    withMachineSession(h, signal, (session) => syncFolders(h, session, signal)),
  );
}
