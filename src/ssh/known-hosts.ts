/**
 * OpenSSH's known_hosts format (plain and hashed host names, markers, `[host]:port`),
 * host key checks against it, key fingerprints, and shell quoting for commands run on
 * the far side. No SSH client here: what only reads files and writes configs for
 * OpenSSH (`vmenv ssh`, `ssh-config`) loads this without ssh2.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** SSH's port when none is given (OpenSSH, libvirt's qemu+ssh URIs). */
export const DEFAULT_SSH_PORT = 22;

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker?: 'cert-authority' | 'revoked';
  /** Plain host patterns (comma-separated in the file), or undefined when hashed. */
  patterns?: string[];
  /** A hashed host field `|1|salt|hash`. */
  hashed?: { salt: Buffer; hash: Buffer };
  /** The key type written in the file, e.g. ssh-ed25519. */
  keyType: string;
  /** The public key blob (base64-decoded). */
  key: Buffer;
}

/** Parse known_hosts text; malformed lines are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/[ \t]+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@cert-authority') marker = 'cert-authority';
      else if (m === '@revoked') marker = 'revoked';
      else continue;
    }
    const [hostField, keyType, keyText] = fields;
    if (hostField === undefined || keyType === undefined || keyText === undefined) continue;
    if (!/^[A-Za-z0-9+/]+=*$/.test(keyText)) continue;
    const key = Buffer.from(keyText, 'base64');
    if (key.length < 4) continue;
    const entry: KnownHostEntry = { line: i + 1, keyType, key };
    if (marker !== undefined) entry.marker = marker;
    if (hostField.startsWith('|1|')) {
      const parts = hostField.split('|');
      if (parts.length !== 4) continue;
      entry.hashed = { salt: Buffer.from(parts[2]!, 'base64'), hash: Buffer.from(parts[3]!, 'base64') };
      if (entry.hashed.hash.length !== 20) continue;
    } else {
      entry.patterns = hostField.split(',').filter((p) => p !== '');
    }
    out.push(entry);
  }
  return out;
}

/** The name OpenSSH looks up: `host` on port 22, else `[host]:port`. Lower-cased. */
export function knownHostName(host: string, port: number = DEFAULT_SSH_PORT): string {
  const h = host.toLowerCase();
  return port === DEFAULT_SSH_PORT ? h : `[${h}]:${port}`;
}

/** Glob match with `*` and `?`, whole string, case-insensitive (OpenSSH's match_pattern). */
function globMatch(name: string, pattern: string): boolean {
  const re = new RegExp(
    `^${pattern
      .toLowerCase()
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    's',
  );
  return re.test(name);
}

/** Hash a host name as OpenSSH's HashKnownHosts does: HMAC-SHA1 keyed with the salt. */
export function hashHostName(name: string, salt: Buffer): Buffer {
  return createHmac('sha1', salt).update(name).digest();
}

/** Does this entry name the host (on this port)? */
export function entryMatchesHost(entry: KnownHostEntry, host: string, port: number = DEFAULT_SSH_PORT): boolean {
  const name = knownHostName(host, port);
  if (entry.hashed) {
    const h = hashHostName(name, entry.hashed.salt);
    return h.length === entry.hashed.hash.length && timingSafeEqual(h, entry.hashed.hash);
  }
  let matched = false;
  for (const p of entry.patterns ?? []) {
    const negated = p.startsWith('!');
    const pat = negated ? p.slice(1) : p;
    if (globMatch(name, pat)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The key type inside an SSH public key blob (its first string). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return '';
  const len = blob.readUInt32BE(0);
  if (len > blob.length - 4) return '';
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** OpenSSH's fingerprint form: `SHA256:` and unpadded base64. */
export function keyFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export type HostKeyCheck =
  | { status: 'match'; entry: KnownHostEntry }
  | { status: 'revoked'; entry: KnownHostEntry }
  /** The host is known with a different key of the same type. */
  | { status: 'mismatch'; entries: KnownHostEntry[] }
  /** The host is not known with a key of this type (`otherTypes`: types it is known with). */
  | { status: 'unknown'; otherTypes: string[] };

/** Check a host key against known_hosts entries, as OpenSSH's check_host_in_hostfile. */
export function checkHostKey(entries: KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyCheck {
  const type = keyTypeOfBlob(key);
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && entryMatchesHost(e, host, port));
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const plain = forHost.filter((e) => e.marker === undefined);
  const match = plain.find((e) => e.key.equals(key));
  if (match) return { status: 'match', entry: match };
  const sameType = plain.filter((e) => keyTypeOfBlob(e.key) === type);
  if (sameType.length > 0) return { status: 'mismatch', entries: sameType };
  return { status: 'unknown', otherTypes: [...new Set(plain.map((e) => keyTypeOfBlob(e.key)))] };
}

/** The known_hosts line for a host key. */
export function knownHostsLine(host: string, port: number, key: Buffer): string {
  return `${knownHostName(host, port)} ${keyTypeOfBlob(key)} ${key.toString('base64')}`;
}

/** Quote for a POSIX shell: one word, whatever it holds. */
export function shQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
