/**
 * Removing boxes (`vmenv box remove`): a box's volumes are deleted from every pool
 * it was uploaded to, then the box from the store; not while machines use it.
 */
import { mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, UserError } from '../errors.js';
import { DomainState, domainStateName, isNotFound, openLibvirt, type DomainRef, type StoragePoolRef, type StorageVolRef } from '../libvirt/index.js';
import { describeMachine, machinesUsing, readMachineIndex, type MachineIndexEntry } from '../project/machine-index.js';
import { withFileLock } from '../util/file-lock.js';
import { boxDir, boxesDir, boxLockPath, escapeBoxName, tmpDir, tmpName, type BoxRef, type StoreOptions } from './store-paths.js';
import { boxVersions, listBoxes } from './stored-boxes.js';
import { forgetUploadsUnlocked, readUploads, type BoxUpload } from './upload-records.js';
import { errorMessage } from '../util/format.js';

/** The libvirt calls `box remove` makes (LibvirtClient has them all). */
export interface BoxLibvirt {
  storagePoolLookupByName(name: string): Promise<StoragePoolRef>;
  storageVolLookupByName(pool: StoragePoolRef, name: string): Promise<StorageVolRef>;
  storageVolDelete(vol: StorageVolRef, flags?: number): Promise<void>;
  domainLookupByName(name: string): Promise<DomainRef>;
  domainGetState(d: DomainRef): Promise<{ state: number; reason: number }>;
  close(): Promise<void>;
}

export type LibvirtOpener = (uri: string, signal?: AbortSignal) => Promise<BoxLibvirt>;

