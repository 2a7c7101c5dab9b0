import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LibvirtConnectError } from '../../../src/libvirt/errors.js';
import { tcpDialer } from '../../../src/libvirt/transport/tcp.js';
import { checkUnixSocket, explainUnixError, probeUnixSocket, unixDialer } from '../../../src/libvirt/transport/unix.js';

let dir: string;
const servers: net.Server[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-unix-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function echoServer(): net.Server {
  const s = net.createServer((c) => c.pipe(c));
  servers.push(s);
  return s;
}

async function roundTrip(sock: Duplex, data: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  const done = new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      parts.push(d);
      n += d.length;
      if (n >= data.length) resolve();
    });
  });
  sock.write(data);
  await done;
  return Buffer.concat(parts);
}

/** A socket file with nobody listening: bound by a process that was then killed. */
function staleSocket(path: string): void {
  const r = spawnSync(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
  ]);
  expect(r.signal).toBe('SIGKILL');
  expect(existsSync(path)).toBe(true);
}

describe('unixDialer', () => {
  it('connects to a real unix socket and moves bytes', async () => {
    const path = join(dir, 'echo.sock');
    const s = echoServer();
    s.listen(path);
    await once(s, 'listening');
    const d = unixDialer(path);
    expect(d.describe()).toBe(`unix socket ${path}`);
    const sock = await d.dial();
    const data = randomBytes(1 << 20);
    expect((await roundTrip(sock, data)).equals(data)).toBe(true);
    sock.destroy();
  });

  it('says there is no socket (ENOENT)', async () => {
    const path = join(dir, 'absent.sock');
    const err = await unixDialer(path, { missingHint: 'Start it.' }).dial().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toBe(`no libvirt socket at ${path} — is libvirtd running? Start it.`);
    expect((err as LibvirtConnectError).target).toBe(`unix socket ${path}`);
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('says the socket is stale (ECONNREFUSED)', async () => {
    const path = join(dir, 'stale.sock');
    staleSocket(path);
    const err = await unixDialer(path).dial().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toMatch(/exists but nothing accepts connections.*stale/);
  });

  it('says a plain file is not a socket', async () => {
    const path = join(dir, 'plain-file');
    writeFileSync(path, 'x');
    const err = await unixDialer(path).dial().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
  });

  it('gives the group hint on EACCES', () => {
    // Root is never refused by file permissions, so the errno is made, not provoked.
    const err = Object.assign(new Error('connect EACCES'), { code: 'EACCES' });
    expect(explainUnixError('/run/libvirt/libvirt-sock', err)).toMatch(/permission denied.*group.*libvirt/);
  });

  it('rejects with the abort reason', async () => {
    const path = join(dir, 'echo2.sock');
    const s = echoServer();
    s.listen(path);
    await once(s, 'listening');
    const ac = new AbortController();
    ac.abort(new Error('user pressed Ctrl-C'));
    await expect(unixDialer(path).dial(ac.signal)).rejects.toThrow('user pressed Ctrl-C');
  });

  it('probes sockets', async () => {
    const path = join(dir, 'probe.sock');
    const s = echoServer();
    s.listen(path);
    await once(s, 'listening');
    expect(await probeUnixSocket(path)).toBe(true);
    expect(await probeUnixSocket(join(dir, 'nope.sock'))).toBe(false);
    expect(await checkUnixSocket(path)).toBe('ok');
    expect(await checkUnixSocket(join(dir, 'nope.sock'))).toBe('missing');
    const stale = join(dir, 'stale2.sock');
    staleSocket(stale);
    expect(await checkUnixSocket(stale)).toBe('refused');
  });
});

describe('tcpDialer (127.0.0.1 only)', () => {
  it('connects, sets no-delay, and moves bytes', async () => {
    const s = echoServer();
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as net.AddressInfo).port;
    const d = tcpDialer('127.0.0.1', { port });
    expect(d.describe()).toBe(`tcp 127.0.0.1:${port}`);
    const spy = vi.spyOn(net.Socket.prototype, 'setNoDelay');
    const sock = await d.dial();
    expect(spy.mock.contexts).toContain(sock);
    expect(spy.mock.calls.at(-1)).toEqual([true]);
    spy.mockRestore();
    const data = randomBytes(256 * 1024);
    expect((await roundTrip(sock, data)).equals(data)).toBe(true);
    sock.destroy();
  });

  it('says nothing listens (ECONNREFUSED) with the listen_tcp hint', async () => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    const err = await tcpDialer('127.0.0.1', { port }).dial().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toMatch(/nothing accepts connections at 127\.0\.0\.1:\d+ .*listen_tcp/);
  });

  it('defaults to port 16509', () => {
    expect(tcpDialer('127.0.0.1').describe()).toBe('tcp 127.0.0.1:16509');
    expect(tcpDialer('::1').describe()).toBe('tcp [::1]:16509');
  });
});
