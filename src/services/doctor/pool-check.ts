/**
 * The storage pool check of `vmenv doctor`: does the pool vmenv will use exist and run,
 * and can QEMU reach the disk files in its folder? `vmenv up` defines a missing pool in
 * vmenv's data folder and starts an inactive one, so those are warnings; a folder QEMU
 * cannot reach is a failure (the first boot would end in "Permission denied").
 */
import { LibvirtHost } from '../../hosts/libvirt-host.js';
import { realpath } from 'node:fs/promises';
import type { LibvirtClient } from '../../libvirt/client.js';
import { isNotFound } from '../../libvirt/errors.js';
import { formatBytes } from '../../util/format.js';
import type { Check } from './doctor.js';
import { firstAccessProblem, groupName, statComponents, userName, type AccessProblem, type Identity } from '../../hosts/qemu-user.js';

/** Below this much free space in the pool, warn. */
export const LOW_POOL_SPACE = 2 * 1024 ** 3;

export type PoolAccess =
  | {
      who: Identity;
      /** QEMU's files are written by the user itself (a per-user session daemon): the folder must be writable too. */
      needWrite: boolean;
      problem?: AccessProblem & { owner: string; group: string };
      /** The first component of the path that does not exist yet (a pool `up` would create). */
      missing?: string;
    }
  | { skipped: string };

export interface PoolFacts {
  name: string;
  /** Where the name came from: "vmenv.yaml" or "default". */
  source: string;
  uri: string;
  state: 'missing' | 'inactive' | 'active';
  type?: string;
  /** The target folder; for a missing pool, where `vmenv up` would create it. */
  path?: string;
  availableBytes?: number;
  access?: PoolAccess;
}

function virsh(uri: string): string {
  return `virsh -c '${uri}'`;
}

function accessText(f: PoolFacts): { problem?: string; fix?: string; ok?: string } {
  const a = f.access;
  if (a === undefined || f.path === undefined) return {};
  if ('skipped' in a) return { ok: `file permissions not checked: ${a.skipped}` };
  if (a.problem === undefined) {
    return { ok: `${a.who.name} (QEMU's user) can ${a.needWrite ? 'write' : 'reach'} files there` };
  }
  const p = a.problem;
  const what = p.need === 'search' ? `cannot search ${p.path}` : `cannot write to ${p.path}`;
  const fix =
    p.need === 'search'
      ? `sudo chmod o+x ${p.path} (or: sudo setfacl -m u:${a.who.name}:x ${p.path}), or use a pool in a folder ${a.who.name} can reach (pool: in vmenv.yaml)`
      : `sudo chown ${a.who.name} ${p.path} (or chmod u+w), or use another pool (pool: in vmenv.yaml)`;
  return { problem: `${a.who.name} (QEMU's user) ${what} (${p.mode} ${p.owner}:${p.group}), so guests could not open their disks`, fix };
}

/** The check from the facts. Pure. */
export function poolCheck(f: PoolFacts): Check {
  const name = 'pool';
  const access = accessText(f);
  const from = f.source === 'default' ? ' (the default)' : ` (from ${f.source})`;
  if (f.state === 'missing') {
    const create = f.path ?? LibvirtHost.of(f.uri).newPoolPath(f.name);
    const detail = `pool '${f.name}'${from} does not exist on ${f.uri}; 'vmenv up' creates it at ${create}`;
    if (access.problem !== undefined) return { name, status: 'fail', detail: `${detail}, but ${access.problem}`, fix: access.fix ?? null };
    return {
      name,
      status: 'warn',
      detail: `${detail}${access.ok !== undefined ? `; ${access.ok}` : ''}`,
      fix: `Nothing to do; or create it where you want it first, with ${virsh(f.uri)}: pool-define-as ${f.name} dir --target <folder>, pool-build ${f.name}, pool-start ${f.name}, pool-autostart ${f.name}`,
    };
  }
  const where = f.path !== undefined ? `${f.type ?? 'dir'} at ${f.path}` : (f.type ?? 'no folder');
  const space = f.availableBytes !== undefined ? `, ${formatBytes(f.availableBytes)} free` : '';
  const base = `pool '${f.name}'${from} (${where}${space})`;
  if (access.problem !== undefined) return { name, status: 'fail', detail: `${base}: ${access.problem}`, fix: access.fix ?? null };
  const tail = access.ok !== undefined ? `; ${access.ok}` : f.path === undefined ? '; not a folder, file permissions not checked' : '';
  if (f.state === 'inactive') {
    return {
      name,
      status: 'warn',
      detail: `${base} is defined but not active; 'vmenv up' starts it${tail}`,
      fix: `${virsh(f.uri)} pool-start ${f.name} && ${virsh(f.uri)} pool-autostart ${f.name}`,
    };
  }
  if (f.availableBytes !== undefined && f.availableBytes < LOW_POOL_SPACE) {
    return { name, status: 'warn', detail: `${base} is active but nearly full${tail}`, fix: `Free space under ${f.path ?? 'the pool'}, or use another pool (pool: in vmenv.yaml).` };
  }
  return { name, status: 'ok', detail: `${base} is active${tail}`, fix: null };
}