const defaultOpener: LibvirtOpener = (uri, signal) => {
  const timeout = AbortSignal.timeout(20_000);
  return openLibvirt(uri, { keepalive: false, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
};

export interface RemoveBoxOptions extends StoreOptions {
  /** Remove this version (needed when several are stored, unless `all`). */
  version?: string;
  all?: boolean;
  /** Remove even though machines use the box, as long as none of them is running. */
  force?: boolean;
  signal?: AbortSignal;
  /** How to reach libvirt (default: openLibvirt). */
  openLibvirt?: LibvirtOpener;
  /** Longest wait for another process working on the box (default 2 min). */
  lockTimeoutMs?: number;
}

export interface RemoveBoxResult {
  removed: BoxRef[];
  /** Volumes deleted from pools. */
  volumesDeleted: BoxUpload[];
  /** Volumes (or pools) that were already gone. */
  volumesMissing: BoxUpload[];
  /** Machines that used the removed boxes (removed anyway with --force; none running). */
  orphanedMachines: MachineIndexEntry[];
}

class Connections {
  private readonly clients = new Map<string, Promise<BoxLibvirt>>();
  constructor(
    private readonly opener: LibvirtOpener,
    private readonly signal?: AbortSignal,
  ) {}
  get(uri: string): Promise<BoxLibvirt> {
    let c = this.clients.get(uri);
    if (c === undefined) {
      c = this.opener(uri, this.signal);
      c.catch(() => undefined);
      this.clients.set(uri, c);
    }
    return c;
  }
  async closeAll(): Promise<void> {
    for (const c of this.clients.values()) {
      try {
        await (await c).close();
      } catch {
        // unreachable or already closed
      }
    }
  }
}


/** Running, or not provably stopped: any state but shut off / crashed. */
async function runningMachines(machines: MachineIndexEntry[], conns: Connections): Promise<{ running: string[]; unknown: string[] }> {
  const running: string[] = [];
  const unknown: string[] = [];
  for (const m of machines) {
    try {
      const client = await conns.get(m.uri);
      let dom: DomainRef;
      try {
        dom = await client.domainLookupByName(m.domain);
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      const { state } = await client.domainGetState(dom);
      if (state !== DomainState.shutoff && state !== DomainState.crashed) running.push(`${describeMachine(m)}: ${domainStateName(state)}`);
    } catch (err) {
      unknown.push(`${describeMachine(m)}: libvirt at ${m.uri} cannot be asked (${errorMessage(err)})`);
    }
  }
  return { running, unknown };
}

/**
 * `vmenv box remove`: deletes the box's volumes from every pool it was uploaded to,
 * then the box from the store. Refuses while machines use it (naming them); with
 * `force`, goes ahead only when none of those machines is running.
 */
export async function removeBox(name: string, options: RemoveBoxOptions = {}): Promise<RemoveBoxResult> {
  const { signal } = options;
  const versions = await boxVersions(name, options);
  if (versions.length === 0) {
    const all = await listBoxes(options);
    throw new UserError(`There is no box '${name}' in the box store.`, {
      hint: all.length === 0 ? 'The box store is empty.' : `Stored boxes: ${[...new Set(all.map((b) => b.name))].join(', ')}.`,
    });
  }
  let targets: string[];
  if (options.all === true) targets = versions;
  else if (options.version !== undefined) {
    if (!versions.includes(options.version)) {
      throw new UserError(`Box '${name}' has no version ${options.version}.`, { hint: `Stored versions: ${versions.join(', ')}.` });
    }
    targets = [options.version];
  } else if (versions.length === 1) targets = versions;
  else {
    throw new UserError(`Box '${name}' has several versions: ${versions.join(', ')}.`, {
      hint: 'Say which with --box-version <version>, or remove them all with --all.',
      exitCode: ExitCode.usage,
    });
  }

  const index = await readMachineIndex(options);
  const users = targets.flatMap((v) => machinesUsing(index, name, v));
  const conns = new Connections(options.openLibvirt ?? defaultOpener, signal);
  const result: RemoveBoxResult = { removed: [], volumesDeleted: [], volumesMissing: [], orphanedMachines: [] };
  try {
    if (users.length > 0) {
      const list = users.map((m) => `${describeMachine(m)} uses ${m.box.name} ${m.box.version}`).join('; ');
      if (options.force !== true) {
        throw new UserError(`Box '${name}' is still used by ${users.length === 1 ? 'a machine' : `${users.length} machines`}: ${list}.`, {
          hint: "Destroy those machines first (vmenv destroy), or remove the box anyway with --force when they are stopped (they cannot start again without it).",
        });
      }
      const { running, unknown } = await runningMachines(users, conns);
      if (running.length > 0) {
        throw new UserError(`Box '${name}' is used by running machines: ${running.join('; ')}.`, {
          hint: 'Stop or destroy them first (vmenv halt / vmenv destroy); --force removes a box only when no machine using it runs.',
        });
      }
      if (unknown.length > 0) {
        throw new UserError(`Cannot make sure that no machine using box '${name}' is running: ${unknown.join('; ')}.`, {
          hint: 'Make that libvirt daemon reachable (vmenv doctor), or destroy those machines first.',
          exitCode: ExitCode.unavailable,
        });
      }
      result.orphanedMachines = users;
    }

    for (const version of targets) {
      const ref = { name, version };
      await withFileLock(
        boxLockPath(ref, options),
        async () => {
          const dir = boxDir(ref, options);
          const uploads = await readUploads(dir);
          const done: BoxUpload[] = [];
          const failed: string[] = [];
          for (const u of uploads) {
            signal?.throwIfAborted();
            try {
              const client = await conns.get(u.uri);
              let pool: StoragePoolRef;
              let vol: StorageVolRef;
              try {
                pool = await client.storagePoolLookupByName(u.pool);
                vol = await client.storageVolLookupByName(pool, u.volume);
              } catch (err) {
                if (!isNotFound(err)) throw err;
                result.volumesMissing.push(u);
                done.push(u);
                continue;
              }
              try {
                await client.storageVolDelete(vol);
                result.volumesDeleted.push(u);
              } catch (err) {
                if (!isNotFound(err)) throw err;
                result.volumesMissing.push(u);
              }
              done.push(u);
            } catch (err) {
              if (signal?.aborted === true) throw signal.reason;
              failed.push(`${u.pool}/${u.volume} at ${u.uri}: ${errorMessage(err)}`);
            }
          }
          await forgetUploadsUnlocked(ref, done, options);
          if (failed.length > 0) {
            throw new UserError(`Box '${name}' ${version} was kept: ${failed.length === 1 ? 'a volume' : 'volumes'} it uploaded could not be deleted: ${failed.join('; ')}.`, {
              hint: 'Make sure those libvirt daemons are reachable (vmenv doctor), then run the command again; vmenv remembers what is left to delete.',
              exitCode: ExitCode.unavailable,
            });
          }
          const graveyard = tmpName(options, 'rm');
          await mkdir(tmpDir(options), { recursive: true });
          await rename(dir, graveyard);
          await rm(graveyard, { recursive: true, force: true });
          const versionDir = join(boxesDir(options), escapeBoxName(name), version);
          await rmdir(versionDir).catch(() => undefined);
          await rmdir(join(boxesDir(options), escapeBoxName(name))).catch(() => undefined);
          result.removed.push(ref);
        },
        { purpose: `removing box ${name} ${version}`, timeoutMs: options.lockTimeoutMs ?? 120_000, ...(signal ? { signal } : {}) },
      );
    }
  } finally {
    await conns.closeAll();
  }
  return result;
}
