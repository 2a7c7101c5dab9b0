/**
 * Which keys `up` logs in with, and Vagrant's key flow.
 *
 * vmenv's boxes take the machine's own key from the cloud-init seed. Boxes from the
 * Vagrant world ignore the seed and accept Vagrant's insecure keys (or the key
 * `ssh.private_key_path` names). All of them are offered on one connection, the
 * machine's key first, so a Vagrant box costs no extra wait. When an insecure key got in
 * and `ssh.insert_key` is on, the machine's key is put in `authorized_keys`, a new
 * connection proves it works, and only then are the insecure keys removed — as Vagrant
 * does, without the window in which neither key would work.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MachineConfig } from '../config/types.js';
import type { MachineState } from '../project/state.js';
import { fingerprintOfPublicLine, publicKeyLineOf, readPrivateKey, SshError, type SshIdentity, type SshSession } from '../ssh/index.js';
import { shQuote } from '../ssh/known-hosts.js';
import { vagrantInsecureKeys, type InsecureKeyType } from '../ssh/vagrant-keys.js';

export const MACHINE_KEY_FILE = 'id_ed25519';

/** A key `up` may log in with. */
export interface LoginKey extends SshIdentity {
  privateKey: string;
  label: string;
  fingerprint: string;
  /** The public key line (what goes into authorized_keys). */
  publicKey: string;
  /** Where the private key is on disk, when it is a file of its own. */
  path?: string;
  /** Set for Vagrant's insecure keys (also when ssh.private_key_path points at one). */
  insecure?: InsecureKeyType;
  /** The machine's own key. */
  machine?: boolean;
}

/**
 * The keys tried after the machine's own: `ssh.private_key_path` when set, else Vagrant's
 * insecure pair. Read before anything is made, so a missing or encrypted key file fails
 * `up` with nothing left behind.
 */
export async function fallbackLoginKeys(machine: MachineConfig): Promise<LoginKey[]> {
  const insecure = await vagrantInsecureKeys();
  const path = machine.ssh.private_key_path;
  if (path === undefined) {
    return insecure.map((k) => ({ privateKey: k.privateKey, label: k.label, fingerprint: k.fingerprint, publicKey: k.publicKey, insecure: k.type }));
  }
  const privateKey = await readPrivateKey(path).catch((err: unknown) => {
    if (!(err instanceof SshError)) throw err;
    const missing = /no such file/.test(err.message);
    throw new SshError(err.kind, `ssh.private_key_path of machine '${machine.name}': ${err.message}`, err.target, {
      cause: err,
      hint: missing
        ? 'Correct the path in vmenv.yaml (a relative path is relative to the project folder; ~ expands), or remove ssh.private_key_path to use the machine\'s own key and Vagrant\'s insecure keys.'
        : (err.hint ?? 'Point ssh.private_key_path at an unencrypted private key in OpenSSH or PEM format.'),
    });
  });
  const publicKey = publicKeyLineOf(privateKey, '');
  const fingerprint = fingerprintOfPublicLine(publicKey);
  const known = insecure.find((k) => k.fingerprint === fingerprint);
  return [{ privateKey, label: `ssh.private_key_path ${path}`, fingerprint, publicKey, path, ...(known ? { insecure: known.type } : {}) }];
}

/**
 * Every key to offer, in order and without repeats: the one the machine was last
 * reached with (when it is not the machine's own), the machine's key, the fallbacks.
 */
export async function loginKeys(machineKey: { privateKey: string; publicKey: string; path: string }, record: MachineState, fallbacks: LoginKey[]): Promise<LoginKey[]> {
  const own: LoginKey = {
    privateKey: machineKey.privateKey,
    label: "the machine's key",
    fingerprint: fingerprintOfPublicLine(machineKey.publicKey),
    publicKey: machineKey.publicKey,
    path: machineKey.path,
    machine: true,
  };
  const keys: LoginKey[] = [];
  if (record.ssh.privateKeyPath !== machineKey.path) {
    const last = fallbacks.find((k) => k.path === record.ssh.privateKeyPath) ?? (await keyAtPath(record.ssh.privateKeyPath, fallbacks));
    if (last) keys.push(last);
  }
  keys.push(own, ...fallbacks);
  return keys.filter((k, i) => keys.findIndex((o) => o.fingerprint === k.fingerprint) === i);
}

/** The key recorded for the machine, when it is still readable (a copy of an insecure key, a given key). */
async function keyAtPath(path: string, fallbacks: LoginKey[]): Promise<LoginKey | undefined> {
  let privateKey: string;
  try {
    privateKey = await readPrivateKey(path);
  } catch {
    return undefined; // gone: the other keys are tried
  }
  const publicKey = publicKeyLineOf(privateKey, '');
  const fingerprint = fingerprintOfPublicLine(publicKey);
  const same = fallbacks.find((k) => k.fingerprint === fingerprint);
  return { ...(same ?? { label: `the key at ${path}` }), privateKey, fingerprint, publicKey, path };
}

/** The key's public blob (the base64 field), which identifies its line in authorized_keys. */
function keyBlob(publicKey: string): string {
  return publicKey.trim().split(/\s+/)[1] ?? '';
}

