/**
 * The global machine index, `$VMENV_HOME/machines.json`: every machine `up` made, so
 * that `global-status`, `prune` and `box remove` find them from anywhere:
 *
 *   { "machines": [ { "id": "…", "project": "/path/to/project", "machine": "default",
 *                     "box": { "name": "vmenv/tiny", "version": "1.0.0" },
 *                     "uri": "qemu:///session", "domain": "project_default_ab12cd",
 *                     "state": "running" } ] }
 *
 * `state` is informative only: before removing a box that machines use, the domain's
 * real state is asked from libvirt.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { vmenvHome, type HomeOptions } from './home.js';
import { withFileLock } from '../util/file-lock.js';
import { writeFileAtomic } from '../util/atomic.js';

export interface MachineIndexEntry {
  id: string;
  project: string;
  machine: string;
  box: { name: string; version: string };
  uri: string;
  domain: string;
  state?: string;
}

export function machineIndexPath(options: HomeOptions = {}): string {
  return join(options.home ?? vmenvHome(), 'machines.json');
}

/** The machines in the global index; none when it does not exist yet. */
export async function readMachineIndex(options: HomeOptions = {}): Promise<MachineIndexEntry[]> {
  const path = machineIndexPath(options);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UserError(`The machine index ${path} cannot be read: ${(err as Error).message}`, {
      hint: 'vmenv cannot tell which machines use which boxes. Fix or remove that file (vmenv rebuilds it as machines are brought up).',
      cause: err,
    });
  }
  const machines = (raw as { machines?: unknown }).machines;
  if (!Array.isArray(machines)) {
    throw new UserError(`The machine index ${path} has no "machines" list.`, {
      hint: 'vmenv cannot tell which machines use which boxes. Fix or remove that file.',
    });
  }
  return machines.filter((m): m is MachineIndexEntry => {
    const e = m as Partial<MachineIndexEntry> | null;
    return typeof e === 'object' && e !== null && typeof e.box === 'object' && e.box !== null && typeof e.box.name === 'string';
  });
}

/** Machines that use the box (a version of it, or any version when version is undefined). */
export function machinesUsing(index: readonly MachineIndexEntry[], name: string, version?: string): MachineIndexEntry[] {
  return index.filter((m) => m.box.name === name && (version === undefined || String(m.box.version) === version));
}

export function describeMachine(m: MachineIndexEntry): string {
  return `${m.machine} (${m.project})`;
}


/**
 * Changes the global machine index under its lock, writing it atomically; a change that
 * returns undefined leaves the file as it is.
 */
async function changeIndex(
  change: (entries: MachineIndexEntry[]) => MachineIndexEntry[] | undefined | Promise<MachineIndexEntry[] | undefined>,
  options: HomeOptions = {},
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
export function registerMachine(entry: MachineIndexEntry, options: HomeOptions = {}): Promise<MachineIndexEntry[]> {
  return changeIndex((entries) => [...entries.filter((e) => e.id !== entry.id), entry], options);
}

export function unregisterMachine(id: string, options: HomeOptions = {}): Promise<MachineIndexEntry[]> {
  return changeIndex((entries) => entries.filter((e) => e.id !== id), options);
}

/**
 * Drops the entries for which `isGone` says the project or the domain vanished, and
 * returns the ones it dropped. The index is rewritten only when something is dropped.
 */
export async function pruneMachineIndex(
  isGone: (e: MachineIndexEntry) => Promise<boolean>,
  options: HomeOptions = {},
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
