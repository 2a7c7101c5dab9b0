/**
 * Who QEMU runs as, and whether that user can reach a folder. libvirt's system daemon
 * starts QEMU as the `user`/`group` of qemu.conf (on Debian `libvirt-qemu`), which its
 * host capabilities state as the DAC base label (`+64055:+64055`); QEMU also gets that
 * user's supplementary groups. libvirt hands the disk files over to that user but not
 * the folders above them: every folder on the way needs search (x) permission for it.
 *
 * The parsers and the permission arithmetic are pure; reading /etc and stat-ing the
 * path are the small impure part.
 */
import { readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { LibvirtClient } from '../libvirt/client.js';

export interface Identity {
  name: string;
  uid: number;
  /** The primary group QEMU runs with. */
  gid: number;
  /** Every group it has (the primary one included). */
  groups: number[];
}

/** The uid and gid of libvirt's DAC base label for a domain type (`kvm`/`qemu`), from the host capabilities XML. */
export function parseDacBaselabel(capabilitiesXml: string, domainType: string): { uid: number; gid: number } | undefined {
  for (const m of capabilitiesXml.matchAll(/<secmodel>([\s\S]*?)<\/secmodel>/g)) {
    const body = m[1] ?? '';
    if (!/<model>\s*dac\s*<\/model>/.test(body)) continue;
    const labels = [...body.matchAll(/<baselabel\s+type=['"]([^'"]+)['"]\s*>\s*\+?(\d+):\+?(\d+)\s*<\/baselabel>/g)];
    const label = labels.find((l) => l[1] === domainType) ?? labels[0];
    if (label !== undefined) return { uid: Number(label[2]), gid: Number(label[3]) };
  }
  return undefined;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** /etc/passwd lines: name:x:uid:gid:gecos:home:shell. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#') || !/^\d+$/.test(f[2] ?? '') || !/^\d+$/.test(f[3] ?? '')) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) });
  }
  return out;
}

/** /etc/group lines: name:x:gid:member,member. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || line.startsWith('#') || !/^\d+$/.test(f[2] ?? '')) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '') });
  }
  return out;
}

/** The identity QEMU gets from a uid and gid: the user's name and its groups (as getgrouplist gives them). Pure. */
export function identityFrom(uid: number, gid: number, passwd: readonly PasswdEntry[], groups: readonly GroupEntry[]): Identity {
  const name = passwd.find((p) => p.uid === uid)?.name ?? String(uid);
  const member = groups.filter((g) => g.members.includes(name)).map((g) => g.gid);
  return { name, uid, gid, groups: [...new Set([gid, ...member])] };
}

async function readOr(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

export async function userName(uid: number): Promise<string | undefined> {
  return parsePasswd(await readOr('/etc/passwd')).find((p) => p.uid === uid)?.name;
}

export async function groupName(gid: number): Promise<string | undefined> {
  return parseGroup(await readOr('/etc/group')).find((g) => g.gid === gid)?.name;
}

export async function identityOf(uid: number, gid: number): Promise<Identity> {
  const [passwd, groups] = await Promise.all([readOr('/etc/passwd'), readOr('/etc/group')]);
  return identityFrom(uid, gid, parsePasswd(passwd), parseGroup(groups));
}

/** This process's identity: QEMU's under a per-user session daemon. */
export function processIdentity(): Identity {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  let name = String(uid);
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry
  }
  return { name, uid, gid, groups: [...new Set([gid, ...(process.getgroups?.() ?? [])])] };
}

/**
 * Who QEMU runs as under the daemon `client` talks to: this user under a per-user
 * session daemon, else the DAC label of libvirt's capabilities (a string says why
 * that is not known).
 */
export async function qemuIdentity(client: LibvirtClient, o: { userDaemon: boolean; domainType: 'kvm' | 'qemu' }): Promise<Identity | string> {
  if (o.userDaemon) return processIdentity();
  const label = parseDacBaselabel(await client.connectGetCapabilities(), o.domainType);
  if (label === undefined) return "libvirt's capabilities name no DAC label for QEMU";
  return identityOf(label.uid, label.gid);
}

/** One component of a path as stat saw it. */
export interface PathEntry {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  isDir: boolean;
}

const BITS = { r: 4, w: 2, x: 1 } as const;

/** Whether `who` has permission `bit` on an entry, by the owner/group/other rule. Pure. */
export function allows(entry: Pick<PathEntry, 'mode' | 'uid' | 'gid'>, who: Identity, bit: keyof typeof BITS): boolean {
  if (who.uid === 0) return true;
  const b = BITS[bit];
  // Linux checks the first class that matches: an owner denied by the owner bits is denied.
  if (entry.uid === who.uid) return ((entry.mode >> 6) & b) !== 0;
  if (who.groups.includes(entry.gid)) return ((entry.mode >> 3) & b) !== 0;
  return (entry.mode & b) !== 0;
}

export interface AccessProblem {
  path: string;
  /** `search`: a folder on the way lacks x; `write`: the folder itself lacks w (and x). */
  need: 'search' | 'write';
  /** `drwx------`-style mode. */
  mode: string;
  uid: number;
  gid: number;
}

/** `drwxr-x---` from a stat mode. Pure. */
export function modeString(mode: number, isDir = true): string {
  const chars = ['r', 'w', 'x'];
  let s = isDir ? 'd' : '-';
  for (let shift = 6; shift >= 0; shift -= 3) for (let i = 0; i < 3; i++) s += ((mode >> (shift + 2 - i)) & 1) === 1 ? chars[i] : '-';
  return s;
}

/**
 * The first component of `entries` (from `/` down) that stops `who` from using files in
 * the last one: search permission on every folder, and with `needWrite` write permission
 * on the last. Undefined when nothing does. Pure.
 */
export function firstAccessProblem(entries: readonly PathEntry[], who: Identity, needWrite: boolean): AccessProblem | undefined {
  const problem = (e: PathEntry, need: AccessProblem['need']): AccessProblem => ({ path: e.path, need, mode: modeString(e.mode, e.isDir), uid: e.uid, gid: e.gid });
  for (const e of entries) {
    if (!e.isDir || !allows(e, who, 'x')) return problem(e, 'search');
  }
  const last = entries[entries.length - 1];
  if (needWrite && last !== undefined && !allows(last, who, 'w')) return problem(last, 'write');
  return undefined;
}

/** Every ancestor of an absolute path, `/` first, the path itself last. Pure. */
export function pathComponents(path: string): string[] {
  const out: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    out.unshift(p);
    if (dirname(p) === p) break;
  }
  return out;
}

/**
 * stat of each component of `path` that exists, `/` first; `missing` is the first one
 * that does not (the rest of the path would be created below it).
 */
export async function statComponents(path: string): Promise<{ entries: PathEntry[]; missing?: string }> {
  const entries: PathEntry[] = [];
  for (const p of pathComponents(path)) {
    try {
      const s = await stat(p);
      entries.push({ path: p, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, isDir: s.isDirectory() });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { entries, missing: p };
      throw err;
    }
  }
  return { entries };
}
