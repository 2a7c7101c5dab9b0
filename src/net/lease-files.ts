/**
 * Looking a MAC up in lease files on disk: libvirt's `<bridge>.status` files and
 * dnsmasq `*.leases` files, named one by one or as a directory (libvirt's
 * `/var/lib/libvirt/dnsmasq`). Only meaningful where the daemon's files are readable
 * (a local daemon); each file answers in words when it has no lease for the MAC.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  leasesForMac,
  parseDnsmasqLeases,
  parseLibvirtStatus,
  type Lease,
} from './dnsmasq-leases.js';
import type { IpFamily } from '../util/ip.js';

export type LeaseFileKind = 'status' | 'leases';

/** What one file said about the MAC. */
export interface LeaseFileAnswer {
  /** The file (or, when no file could be named, the directory). */
  path: string;
  /** Unknown when the path could not be read at all. */
  kind?: LeaseFileKind;
  /** The answer is about a directory as a whole (nothing in it to read). */
  directory?: boolean;
  /** The current lease of the MAC, when there is one. */
  lease?: Lease;
  /** In words: "lease 192.168.121.10 (expires …)", "empty", "no lease for 52:54:00:…", "not found", … */
  answer: string;
}

export interface LeaseFileLookup {
  mac: string;
  /** The network's bridge (`virbr1`): in a directory, read `<bridge>.status` and `<bridge>.leases` only. */
  bridge?: string;
  /** Default IPv4; `any`: IPv4 before IPv6. */
  family?: IpFamily | 'any';
  /** Seconds since the epoch (default: now), for expiry. */
  nowSeconds?: number;
}

/** What a file is, from its name; else from its first character (`[` or `{`, JSON: a status file). */
export function leaseFileKind(path: string, content?: string): LeaseFileKind {
  if (path.endsWith('.status')) return 'status';
  if (path.endsWith('.leases')) return 'leases';
  const first = content?.trimStart()[0];
  return first === '[' || first === '{' ? 'status' : 'leases';
}

/** "status file /var/lib/libvirt/dnsmasq/virbr1.status", "lease file …", "lease directory …". */
export function leaseFileLabel(a: LeaseFileAnswer): string {
  const what = a.directory === true ? 'lease directory' : a.kind === 'status' ? 'status file' : 'lease file';
  return `${what} ${a.path}`;
}

/** "status file /var/lib/libvirt/dnsmasq/virbr1.status: empty" */
export function formatLeaseFileAnswer(a: LeaseFileAnswer): string {
  return `${leaseFileLabel(a)}: ${a.answer}`;
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'not found';
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return `cannot read it (${e.code}: run as a user who may, or leave lease files out)`;
  return `cannot read it (${e?.code ?? (err as Error)?.message ?? String(err)})`;
}

function expiryText(expiry: number): string {
  return expiry === 0 ? 'never expires' : `expires ${new Date(expiry * 1000).toISOString()}`;
}

/** The answer of one file's content. */
export function answerFromContent(path: string, kind: LeaseFileKind, content: string, q: LeaseFileLookup): LeaseFileAnswer {
  const mac = q.mac.toLowerCase();
  let leases: Lease[];
  let notes = '';
  if (kind === 'status') {
    const s = parseLibvirtStatus(content);
    if (s.state === 'empty') return { path, kind, answer: 'empty' };
    if (s.state === 'incomplete') return { path, kind, answer: `no answer yet: ${s.reason}` };
    if (s.state === 'invalid') return { path, kind, answer: `not a status file: ${s.reason}` };
    leases = s.leases;
    if (s.problems.length > 0) notes = `; ${s.problems.length} entr${s.problems.length === 1 ? 'y' : 'ies'} skipped`;
  } else {
    const f = parseDnsmasqLeases(content);
    if (f.leases.length === 0 && f.problems.length === 0) return { path, kind, answer: 'empty' };
    leases = f.leases;
    if (f.incomplete) notes = '; the last line was cut short (being rewritten)';
    else if (f.problems.length > 0) notes = `; ${f.problems.length} line${f.problems.length === 1 ? '' : 's'} skipped`;
  }
  const m = leasesForMac(leases, mac, {
    ...(q.family !== undefined ? { family: q.family } : {}),
    ...(q.nowSeconds !== undefined ? { nowSeconds: q.nowSeconds } : {}),
  });
  const hit = m.current[0];
  if (hit !== undefined) return { path, kind, lease: hit, answer: `lease ${hit.ip} (${expiryText(hit.expiry)})` };
  const last = m.expired[0];
  if (last !== undefined) return { path, kind, answer: `the lease of ${mac} (${last.ip}) expired at ${new Date(last.expiry * 1000).toISOString()}${notes}` };
  return { path, kind, answer: `no lease for ${mac} (${leases.length} other lease${leases.length === 1 ? '' : 's'})${notes}` };
}

async function readOne(path: string, kind: LeaseFileKind | undefined, q: LeaseFileLookup): Promise<LeaseFileAnswer> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (err) {
    return { path, ...(kind !== undefined ? { kind } : {}), answer: errnoText(err) };
  }
  return answerFromContent(path, kind ?? leaseFileKind(path, content), content, q);
}

/**
 * Each path: a file (its kind from its name or content) or a directory (with `bridge`:
 * `<bridge>.status`, and `<bridge>.leases` when it exists; without: every `*.status` and
 * `*.leases` in it). One answer per file read; a file with the lease answers with it.
 */
export async function lookupLeaseFiles(paths: readonly string[], q: LeaseFileLookup): Promise<LeaseFileAnswer[]> {
  const answers: LeaseFileAnswer[] = [];
  for (const path of paths) {
    let isDir: boolean;
    try {
      isDir = (await stat(path)).isDirectory();
    } catch (err) {
      answers.push({ path, answer: errnoText(err) });
      continue;
    }
    if (!isDir) {
      answers.push(await readOne(path, undefined, q));
      continue;
    }
    if (q.bridge !== undefined) {
      const status = await readOne(join(path, `${q.bridge}.status`), 'status', q);
      const leasesPath = join(path, `${q.bridge}.leases`);
      const leases = await readOne(leasesPath, 'leases', q);
      // Current libvirt writes no .leases file; mention it only when it exists.
      answers.push(status);
      if (leases.answer !== 'not found' || status.answer === 'not found') answers.push(leases);
      continue;
    }
    let names: string[];
    try {
      names = (await readdir(path)).filter((n) => n.endsWith('.status') || n.endsWith('.leases')).sort();
    } catch (err) {
      answers.push({ path, directory: true, answer: errnoText(err) });
      continue;
    }
    if (names.length === 0) {
      answers.push({ path, directory: true, answer: 'no *.status or *.leases file in it' });
      continue;
    }
    for (const n of names) answers.push(await readOne(join(path, n), leaseFileKind(n), q));
  }
  return answers;
}
