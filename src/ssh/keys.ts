/**
 * Per-machine SSH keys: an ed25519 pair generated at the first `up`, its private half
 * in OpenSSH's own format (what `ssh -i` and `ssh-keygen -y` read), written with mode
 * 0600 atomically (a temporary file in the same directory, fsynced, then renamed), its
 * public half beside it as `<path>.pub` — the line given to the guest through the
 * cloud-init seed.
 *
 * Keys are made with node:crypto and encoded here (OpenSSH's PROTOCOL.key format), not
 * with ssh2's generator: that one drops a leading zero byte of the 32-byte ed25519
 * public key (about one key in 200), giving a key no parser accepts.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { keyFingerprint } from './known-hosts.js';
import { writeFileAtomic } from '../util/atomic.js';
import { SshError } from './errors.js';

const { utils } = ssh2;

export interface MachineKeyPair {
  /** The private key, `-----BEGIN OPENSSH PRIVATE KEY-----` … (unencrypted). */
  privateKey: string;
  /** The public key line: `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

/** A new ed25519 key pair; `comment` ends the public line (e.g. `vmenv web@myproject`). */
export function generateMachineKey(comment = 'vmenv'): MachineKeyPair {
  if (/[\r\n]/.test(comment)) throw new TypeError('an SSH key comment cannot hold a line break');
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  return ed25519KeyPair(seed, pub, comment);
}

function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length, 0);
  return Buffer.concat([len, data]);
}

function sshUint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/**
 * Encode an ed25519 key (32-byte seed, 32-byte public key) as OpenSSH writes it:
 * an unencrypted `openssh-key-v1` private key and a `ssh-ed25519 <base64> <comment>` line.
 */
export function ed25519KeyPair(seed: Buffer, pub: Buffer, comment: string): MachineKeyPair {
  if (seed.length !== 32 || pub.length !== 32) throw new TypeError('an ed25519 key is a 32-byte seed and a 32-byte public key');
  const type = 'ssh-ed25519';
  const blob = Buffer.concat([sshString(type), sshString(pub)]);
  const check = randomBytes(4).readUInt32BE(0);
  let secret = Buffer.concat([
    sshUint32(check),
    sshUint32(check),
    sshString(type),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  // Padded with 1, 2, 3, … to the cipher's block size (8 for "none").
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(Buffer.alloc(0)),
    sshUint32(1),
    sshString(blob),
    sshString(secret),
  ]);
  const b64 = body.toString('base64').replace(/.{70}/g, '$&\n').replace(/\n$/, '');
  const privateKey = `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
  const publicKey = `${type} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
  return { privateKey, publicKey, fingerprint: keyFingerprint(blob) };
}

/** The `SHA256:…` fingerprint of a public key line (`type base64 [comment]`). */
export function fingerprintOfPublicLine(line: string): string {
  const blob = line.trim().split(/\s+/)[1];
  if (blob === undefined || !/^[A-Za-z0-9+/]+=*$/.test(blob)) throw new TypeError(`not an SSH public key line: ${JSON.stringify(line.slice(0, 40))}`);
  return keyFingerprint(Buffer.from(blob, 'base64'));
}

/**
 * Parse a private key (OpenSSH, PEM or PuTTY format). Encrypted keys and public keys
 * are refused with a UserError naming `source` (a path or a description).
 */
export function parsePrivateKey(data: string | Buffer, source = 'the private key'): ParsedKey {
  const parsed = utils.parseKey(data);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || key === undefined) {
    const msg = key instanceof Error ? key.message : 'no key found';
    const encrypted = /encrypted|passphrase/i.test(msg);
    throw new SshError('key', `cannot use ${source} as an SSH key: ${encrypted ? 'it is protected by a passphrase' : msg}`, source, {
      hint: encrypted
        ? 'vmenv never prompts for a passphrase: use a key without one (vmenv makes one per machine), or point ssh.private_key_path at an unencrypted key.'
        : 'The file must hold a private key in OpenSSH or PEM format (what `ssh -i` takes).',
    });
  }
  if (!key.isPrivateKey()) {
    throw new SshError('key', `${source} holds a public key, not a private one`, source, {
      hint: 'Point at the private half of the pair (the file without .pub).',
    });
  }
  return key;
}

/** The public key line (`type base64 comment`) of a private key. */
export function publicKeyLineOf(privateKey: string | Buffer, comment?: string): string {
  const key = parsePrivateKey(privateKey);
  const c = comment ?? key.comment;
  return `${key.type} ${key.getPublicSSH().toString('base64')}${c ? ` ${c}` : ''}`;
}

/**
 * Write a key pair: the private key at `path` (0600) and the public line at
 * `path.pub` (0644). The directory is created (0700) when missing. The public file is
 * written first, so a private key on disk always has its public half beside it.
 */
export async function writeMachineKey(path: string, pair: MachineKeyPair): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(`${path}.pub`, `${pair.publicKey}\n`, 0o644);
  await writeFileAtomic(path, pair.privateKey.endsWith('\n') ? pair.privateKey : `${pair.privateKey}\n`, 0o600);
}

/**
 * Read the machine key at `path`, or generate and write one when there is none.
 * `created` says which. A private key whose `.pub` is missing gets it rewritten.
 */
export async function ensureMachineKey(path: string, comment = 'vmenv'): Promise<MachineKeyPair & { created: boolean }> {
  let privateKey: string;
  try {
    privateKey = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw keyReadError(path, err);
    const pair = generateMachineKey(comment);
    await writeMachineKey(path, pair);
    return { ...pair, created: true };
  }
  const publicKey = await readPublicKeyLine(path);
  // Repair the mode if someone loosened it: OpenSSH refuses keys readable by others.
  await chmod(path, 0o600).catch(() => undefined);
  return { privateKey, publicKey, fingerprint: fingerprintOfPublicLine(publicKey), created: false };
}

/** The private key at `path`, checked to be usable (see parsePrivateKey). */
export async function readPrivateKey(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw keyReadError(path, err);
  }
  parsePrivateKey(text, path);
  return text;
}

/**
 * The public key line of the key at `path` (the private key's path): `path.pub` when it
 * exists and matches the private key, else derived from the private key (and `.pub`
 * rewritten when `path` is writable).
 */
export async function readPublicKeyLine(path: string): Promise<string> {
  let privateText: string;
  try {
    privateText = await readFile(path, 'utf8');
  } catch (err) {
    throw keyReadError(path, err);
  }
  const key = parsePrivateKey(privateText, path);
  const blob = key.getPublicSSH().toString('base64');
  let pub: string | undefined;
  try {
    pub = (await readFile(`${path}.pub`, 'utf8')).trim().split(/\r?\n/)[0];
  } catch {
    pub = undefined;
  }
  if (pub !== undefined && pub.split(/\s+/)[1] === blob) return pub;
  const line = `${key.type} ${blob}${key.comment ? ` ${key.comment}` : ''}`;
  await writeFileAtomic(`${path}.pub`, `${line}\n`, 0o644).catch(() => undefined);
  return line;
}

function keyReadError(path: string, err: unknown): SshError {
  const code = (err as NodeJS.ErrnoException).code;
  return new SshError('key', `cannot read the SSH key ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, path, {
    cause: err,
    hint:
      code === 'ENOENT'
        ? 'The machine key is made at the first `vmenv up`; if the state directory was removed, `vmenv destroy` and `vmenv up` make a new one.'
        : undefined,
  });
}
