/**
 * Host key pinning. A guest's host key is recorded on first contact (trust on first
 * use, when the guest has just been made by this `up` and has accepted the machine's
 * own key) into a store the caller provides — the machine's state in `.vmenv/` — and
 * every later connection must present exactly that key. A different key is refused
 * with both fingerprints and the way out.
 *
 * The pin is also rendered as a known_hosts line, so OpenSSH (`vmenv ssh-config`,
 * rsync) checks the very same key with StrictHostKeyChecking yes.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  checkHostKey,
  keyFingerprint,
  keyTypeOfBlob,
  knownHostName,
  parseKnownHosts,
  type KnownHostEntry,
} from './known-hosts.js';
import { SshError } from './errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { fileHolds } from './write-if-changed.js';

export interface PinnedKey {
  /** The key type, e.g. `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`. */
  algorithm: string;
  /** The public key blob, base64 (the second field of a known_hosts line). */
  key: string;
  /** `SHA256:…` (unpadded base64), as OpenSSH prints it. */
  fingerprint: string;
}

/** Where a machine's pin lives. `describe` (e.g. a file path) is used in messages. */
export interface HostKeyStore {
  get(): Promise<PinnedKey | undefined>;
  set(key: PinnedKey): Promise<void>;
  describe?(): string;
}

/** The pin for a host key blob as the server sent it. */
export function pinnedKeyFromBlob(blob: Buffer): PinnedKey {
  const algorithm = keyTypeOfBlob(blob);
  if (algorithm === '') throw new TypeError('not an SSH public key blob');
  return { algorithm, key: blob.toString('base64'), fingerprint: keyFingerprint(blob) };
}

/** The blob of a pin (its algorithm and fingerprint are checked against it). */
export function pinnedKeyBlob(pin: PinnedKey): Buffer {
  const blob = Buffer.from(pin.key, 'base64');
  if (keyTypeOfBlob(blob) !== pin.algorithm) {
    throw new TypeError(`the pinned host key is damaged: its blob is a ${keyTypeOfBlob(blob) || 'malformed'} key, not ${pin.algorithm}`);
  }
  return blob;
}

/** Read a pin from its JSON form, checking every field; undefined when it is not one. */
export function parsePinnedKey(value: unknown): PinnedKey | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.algorithm !== 'string' || typeof v.key !== 'string' || !/^[A-Za-z0-9+/]+=*$/.test(v.key)) return undefined;
  const blob = Buffer.from(v.key, 'base64');
  if (keyTypeOfBlob(blob) !== v.algorithm) return undefined;
  // The fingerprint is derived, never trusted from the file.
  return { algorithm: v.algorithm, key: v.key, fingerprint: keyFingerprint(blob) };
}

/** An in-memory store (tests, one-off connections). */
export function memoryHostKeyStore(initial?: PinnedKey): HostKeyStore & { current: PinnedKey | undefined } {
  const store = {
    current: initial,
    get: async () => store.current,
    set: async (k: PinnedKey) => {
      store.current = k;
    },
    describe: () => 'the pinned host key (in memory)',
  };
  return store;
}

/**
 * A store in a JSON file of its own (`{ "algorithm", "key", "fingerprint" }`), written
 * atomically. A missing file means "not pinned yet"; a damaged one is an error, never
 * silently re-pinned.
 */
export function fileHostKeyStore(path: string): HostKeyStore {
  return {
    describe: () => path,
    async get() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      let pin: PinnedKey | undefined;
      try {
        pin = parsePinnedKey(JSON.parse(text));
      } catch {
        pin = undefined;
      }
      if (pin === undefined) {
        throw new SshError('host-key', `the pinned host key in ${path} is damaged`, path, {
          hint: `Remove ${path} to pin the guest's key again at the next connection (only if you trust the network to the guest).`,
        });
      }
      return pin;
    },
    async set(k) {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(path, `${JSON.stringify({ algorithm: k.algorithm, key: k.key, fingerprint: k.fingerprint }, null, 2)}\n`, 0o644);
    },
  };
}

/**
 * The entries of a known_hosts file (none when it does not exist). Jump hosts are the
 * user's own machines: their keys live in ~/.ssh/known_hosts, checked with OpenSSH's
 * rules (verifyAgainstKnownHosts), not in a pin.
 */
