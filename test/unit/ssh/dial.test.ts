/**
 * dialUntilAnswered against TCP servers on 127.0.0.1: a forward that keeps its first
 * connections silent (as QEMU's user-mode forward does while the guest boots), a slow
 * server whose first connection still wins, refusal, close-before-a-word, the bound on
 * connections open at once, the timeout and cancellation.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { dialUntilAnswered } from '../../../src/ssh/dial.js';
import { SshError } from '../../../src/ssh/errors.js';
import { freePort, startRawServer } from './server.js';

const servers: Server[] = [];
const held: Socket[] = [];
afterEach(async () => {
  for (const s of held.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

/** Accepts; connection n (0-based) says `SSH-2.0-n` after `delayOf(n)` ms, or never (undefined). */
async function server(delayOf: (n: number) => number | undefined): Promise<{ port: number; accepted: () => number; openNow: () => number }> {
  let n = 0;
  const open = new Set<Socket>();
  const srv = createServer((s) => {
    const i = n++;
    open.add(s);
    held.push(s);
    s.on('error', () => undefined);
    s.on('close', () => open.delete(s));
    const d = delayOf(i);
    if (d !== undefined) setTimeout(() => s.writable && s.write(`SSH-2.0-${i}\r\n`), d);
  });
  servers.push(srv);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return { port: (srv.address() as AddressInfo).port, accepted: () => n, openNow: () => open.size };
}

async function readLine(s: Socket): Promise<string> {
  const data = once(s, 'data');
  s.resume();
  const [chunk] = (await data) as [Buffer];
  return chunk.toString().trim();
}

describe('dialUntilAnswered', () => {
  it('opens another connection while the first stays silent and returns the one that speaks', async () => {
    const srv = await server((n) => (n < 2 ? undefined : 0));
    const t0 = Date.now();
    const s = await dialUntilAnswered('127.0.0.1', srv.port, { staggerMs: 100, timeoutMs: 5_000, target: 't' });
    held.push(s);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(srv.accepted()).toBe(3);
    // The first bytes are still there for the SSH client (put back, socket paused).
    expect(s.isPaused()).toBe(true);
    expect(await readLine(s)).toBe('SSH-2.0-2');
    // The silent ones are closed.
    await new Promise((r) => setTimeout(r, 100));
    expect(srv.openNow()).toBe(1);
  });

  it('keeps the earlier connections open: a slow server answers on its first', async () => {
    const srv = await server((n) => (n === 0 ? 250 : undefined));
    const s = await dialUntilAnswered('127.0.0.1', srv.port, { staggerMs: 100, timeoutMs: 5_000, target: 't' });
    held.push(s);
    expect(srv.accepted()).toBeGreaterThanOrEqual(2);
    expect(await readLine(s)).toBe('SSH-2.0-0');
  });

  it('has at most maxOpen connections open at once', async () => {
    const srv = await server(() => undefined);
    const err = await dialUntilAnswered('127.0.0.1', srv.port, { staggerMs: 20, maxOpen: 3, timeoutMs: 500, target: "machine 'web'" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('timeout');
    expect((err as SshError).message).toContain("machine 'web'");
    expect(srv.accepted()).toBe(3);
    await new Promise((r) => setTimeout(r, 100));
    expect(srv.openNow()).toBe(0);
  });

  it('fails with "refused" when nothing listens', async () => {
    const port = await freePort();
    const err = await dialUntilAnswered('127.0.0.1', port, { timeoutMs: 5_000, target: 't' }).catch((e: unknown) => e);
    expect((err as SshError).kind).toBe('refused');
    expect((err as SshError).message).toMatch(/connection refused/);
  });

  it('fails with "closed" when the server closes before a word', async () => {
    const raw = await startRawServer('close');
    try {
      const err = await dialUntilAnswered('127.0.0.1', raw.port, { timeoutMs: 5_000, target: 't' }).catch((e: unknown) => e);
      expect((err as SshError).kind).toBe('closed');
    } finally {
      await raw.close();
    }
  });

  it('is cancelled by its signal, closing its connections', async () => {
    const srv = await server(() => undefined);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('interrupted')), 150);
    await expect(dialUntilAnswered('127.0.0.1', srv.port, { staggerMs: 50, timeoutMs: 5_000, signal: ac.signal, target: 't' })).rejects.toThrow('interrupted');
    await new Promise((r) => setTimeout(r, 100));
    expect(srv.openNow()).toBe(0);
  });
});
