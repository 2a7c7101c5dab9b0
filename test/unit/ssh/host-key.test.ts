/**
 * Host key pins: stores, comparison, the mismatch message, and the known_hosts line
 * that OpenSSH itself accepts for the pinned key.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshError } from '../../../src/ssh/errors.js';
import {
  compareHostKey,
  fileHostKeyStore,
  HostKeyMismatchError,
  knownHostsLineForPin,
  memoryHostKeyStore,
  parsePinnedKey,
  pinnedKeyBlob,
  pinnedKeyFromBlob,
  verifyAgainstKnownHosts,
  writePinnedKnownHosts,
} from '../../../src/ssh/host-key.js';
import { parseKnownHosts } from '../../../src/ssh/known-hosts.js';
import { keyPair, parsedKey } from './server.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-hostkey-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const a = parsedKey(keyPair().public).getPublicSSH();
const b = parsedKey(keyPair().public).getPublicSSH();

describe('pins', () => {
  it('records algorithm, base64 and the SHA256 fingerprint ssh-keygen prints', () => {
    const pin = pinnedKeyFromBlob(a);
    expect(pin.algorithm).toBe('ssh-ed25519');
    expect(pin.key).toBe(a.toString('base64'));
    const pubFile = join(dir, 'a.pub');
    writeFileSync(pubFile, `ssh-ed25519 ${pin.key} x\n`);
    expect(execFileSync('ssh-keygen', ['-l', '-f', pubFile], { encoding: 'utf8' }).split(' ')[1]).toBe(pin.fingerprint);
    expect(pinnedKeyBlob(pin).equals(a)).toBe(true);
  });

  it('parses stored pins and refuses damaged ones', () => {
    const pin = pinnedKeyFromBlob(a);
    expect(parsePinnedKey(JSON.parse(JSON.stringify(pin)))).toEqual(pin);
    // The fingerprint is recomputed, never taken from the file.
    expect(parsePinnedKey({ ...pin, fingerprint: 'SHA256:forged' })).toEqual(pin);
    expect(parsePinnedKey({ ...pin, algorithm: 'ssh-rsa' })).toBeUndefined();
    expect(parsePinnedKey({ ...pin, key: 'not base64!' })).toBeUndefined();
    expect(parsePinnedKey(null)).toBeUndefined();
    expect(() => pinnedKeyFromBlob(Buffer.from([1, 2]))).toThrow(TypeError);
  });

  it('compares: unpinned, match, mismatch', () => {
    const pin = pinnedKeyFromBlob(a);
    expect(compareHostKey(undefined, a, { target: 't' })).toEqual({ status: 'unpinned', key: pin });
    expect(compareHostKey(pin, a, { target: 't' })).toEqual({ status: 'match' });
    let err: unknown;
    try {
      compareHostKey(pin, b, { target: "machine 'web' (vagrant@127.0.0.1:2222)", store: '/p/.vmenv/web/host_key' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    const e = err as HostKeyMismatchError;
    expect(e).toBeInstanceOf(SshError);
    expect(e.exitCode).toBe(1);
    expect(e.message).toContain(pin.fingerprint);
    expect(e.message).toContain(pinnedKeyFromBlob(b).fingerprint);
    expect(e.message).toContain("machine 'web'");
    expect(e.hint).toContain('vmenv destroy');
    expect(e.hint).toContain('/p/.vmenv/web/host_key');
    expect(e.pinned).toEqual(pin);
    expect(e.offered).toEqual(pinnedKeyFromBlob(b));
  });
});

describe('stores', () => {
  it('memory', async () => {
    const s = memoryHostKeyStore();
    expect(await s.get()).toBeUndefined();
    await s.set(pinnedKeyFromBlob(a));
    expect(await s.get()).toEqual(pinnedKeyFromBlob(a));
  });

  it('file: missing is unpinned, set then get, damaged is an error', async () => {
    const path = join(dir, 'state', 'web', 'host_key.json');
    const s = fileHostKeyStore(path);
    expect(await s.get()).toBeUndefined();
    await s.set(pinnedKeyFromBlob(a));
    expect(await s.get()).toEqual(pinnedKeyFromBlob(a));
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(pinnedKeyFromBlob(a));
    expect(s.describe?.()).toBe(path);
    writeFileSync(path, '{"algorithm":"ssh-ed25519","key":"AAAA"}');
    await expect(s.get()).rejects.toMatchObject({ kind: 'host-key', message: expect.stringContaining('damaged') });
    writeFileSync(path, 'not json');
    await expect(s.get()).rejects.toBeInstanceOf(SshError);
  });
});

describe('known_hosts line', () => {
  it('uses [host]:port, plain host on 22, or the alias', () => {
    const pin = pinnedKeyFromBlob(a);
    expect(knownHostsLineForPin(pin, '127.0.0.1', 2222)).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${pin.key}`);
    expect(knownHostsLineForPin(pin, '192.168.121.5', 22)).toBe(`192.168.121.5 ssh-ed25519 ${pin.key}`);
    expect(knownHostsLineForPin(pin, '::1', 2222)).toBe(`[::1]:2222 ssh-ed25519 ${pin.key}`);
    expect(knownHostsLineForPin(pin, '127.0.0.1', 2222, 'vmenv-Web-1a2b')).toBe(`vmenv-web-1a2b ssh-ed25519 ${pin.key}`);
  });

  it('is found by ssh-keygen -F, and checks like OpenSSH', async () => {
    const pin = pinnedKeyFromBlob(a);
    const file = join(dir, 'known_hosts');
    await writePinnedKnownHosts(file, pin, '127.0.0.1', 2222);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    const found = execFileSync('ssh-keygen', ['-F', '[127.0.0.1]:2222', '-f', file], { encoding: 'utf8' });
    expect(found).toContain(pin.key);
    const entries = parseKnownHosts(readFileSync(file, 'utf8'));
    expect(() => verifyAgainstKnownHosts(entries, file, '127.0.0.1', 2222, a, 'jump')).not.toThrow();
    expect(() => verifyAgainstKnownHosts(entries, file, '127.0.0.1', 2222, b, 'jump')).toThrow(/CHANGED/);
    expect(() => verifyAgainstKnownHosts(entries, file, '127.0.0.1', 2223, a, 'jump')).toThrow(/not known/);
  });

  it('is written again only when its line or mode differs', async () => {
    const pin = pinnedKeyFromBlob(a);
    const file = join(dir, 'known_hosts-again');
    await writePinnedKnownHosts(file, pin, '127.0.0.1', 2222);
    const first = statSync(file).ino;
    await writePinnedKnownHosts(file, pin, '127.0.0.1', 2222);
    expect(statSync(file).ino).toBe(first);
    await writePinnedKnownHosts(file, pin, '127.0.0.1', 2223);
    expect(statSync(file).ino).not.toBe(first);
    expect(readFileSync(file, 'utf8')).toBe(`[127.0.0.1]:2223 ssh-ed25519 ${pin.key}\n`);
    chmodSync(file, 0o666);
    await writePinnedKnownHosts(file, pin, '127.0.0.1', 2223);
    expect(statSync(file).mode & 0o777).toBe(0o644);
  });
});