/**
 * The guest command that adds `add` to the login user's authorized_keys (once) and drops
 * every line holding one of `remove`. It rewrites the file in place (`cat >`), so its
 * owner, mode and any link stay as they are.
 */
export function authorizedKeysCommand(change: { add?: string; remove?: string[] }): string {
  const lines = ['set -e', 'umask 077', 'mkdir -p ~/.ssh', 'f=~/.ssh/authorized_keys', 'touch "$f"', 'cp "$f" "$f.vmenv"'];
  if (change.remove && change.remove.length > 0) {
    const patterns = change.remove.map((k) => `-e ${shQuote(keyBlob(k))}`).join(' ');
    lines.push(`grep -v -F ${patterns} "$f" >"$f.vmenv" || [ $? -eq 1 ]`);
  }
  if (change.add !== undefined) {
    lines.push(`grep -q -F ${shQuote(keyBlob(change.add))} "$f.vmenv" || printf '%s\\n' ${shQuote(change.add.trim())} >>"$f.vmenv"`);
  }
  lines.push('cat "$f.vmenv" >"$f"', 'rm -f "$f.vmenv"', 'chmod 600 "$f"', 'chmod 700 ~/.ssh');
  return lines.join('\n');
}

async function runOrFail(session: SshSession, command: string, what: string, signal?: AbortSignal): Promise<void> {
  const r = await session.exec(command, signal ? { signal } : {});
  if (r.code !== 0) {
    throw new SshError('protocol', `could not ${what} on ${session.target}: exit ${r.code ?? r.signal}${r.stderr ? `: ${r.stderr.trim()}` : ''}`, session.target, {
      hint: `Log in with the key that worked and check ~/.ssh/authorized_keys, or set ssh.insert_key: false to keep using it.`,
    });
  }
}

/**
 * Vagrant's key replacement, over a session an insecure key opened: adds the machine's
 * key, proves it with a new connection (`reconnect`), then removes the insecure keys
 * through that one. Returns the new session; the old one is closed.
 */
async function replaceInsecureKey(
  session: SshSession,
  machineKey: LoginKey,
  reconnect: () => Promise<SshSession>,
  signal?: AbortSignal,
): Promise<SshSession> {
  try {
    await runOrFail(session, authorizedKeysCommand({ add: machineKey.publicKey }), "add the machine's key to authorized_keys", signal);
  } finally {
    await session.close().catch(() => undefined);
  }
  const fresh = await reconnect();
  try {
    const insecure = (await vagrantInsecureKeys()).map((k) => k.publicKey);
    await runOrFail(fresh, authorizedKeysCommand({ remove: insecure }), "remove Vagrant's insecure keys from authorized_keys", signal);
  } catch (err) {
    await fresh.close().catch(() => undefined);
    throw err;
  }
  return fresh;
}

/**
 * Where later commands (ssh, ssh-config, rsync, ansible) find the key that logs in: a
 * key of its own file, or — for an insecure key kept with `insert_key: false` — a copy
 * in the machine's folder (OpenSSH wants a 0600 file).
 */
export async function keyFileFor(key: LoginKey, machineDir: string): Promise<string> {
  if (key.path !== undefined) return key.path;
  const path = join(machineDir, `vagrant-insecure-${key.insecure ?? 'key'}`);
  await writeFile(path, key.privateKey.endsWith('\n') ? key.privateKey : `${key.privateKey}\n`, { mode: 0o600 });
  return path;
}

/** What the first login settled: the session to go on with, the key later commands use, what to tell the user. */
export interface SettledLogin {
  session: SshSession;
  privateKeyPath: string;
  /** Set when the machine's key just replaced an insecure one. */
  keyInserted?: string;
  /** "; Vagrant's insecure ed25519 key replaced with the machine's key", or '' when the machine's key got in. */
  note: string;
}

/**
 * After `up` got in with one of `keys`: the machine's key needs nothing; an insecure
 * key is replaced (unless `insertKey` is off); any other key is kept, as Vagrant does.
 */
export async function settleLogin(
  session: SshSession,
  keys: LoginKey[],
  options: { insertKey: boolean; machineDir: string; reconnect: (own: LoginKey) => Promise<SshSession>; onStatus?: (s: string) => void; signal?: AbortSignal },
): Promise<SettledLogin> {
  const used = keys[session.acceptedKey.index]!;
  const own = keys.find((k) => k.machine)!;
  if (used.machine) return { session, privateKeyPath: own.path!, note: '' };
  if (used.insecure && options.insertKey) {
    options.onStatus?.(`logged in with ${used.label}: replacing it with the machine's key`);
    const fresh = await replaceInsecureKey(session, own, () => options.reconnect(own), options.signal);
    return { session: fresh, privateKeyPath: own.path!, keyInserted: new Date().toISOString(), note: `; ${used.label} replaced with the machine's key` };
  }
  return {
    session,
    privateKeyPath: await keyFileFor(used, options.machineDir),
    note: `; logged in with ${used.label}${used.insecure ? ', kept (ssh.insert_key is false)' : ''}`,
  };
}
