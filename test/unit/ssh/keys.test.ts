/**
 * Per-machine keys: OpenSSH's own tools read what we write, with the right modes,
 * atomically; unusable keys are refused with a UserError.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { SshError } from '../../../src/ssh/errors.js';
import {
  ensureMachineKey,
  fingerprintOfPublicLine,
  generateMachineKey,
  parsePrivateKey,
  publicKeyLineOf,
  readPrivateKey,
  readPublicKeyLine,
  writeMachineKey,
} from '../../../src/ssh/keys.js';
import { writeFileAtomic } from '../../../src/util/atomic.js';

function parsePublic(line: string): ParsedKey {
  const k = ssh2.utils.parseKey(line);
  if (k instanceof Error) throw k;
  return Array.isArray(k) ? k[0]! : k;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-keys-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('generateMachineKey', () => {
  it('makes an ed25519 pair that ssh-keygen reads', async () => {
    const pair = generateMachineKey('vmenv web@project');
    expect(pair.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(pair.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]+=* vmenv web@project$/);
    const path = join(dir, 'sub', 'id_ed25519');
    await writeMachineKey(path, pair);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}.pub`).mode & 0o777).toBe(0o644);
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700);
    // ssh-keygen -y derives the public key from our private key file: the same key.
    const derived = execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim();
    expect(derived.split(' ').slice(0, 2)).toEqual(pair.publicKey.split(' ').slice(0, 2));
    // And the same fingerprint as ssh-keygen -l.
    const listed = execFileSync('ssh-keygen', ['-l', '-f', path], { encoding: 'utf8' });
    expect(listed).toContain(pair.fingerprint);
    expect(listed).toContain('(ED25519)');
    // No temporary files left behind.
    expect(readdirSync(join(dir, 'sub')).sort()).toEqual(['id_ed25519', 'id_ed25519.pub']);
  });

  it("keeps a public key that starts with a zero byte whole (ssh2's own generator drops it)", () => {
    // About one key in 256 starts with 0x00; make keys until one does.
    let pair = generateMachineKey('zero');
    let blob = Buffer.from(pair.publicKey.split(' ')[1]!, 'base64');
    for (let i = 0; i < 5000 && blob[19] !== 0; i++) {
      pair = generateMachineKey('zero');
      blob = Buffer.from(pair.publicKey.split(' ')[1]!, 'base64');
    }
    expect(blob[19]).toBe(0);
    expect(blob.length).toBe(51);
    const path = join(dir, 'zero-lead');
    writeFileSync(path, pair.privateKey, { mode: 0o600 });
    expect(execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).split(' ')[1]).toBe(blob.toString('base64'));
    // ssh2 reads it, and its signatures verify against the public line.
    const key = parsePrivateKey(pair.privateKey);
    expect(key.getPublicSSH().equals(blob)).toBe(true);
    const pub = parsePublic(pair.publicKey);
    const data = Buffer.from('to be signed');
    expect(pub.verify(data, key.sign(data))).toBe(true);
  });

  it('gives a different key every time', () => {
    expect(generateMachineKey().publicKey).not.toBe(generateMachineKey().publicKey);
  });

  it('refuses a comment with a line break', () => {
    expect(() => generateMachineKey('a\nb')).toThrow(TypeError);
  });
});

describe('ensureMachineKey', () => {
  it('creates once, then reads the same key', async () => {
    const path = join(dir, 'ensure', 'id_ed25519');
    const a = await ensureMachineKey(path, 'vmenv a');
    expect(a.created).toBe(true);
    const b = await ensureMachineKey(path, 'vmenv a');
    expect(b.created).toBe(false);
    expect(b.privateKey).toBe(a.privateKey);
    expect(b.publicKey).toBe(a.publicKey);
    expect(b.fingerprint).toBe(a.fingerprint);
  });

  it('puts back a lost .pub and a loosened mode', async () => {
    const path = join(dir, 'repair', 'id_ed25519');
    const a = await ensureMachineKey(path, 'vmenv r');
    unlinkSync(`${path}.pub`);
    execFileSync('chmod', ['0644', path]);
    const b = await ensureMachineKey(path);
    expect(b.publicKey).toBe(a.publicKey);
    expect(readFileSync(`${path}.pub`, 'utf8')).toBe(`${a.publicKey}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

describe('readPublicKeyLine', () => {
  it('ignores a .pub that belongs to another key', async () => {
    const path = join(dir, 'mismatch', 'id_ed25519');
    const a = generateMachineKey('mine');
    await writeMachineKey(path, a);
    writeFileSync(`${path}.pub`, `${generateMachineKey('other').publicKey}\n`);
    expect(await readPublicKeyLine(path)).toBe(a.publicKey);
  });

  it('reads keys made by ssh-keygen', async () => {
    const path = join(dir, 'openssh_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'made by ssh-keygen', '-f', path]);
    const line = await readPublicKeyLine(path);
    expect(line).toBe(readFileSync(`${path}.pub`, 'utf8').trim());
    expect(publicKeyLineOf(readFileSync(path))).toBe(line);
    expect(fingerprintOfPublicLine(line)).toBe(execFileSync('ssh-keygen', ['-l', '-f', path], { encoding: 'utf8' }).split(' ')[1]);
  });
});

describe('unusable keys', () => {
  it('a public key, garbage, a passphrase-protected key, a missing file', async () => {
    const pair = generateMachineKey();
    expect(() => parsePrivateKey(pair.publicKey, 'k.pub')).toThrow(/holds a public key/);
    expect(() => parsePrivateKey('nonsense', 'k')).toThrow(SshError);
    const enc = join(dir, 'encrypted');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', enc]);
    let err: unknown;
    try {
      parsePrivateKey(readFileSync(enc), enc);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('key');
    expect((err as SshError).message).toMatch(/passphrase/);
    expect((err as SshError).hint).toMatch(/never prompts/);
    await expect(readPrivateKey(join(dir, 'missing'))).rejects.toMatchObject({ kind: 'key', message: expect.stringMatching(/no such file/) });
  });
});

describe('writeFileAtomic', () => {
  it('replaces the whole file with the exact mode, whatever the umask', async () => {
    const path = join(dir, 'atomic');
    writeFileSync(path, 'old contents that are longer');
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(path, 'new', 0o644);
    } finally {
      process.umask(old);
    }
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(statSync(path).mode & 0o777).toBe(0o644);
  });

  it('leaves nothing behind when it cannot write', async () => {
    const sub = join(dir, 'ro');
    execFileSync('mkdir', ['-p', sub]);
    // Renaming over a directory fails after the temporary file was written.
    execFileSync('mkdir', ['-p', join(sub, 'target')]);
    await expect(writeFileAtomic(join(sub, 'target'), 'x', 0o600)).rejects.toThrow();
    expect(readdirSync(sub)).toEqual(['target']);
  });

  it('is what ssh -i accepts (OpenSSH checks the mode)', async () => {
    const path = join(dir, 'for-ssh');
    await writeMachineKey(path, generateMachineKey());
    // OpenSSH refuses a private key others can read; ours passes, a loosened copy does not.
    expect(spawnSync('ssh-keygen', ['-y', '-f', path]).status).toBe(0);
    execFileSync('chmod', ['0644', path]);
    expect(spawnSync('ssh-keygen', ['-y', '-f', path]).status).not.toBe(0);
  });
});
