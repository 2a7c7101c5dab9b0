/**
 * connectSsh against in-process ssh2 servers on 127.0.0.1: pinning on first contact,
 * mismatches, exec results and streams, and each way a connection can fail.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh, expandProxyCommand, sshTargetLabel } from '../../../src/ssh/client.js';
import { SshError } from '../../../src/ssh/errors.js';
import { HostKeyMismatchError, memoryHostKeyStore, pinnedKeyFromBlob } from '../../../src/ssh/host-key.js';
import { freePort, keyPair, parsedKey, startRawServer, startTestServer, type TestServer } from './server.js';

const hostKey = keyPair();
const otherHostKey = keyPair();
const userKey = keyPair();
const strangerKey = keyPair();
const hostPin = pinnedKeyFromBlob(parsedKey(hostKey.public).getPublicSSH());

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ hostKey: hostKey.private, userKey: userKey.public });
});
afterAll(async () => {
  await server.close();
});

const base = () => ({ host: '127.0.0.1', port: server.port, username: 'vagrant', privateKey: userKey.private, timeoutMs: 5_000 });

describe('sshTargetLabel', () => {
  it('names user@host:port (IPv6 in brackets, port 22 by default), after the label when there is one', () => {
    expect(sshTargetLabel({ username: 'vagrant', host: '127.0.0.1', port: 2222 })).toBe('vagrant@127.0.0.1:2222');
    expect(sshTargetLabel({ username: 'vagrant', host: 'fd00::5' })).toBe('vagrant@[fd00::5]:22');
    expect(sshTargetLabel({ username: 'vagrant', host: '10.0.0.5', label: "machine 'web'" })).toBe("machine 'web' (vagrant@10.0.0.5:22)");
  });
});

describe('host key pinning', () => {
  it('pins on first contact, then verifies', async () => {
    const store = memoryHostKeyStore();
    const s1 = await connectSsh({ ...base(), hostKey: store });
    expect(s1.pinnedNow).toBe(true);
    expect(store.current).toEqual(hostPin);
    expect(s1.hostKey).toEqual(hostPin);
    await s1.close();
    const s2 = await connectSsh({ ...base(), hostKey: store });
    expect(s2.pinnedNow).toBe(false);
    expect(s2.hostKey).toEqual(hostPin);
    expect(s2.serverSoftware).toMatch(/^ssh2js/);
    await s2.close();
  });

  it('refuses a different host key, naming both fingerprints', async () => {
    const other = await startTestServer({ hostKey: otherHostKey.private, userKey: userKey.public });
    try {
      const store = memoryHostKeyStore(hostPin);
      const before = other.users.length;
      const err = await connectSsh({ ...base(), port: other.port, hostKey: store, label: "machine 'web'" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostKeyMismatchError);
      const e = err as HostKeyMismatchError;
      expect(e.kind).toBe('host-key');
      expect(e.message).toContain(hostPin.fingerprint);
      expect(e.message).toContain(pinnedKeyFromBlob(parsedKey(otherHostKey.public).getPublicSSH()).fingerprint);
      expect(e.message).toContain("machine 'web'");
      expect(e.hint).toContain('vmenv destroy');
      // Refused before authenticating: the key was never offered to the impostor.
      expect(other.users.length).toBe(before);
      expect(store.current).toEqual(hostPin);
    } finally {
      await other.close();
    }
  });

  it('does not pin a server that refuses the key', async () => {
    const store = memoryHostKeyStore();
    const err = await connectSsh({ ...base(), privateKey: strangerKey.private, hostKey: store }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('auth');
    expect((err as SshError).hint).toMatch(/not installed/);
    expect(store.current).toBeUndefined();
  });

  it('offers the fallback keys on the same connection and says which one got in', async () => {
    const before = server.connections;
    const s = await connectSsh({
      ...base(),
      privateKey: strangerKey.private,
      privateKeyLabel: "the machine's key",
      fallbackKeys: [{ privateKey: otherHostKey.private, label: 'first fallback' }, { privateKey: userKey.private, label: 'second fallback' }],
      hostKey: memoryHostKeyStore(),
    });
    expect(s.acceptedKey).toEqual({ index: 2, label: 'second fallback', fingerprint: pinnedKeyFromBlob(parsedKey(userKey.public).getPublicSSH()).fingerprint });
    expect(server.connections - before).toBe(1);
    await s.close();
    const own = await connectSsh({ ...base(), fallbackKeys: [{ privateKey: strangerKey.private }], hostKey: memoryHostKeyStore() });
    expect(own.acceptedKey.index).toBe(0);
    await own.close();
  });

  it('names every key it offered when the server refuses them all', async () => {
    const err = await connectSsh({
      ...base(),
      privateKey: strangerKey.private,
      privateKeyLabel: "the machine's key",
      fallbackKeys: [{ privateKey: otherHostKey.private, label: "Vagrant's insecure ed25519 key" }],
      hostKey: memoryHostKeyStore(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    const e = err as SshError;
    expect(e.kind).toBe('auth');
    expect(e.message).toMatch(/^SSH authentication failed for vagrant@127\.0\.0\.1:\d+: the server refused all 2 keys offered: /);
    expect(e.message).toContain(`ssh-ed25519 ${pinnedKeyFromBlob(parsedKey(strangerKey.public).getPublicSSH()).fingerprint} (the machine's key)`);
    expect(e.message).toContain("(Vagrant's insecure ed25519 key)");
    expect(e.hint).toMatch(/any of the 2 keys for 'vagrant'.*ssh\.private_key_path/s);
  });

  it('fails when the pin cannot be stored', async () => {
    const store = { get: async () => undefined, set: async () => Promise.reject(new Error('disk full')) };
    await expect(connectSsh({ ...base(), hostKey: store })).rejects.toThrow('disk full');
  });
});

describe('exec', () => {
  it('returns exit codes, and stdout and stderr apart', async () => {
    const s = await connectSsh({ ...base(), hostKey: memoryHostKeyStore() });
    try {
      expect(await s.exec('exit 7')).toEqual({ code: 7, stdout: '', stderr: '' });
      expect(await s.exec('outerr')).toEqual({ code: 0, stdout: 'to stdout\n', stderr: 'to stderr\n' });
      expect(await s.exec('killed')).toMatchObject({ code: null, signal: 'SIGKILL' });
      // Several at once on one connection.
      const rs = await Promise.all([1, 2, 3, 4].map((n) => s.exec(`exit ${n}`)));
      expect(rs.map((r) => r.code)).toEqual([1, 2, 3, 4]);
    } finally {
      await s.close();
    }
  });

  it('streams to callbacks instead of collecting', async () => {
    const s = await connectSsh({ ...base(), hostKey: memoryHostKeyStore() });
    try {
      const out: string[] = [];
      const err: string[] = [];
      const r = await s.exec('outerr', { onStdout: (d) => out.push(d.toString()), onStderr: (d) => err.push(d.toString()) });
      expect(r).toEqual({ code: 0 });
      expect(out.join('')).toBe('to stdout\n');
      expect(err.join('')).toBe('to stderr\n');
    } finally {
      await s.close();
    }
  });

  it('feeds stdin (string, Buffer, stream) and sends env and pty requests', async () => {
    const s = await connectSsh({ ...base(), hostKey: memoryHostKeyStore() });
    try {
      expect((await s.exec('cat', { stdin: 'hello\n' })).stdout).toBe('hello\n');
      const big = Buffer.alloc(3 * 1024 * 1024, 'x');
      expect((await s.exec('cat', { stdin: big })).stdout!.length).toBe(big.length);
      expect((await s.exec('cat', { stdin: Readable.from(['a', 'b', 'c']) })).stdout).toBe('abc');
      // No stdin: EOF at once, so `cat` ends.
      expect(await s.exec('cat')).toEqual({ code: 0, stdout: '', stderr: '' });
      expect((await s.exec('env', { env: { A: '1', B: 'two words' } })).stdout).toBe('A=1\nB=two words\n');
      await s.exec('true', { pty: true });
      expect(server.calls.at(-1)).toMatchObject({ command: 'true', pty: true });
    } finally {
      await s.close();
    }
  });

  it('cancels a command with an AbortSignal', async () => {
    const s = await connectSsh({ ...base(), hostKey: memoryHostKeyStore() });
    try {
      const ac = new AbortController();
      const p = s.exec('hang', { signal: ac.signal });
      setTimeout(() => ac.abort(new Error('stop')), 50);
      await expect(p).rejects.toThrow('stop');
      // The connection is still usable.
      expect((await s.exec('exit 3')).code).toBe(3);
    } finally {
      await s.close();
    }
  });

  it('rejects running commands when the connection is lost', async () => {
    const s = await connectSsh({ ...base(), hostKey: memoryHostKeyStore() });
    const lost = new Promise<SshError | undefined>((r) => s.onClose(r));
    const p = s.exec('hang');
    await new Promise((r) => setTimeout(r, 50));
    for (const c of server.clients) c.end();
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('lost');
    expect((await lost)?.kind).toBe('lost');
    expect(s.closed).toBe(true);
    await expect(s.exec('true')).rejects.toMatchObject({ kind: 'lost' });
    await s.close();
  });
});

describe('keepalive', () => {
  it('declares a connection whose peer stopped answering lost', async () => {
    // A relay that can be frozen: bytes stop flowing, the sockets stay open.
    let frozen = false;
    const sockets: Socket[] = [];
    const relay = createServer((inbound) => {
      const outbound = connect(server.port, '127.0.0.1');
      sockets.push(inbound, outbound);
      inbound.on('data', (d: Buffer) => frozen || outbound.write(d));
      outbound.on('data', (d: Buffer) => frozen || inbound.write(d));
      inbound.on('error', () => undefined);
      outbound.on('error', () => undefined);
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    try {
      const s = await connectSsh({
        ...base(),
        port: (relay.address() as AddressInfo).port,
        hostKey: memoryHostKeyStore(),
        keepaliveIntervalMs: 100,
        keepaliveCountMax: 2,
      });
      expect((await s.exec('true')).code).toBe(0);
      // Idle but alive: keepalives are answered.
      await new Promise((r) => setTimeout(r, 400));
      expect(s.closed).toBe(false);
      frozen = true;
      const t0 = Date.now();
      const err = await new Promise<SshError | undefined>((r) => s.onClose(r));
      expect(Date.now() - t0).toBeLessThan(1_500);
      expect(err?.kind).toBe('lost');
      expect(err?.message).toMatch(/stopped answering/);
      await s.close();
    } finally {
      for (const x of sockets) x.destroy();
      await new Promise<void>((r) => relay.close(() => r()));
    }
  });
});

describe('connection failures', () => {
  it('refused', async () => {
    const port = await freePort();
    const err = (await connectSsh({ ...base(), port, hostKey: memoryHostKeyStore() }).catch((e: unknown) => e)) as SshError;
    expect(err).toBeInstanceOf(SshError);
    expect(err.kind).toBe('refused');
    expect(err.exitCode).toBe(3);
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.hint).toMatch(/booting/);
  });

  it('closed before the banner', async () => {
    const raw = await startRawServer('close');
    try {
      const err = (await connectSsh({ ...base(), port: raw.port, hostKey: memoryHostKeyStore() }).catch((e: unknown) => e)) as SshError;
      expect(err).toBeInstanceOf(SshError);
      expect(err.kind).toBe('closed');
    } finally {
      await raw.close();
    }
  });

  it('times out on a server that never speaks', async () => {
    const raw = await startRawServer('silent');
    try {
      const t0 = Date.now();
      const err = (await connectSsh({ ...base(), port: raw.port, hostKey: memoryHostKeyStore(), timeoutMs: 400 }).catch((e: unknown) => e)) as SshError;
      expect(err).toBeInstanceOf(SshError);
      expect(err.kind).toBe('timeout');
      expect(err.exitCode).toBe(5);
      expect(Date.now() - t0).toBeLessThan(2_000);
    } finally {
      await raw.close();
    }
  });

  it('is cancelled by its signal', async () => {
    const raw = await startRawServer('silent');
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('cancelled')), 50);
      await expect(connectSsh({ ...base(), port: raw.port, hostKey: memoryHostKeyStore(), signal: ac.signal })).rejects.toThrow('cancelled');
    } finally {
      await raw.close();
    }
  });

  it('refuses an unusable key before connecting', async () => {
    await expect(connectSsh({ ...base(), privateKey: userKey.public, hostKey: memoryHostKeyStore() })).rejects.toMatchObject({ kind: 'key' });
    await expect(connectSsh({ ...base(), privateKey: 'garbage', hostKey: memoryHostKeyStore() })).rejects.toMatchObject({ kind: 'key' });
  });
});

describe('proxy command', () => {
  it('expands tokens as OpenSSH', () => {
    expect(expandProxyCommand('nc %h %p # %r %% %x', '10.0.0.2', 22, 'root')).toBe('nc 10.0.0.2 22 # root % %x');
  });

  it('reaches the server through the command', async () => {
    const store = memoryHostKeyStore();
    const s = await connectSsh({ ...base(), host: '127.0.0.1', hostKey: store, proxyCommand: 'nc %h %p' });
    try {
      expect((await s.exec('exit 5')).code).toBe(5);
      expect(store.current).toEqual(hostPin);
    } finally {
      await s.close();
    }
  });

  it('reports what the command said when it fails', async () => {
    const port = await freePort();
    const err = (await connectSsh({ ...base(), port, hostKey: memoryHostKeyStore(), proxyCommand: 'nc %h %p' }).catch((e: unknown) => e)) as SshError;
    expect(err).toBeInstanceOf(SshError);
    expect(['refused', 'closed']).toContain(err.kind);
    const err2 = (await connectSsh({ ...base(), hostKey: memoryHostKeyStore(), proxyCommand: 'sh -c "echo no such namespace >&2; exit 1"' }).catch((e: unknown) => e)) as SshError;
    expect(err2.kind).toBe('proxy');
    expect(err2.message).toContain('no such namespace');
  });
});