/** The target path of a pool's XML, if it has one. Pure. */
export function poolTargetPath(xml: string): string | undefined {
  const m = /<target>[\s\S]*?<path>([^<]+)<\/path>/.exec(xml);
  return m?.[1]?.trim();
}

export function poolType(xml: string): string | undefined {
  return /<pool\b[^>]*\btype=['"]([^'"]+)['"]/.exec(xml)?.[1];
}

export interface PoolFactsOptions {
  name: string;
  source: string;
  uri: string;
  /** libvirt runs on this host (a unix socket): its folders can be checked here. */
  local: boolean;
  /** A per-user session daemon: QEMU runs as this user. */
  userDaemon: boolean;
  /** Who QEMU runs as, or why that is not known (qemuIdentity; shared with the other checks). */
  qemu: () => Promise<Identity | string>;
}

async function accessOf(path: string, o: PoolFactsOptions): Promise<PoolAccess> {
  if (!o.local) return { skipped: 'the pool is on another host' };
  const who = await o.qemu();
  if (typeof who === 'string') return { skipped: who };
  const real = await realpath(path).catch(() => path);
  const { entries, missing } = await statComponents(real);
  // A folder still to be made is made by the daemon: a session daemon (this user) needs
  // write permission on the last folder that exists; the system daemon is root.
  const problem = firstAccessProblem(entries, who, o.userDaemon);
  const access: PoolAccess = { who, needWrite: o.userDaemon };
  if (missing !== undefined) access.missing = missing;
  if (problem !== undefined) {
    const [owner, group] = await Promise.all([userName(problem.uid), groupName(problem.gid)]);
    access.problem = { ...problem, owner: owner ?? String(problem.uid), group: group ?? String(problem.gid) };
  }
  return access;
}

/** Asks libvirt about the pool and checks its folder. */
export async function gatherPoolFacts(client: LibvirtClient, o: PoolFactsOptions): Promise<PoolFacts> {
  const facts: PoolFacts = { name: o.name, source: o.source, uri: o.uri, state: 'missing' };
  let pool;
  try {
    pool = await client.storagePoolLookupByName(o.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    // Where `vmenv up` would define it (see the storage pool step of src/lifecycle/up.ts).
    facts.path = LibvirtHost.of(o.uri).newPoolPath(o.name);
    facts.access = await accessOf(facts.path, o);
    return facts;
  }
  const [active, xml] = await Promise.all([client.storagePoolIsActive(pool), client.storagePoolGetXmlDesc(pool)]);
  facts.state = active ? 'active' : 'inactive';
  const type = poolType(xml);
  if (type !== undefined) facts.type = type;
  const path = poolTargetPath(xml);
  if (active) facts.availableBytes = Number((await client.storagePoolGetInfo(pool)).available);
  if (path !== undefined && (type === undefined || ['dir', 'fs', 'netfs'].includes(type))) {
    facts.path = path;
    facts.access = await accessOf(path, o);
  }
  return facts;
}
