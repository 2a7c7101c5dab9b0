import { withFileLock } from '../util/file-lock.js';
import { machineIndexPath, readMachineIndex, type MachineIndexEntry, type StoreOptions } from '../box/store.js';
import { writeFileAtomic } from '../util/atomic.js';

export type { MachineIndexEntry };

/**
 * Changes the global machine index under its lock, writing it atomically; a change that
 * returns undefined leaves the file as it is.
 */
async function changeIndex(
  change: (entries: MachineIndexEntry[]) => MachineIndexEntry[] | undefined | Promise<MachineIndexEntry[] | undefined>,
  options: StoreOptions = {},
): Promise<MachineIndexEntry[]> {
  const path = machineIndexPath(options);
  return withFileLock(
    `${path}.lock`,
    async () => {
      const current = await readMachineIndex(options);
      const next = await change(current);
      if (next === undefined) return current;
      await writeFileAtomic(path, `${JSON.stringify({ machines: next }, null, 2)}\n`);
      return next;
    },
    { purpose: 'updating the machine index', timeoutMs: 30_000 },
  );
}

/** Adds or replaces (by id) a machine in the index that `vmenv global-status` and `box remove` read. */
export function registerMachine(entry: MachineIndexEntry, options: StoreOptions = {}): Promise<MachineIndexEntry[]> {
  return changeIndex((entries) => [...entries.filter((e) => e.id !== entry.id), entry], options);
}

export function unregisterMachine(id: string, options: StoreOptions = {}): Promise<MachineIndexEntry[]> {
  return changeIndex((entries) => entries.filter((e) => e.id !== id), options);
}

/**
 * Drops the entries for which `isGone` says the project or the domain vanished, and
 * returns the ones it dropped. The index is rewritten only when something is dropped.
 */
export async function pruneMachineIndex(
  isGone: (e: MachineIndexEntry) => Promise<boolean>,
  options: StoreOptions = {},
): Promise<MachineIndexEntry[]> {
  const dropped: MachineIndexEntry[] = [];
  await changeIndex(async (entries) => {
    const kept: MachineIndexEntry[] = [];
    for (const e of entries) {
      if (await isGone(e)) dropped.push(e);
      else kept.push(e);
    }
    return dropped.length > 0 ? kept : undefined;
  }, options);
  return dropped;
}
