/**
 * The qemu+ssh transport against the harness's real OpenSSH server (127.0.0.1:22022)
 * and real libvirtd (socket /run/vmenv-test/libvirt/libvirt-sock): the far side runs
 * netcat (or virt-ssh-helper) exactly as libvirt's own client would.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtConnectError } from '../../src/libvirt/errors.js';
import { openLibvirt } from '../../src/libvirt/index.js';
import { REMOTE_PROGRAM } from '../../src/libvirt/protocol/packet.js';
import { Proc } from '../../src/libvirt/protocol/procedures.js';
import { dialerForUri } from '../../src/libvirt/transport/select.js';
import { probeUnixSocket } from '../../src/libvirt/transport/unix.js';
import { parseLibvirtUri } from '../../src/libvirt/uri.js';
import { testHost } from '../support/harness.js';
import { generateMachineKey } from '../../src/ssh/keys.js';

/** An ed25519 pair in ssh2's shape, from vmenv's generator (ssh2's drops a leading zero byte now and then). */
function ed25519Pair(): { public: string; private: string } {
  const k = generateMachineKey('test');
  return { public: k.publicKey, private: k.privateKey };
}


const host = testHost();
const { port, user, keyPath } = host.ssh;
let dir: string;
let knownHosts: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-ssh-it-'));
  // known_hosts written from the server's own public host key, in the [host]:port form.
  const [type, key] = readFileSync(join(host.state, 'ssh', 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/);
  knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${type} ${key}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = `qemu+ssh://${user}@127.0.0.1:${port}/system`;
const viaNetcat = (extra: string): string => `${base}?socket=${host.socket}&keyfile=${keyPath}&${extra}`;

async function dial(uri: string): Promise<Duplex> {
  return dialerForUri(parseLibvirtUri(uri), { env: {}, home: dir, timeoutMs: 20_000 }).dial();
}

/** A 28-byte libvirt packet header: CALL of `proc` with `serial`, no body. */
function header(proc: number, serial: number, length = 28): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(length, 0);
  b.writeUInt32BE(REMOTE_PROGRAM, 4);
  b.writeUInt32BE(1, 8); // protocol version
  b.writeInt32BE(proc, 12);
  b.writeInt32BE(0, 16); // CALL
  b.writeUInt32BE(serial, 20);
  b.writeInt32BE(0, 24); // OK
  return b;
}

/** Read exactly n bytes; fail after ms rather than hang. */
function readBytes(s: Duplex, n: number, ms = 15_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', finish);
      s.off('end', onEnd);
      s.pause();
      if (err) reject(err);
      else {
        if (buf.length > n) s.unshift(buf.subarray(n));
        resolve(buf.subarray(0, n));
      }
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) finish();
    };
    const onEnd = (): void => finish(new Error(`the stream ended after ${buf.length} of ${n} bytes`));
    const timer = setTimeout(() => finish(new Error(`no reply from the daemon within ${ms} ms (${buf.length} of ${n} bytes)`)), ms);
    s.on('data', onData);
    s.once('error', finish);
    s.once('end', onEnd);
    s.resume();
  });
}

/** Resolves when the stream finishes (end or close), rejects after ms. */
function closedWithin(s: Duplex, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`stream still open after ${ms} ms`)), ms);
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    s.once('end', done);
    s.once('close', done);
    s.once('error', done);
    s.resume();
  });
}

/**
 * The real exchange: the daemon answers a call with an error reply (no connection is
 * open yet) — bytes went through sshd, nc and libvirtd and back — and a header with
 * an impossible length makes the daemon drop the connection.
 */
async function exchange(s: Duplex): Promise<void> {
  // The helper keeps running: nothing closes in the first moments.
  let early = false;
  s.once('close', () => (early = true));
  await new Promise((r) => setTimeout(r, 300));
  expect(early).toBe(false);

  s.write(header(Proc.ConnectGetHostname, 7));
  const len = (await readBytes(s, 4)).readUInt32BE(0);
  expect(len).toBeGreaterThan(28);
  const rest = await readBytes(s, len - 4);
  expect(rest.readUInt32BE(0)).toBe(REMOTE_PROGRAM);
  expect(rest.readInt32BE(8)).toBe(Proc.ConnectGetHostname);
  expect(rest.readInt32BE(12)).toBe(1); // REPLY
  expect(rest.readUInt32BE(16)).toBe(7); // our serial
  expect(rest.readInt32BE(20)).toBe(1); // ERROR

  s.on('error', () => {});
  s.write(header(Proc.ConnectGetHostname, 8, 0x7fffffff));
  await closedWithin(s, 10_000);
}

describe('qemu+ssh to the harness (127.0.0.1 only)', () => {
  it('dials with keyfile + no_verify, runs nc on the daemon socket, and exchanges bytes', async () => {
    const s = await dial(viaNetcat('no_verify=1'));
    await exchange(s);
  });

  it('dials verifying the host key against a known_hosts file', async () => {
    const s = await dial(viaNetcat(`known_hosts=${knownHosts}`));
    await exchange(s);
  });

  it('refuses the real sshd when known_hosts holds another key for it', async () => {
    const other = ed25519Pair().public.split(/\s+/);
    const wrong = join(dir, 'known_hosts_wrong');
    writeFileSync(wrong, `[127.0.0.1]:${port} ${other[0]} ${other[1]}\n`);
    const err = await dial(viaNetcat(`known_hosts=${wrong}`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toMatch(/has CHANGED/);
  });

  it('reports a key the server does not accept', async () => {
    const k = ed25519Pair();
    const f = join(dir, 'stranger_key');
    writeFileSync(f, k.private, { mode: 0o600 });
    const err = await dial(`${base}?socket=${host.socket}&keyfile=${f}&no_verify=1`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toContain(`SSH authentication failed for ${user}@127.0.0.1:${port} (tried: key ${f})`);
  });

  it('explains a socket that does not exist on the far side', async () => {
    const s = await dial(`${base}?socket=/run/vmenv-test/no-such-sock&keyfile=${keyPath}&no_verify=1`);
    s.resume();
    const [err] = (await once(s, 'error')) as [Error];
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect(err.message).toContain(`no libvirt socket at /run/vmenv-test/no-such-sock on ${user}@127.0.0.1:${port}`);
  });

  it('runs virt-ssh-helper with proxy=native (reaching the system socket, or saying it is absent)', async () => {
    const s = await dial(`${base}?proxy=native&keyfile=${keyPath}&no_verify=1`);
    const systemUp = (await probeUnixSocket('/var/run/libvirt/libvirt-sock')) || (await probeUnixSocket('/var/run/libvirt/virtqemud-sock'));
    if (systemUp) {
      await exchange(s);
    } else {
      s.resume();
      const [err] = (await once(s, 'error')) as [Error];
      expect(err.message).toMatch(/no libvirt socket|Failed to connect socket/);
    }
  });

  it('speaks the full protocol over ssh: the hostname matches the one over the unix socket', async () => {
    const overSsh = await openLibvirt(viaNetcat(`known_hosts=${knownHosts}`));
    const overUnix = await openLibvirt(host.uri);
    try {
      const [a, b] = await Promise.all([overSsh.connectGetHostname(), overUnix.connectGetHostname()]);
      expect(a).toBe(b);
      expect(a.length).toBeGreaterThan(0);
    } finally {
      await Promise.all([overSsh.close(), overUnix.close()]);
    }
  });
});