export async function readKnownHosts(path: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export interface HostKeyContext {
  /** What is being reached, for messages: "machine 'web' (root@127.0.0.1:2222)". */
  target: string;
}

export type HostKeyVerdict = { status: 'match' } | { status: 'unpinned'; key: PinnedKey };

/** The key offered, compared with the pin: match, not pinned yet, or a HostKeyMismatchError thrown. */
export function compareHostKey(pinned: PinnedKey | undefined, offered: Buffer, ctx: HostKeyContext & { store?: string }): HostKeyVerdict {
  const offer = pinnedKeyFromBlob(offered);
  if (pinned === undefined) return { status: 'unpinned', key: offer };
  if (pinnedKeyBlob(pinned).equals(offered)) return { status: 'match' };
  throw new HostKeyMismatchError(pinned, offer, ctx.target, ctx.store);
}

export class HostKeyMismatchError extends SshError {
  readonly pinned: PinnedKey;
  readonly offered: PinnedKey;

  constructor(pinned: PinnedKey, offered: PinnedKey, target: string, store?: string) {
    super(
      'host-key',
      `The SSH host key of ${target} has CHANGED: the key pinned at first contact is ${pinned.fingerprint} (${pinned.algorithm}), ` +
        `the guest now offers ${offered.fingerprint} (${offered.algorithm}). vmenv refuses to connect.`,
      target,
      {
        hint:
          `If the machine was recreated outside vmenv (its disk replaced or rebuilt), run \`vmenv destroy\` and \`vmenv up\`, ` +
          `or remove the pinned key${store ? ` (${store})` : ''} so the next connection pins the new one. ` +
          `Otherwise something else is answering at that address: do not log in.`,
      },
    );
    this.name = 'HostKeyMismatchError';
    this.pinned = pinned;
    this.offered = offered;
  }
}

/**
 * The names a known_hosts line carries for a host: `host` on port 22, else
 * `[host]:port` (what OpenSSH looks up), or the HostKeyAlias when one is used.
 */
export function knownHostsNames(host: string, port: number, alias?: string): string {
  return alias !== undefined ? alias.toLowerCase() : knownHostName(host, port);
}

/** `[127.0.0.1]:2222 ssh-ed25519 AAAA…` for a pin (with `alias`: `alias ssh-ed25519 AAAA…`). */
export function knownHostsLineForPin(pin: PinnedKey, host: string, port: number, alias?: string): string {
  pinnedKeyBlob(pin);
  return `${knownHostsNames(host, port, alias)} ${pin.algorithm} ${pin.key}`;
}

/** Write a known_hosts file holding only the pin (for UserKnownHostsFile), atomically; left alone when it already does. */
export async function writePinnedKnownHosts(path: string, pin: PinnedKey, host: string, port: number, alias?: string): Promise<void> {
  const text = `${knownHostsLineForPin(pin, host, port, alias)}\n`;
  if (await fileHolds(path, text, 0o644)) return;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, text, 0o644);
}

/** Check a key against known_hosts entries (jump hosts): throws SshError('host-key') unless it matches. */
export function verifyAgainstKnownHosts(entries: KnownHostEntry[], file: string, host: string, port: number, offered: Buffer, target: string): void {
  const res = checkHostKey(entries, host, port, offered);
  const fp = `${keyFingerprint(offered)} (${keyTypeOfBlob(offered)})`;
  const name = knownHostName(host, port);
  switch (res.status) {
    case 'match':
      return;
    case 'revoked':
      throw new SshError('host-key', `the SSH host key of ${target} (${fp}) is marked @revoked for ${name} in ${file} line ${res.entry.line}`, target);
    case 'mismatch':
      throw new SshError(
        'host-key',
        `the SSH host key of ${target} has CHANGED: ${file} line ${res.entries.map((e) => e.line).join(', ')} holds another key for ${name}, and the host offered ${fp}`,
        target,
        { hint: `If that host was reinstalled, remove the old key (ssh-keygen -R '${name}' -f ${file}) and connect again.` },
      );
    case 'unknown':
      throw new SshError('host-key', `the SSH host key of ${target} is not known: ${file} has no key for ${name}. The host offered ${fp}`, target, {
        hint: `Connect once with OpenSSH (ssh${port === 22 ? '' : ` -p ${port}`} ${host}), check the fingerprint, and let it record the key in ${file}.`,
      });
  }
}
