/**
 * waitForSsh against in-process ssh2 servers on 127.0.0.1: a port that refuses and
 * then accepts, a server that refuses the key (fail fast), one that closes before the
 * banner (retried until the timeout, which names the last error), cancellation, and a
 * changed host key (no retries).
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SshError } from '../../../src/ssh/errors.js';
import { memoryHostKeyStore, pinnedKeyFromBlob } from '../../../src/ssh/host-key.js';
import { waitForSsh, type SshAttempt } from '../../../src/ssh/wait.js';
import { TimeoutError } from '../../../src/errors.js';
import { freePort, keyPair, parsedKey, startRawServer, startTestServer } from './server.js';

const hostKey = keyPair();
const userKey = keyPair();
const otherKey = keyPair();

const opts = (port: number) => ({ host: '127.0.0.1', port, username: 'vagrant', privateKey: userKey.private });

describe('waitForSsh', () => {
  it('polls a refusing port until sshd comes up, then runs `true`', async () => {
    const port = await freePort();
    const attempts: SshAttempt[] = [];
    const t0 = Date.now();
    let server: Awaited<ReturnType<typeof startTestServer>> | undefined;
    const starter = setTimeout(() => {
      void startTestServer({ hostKey: hostKey.private, userKey: userKey.public, port }).then((s) => (server = s));
    }, 700);
    try {
      const store = memoryHostKeyStore();
      const r = await waitForSsh({ ...opts(port), hostKey: store, timeoutMs: 10_000, onAttempt: (a) => attempts.push(a) });
      const took = Date.now() - t0;
      // Up at ~700 ms; found within about one poll interval of that.
      expect(took).toBeGreaterThanOrEqual(650);
      expect(took).toBeLessThan(1_700);
      expect(attempts.at(-1)?.outcome).toBe('ok');
      const refused = attempts.filter((a) => a.outcome === 'refused');
      expect(refused.length).toBeGreaterThanOrEqual(2);
      // Polled at ~250 ms, not in a tight loop and not seconds apart.
      expect(refused.length).toBeLessThanOrEqual(5);
      expect(r.attempts).toBe(attempts.length);
      expect(r.session.pinnedNow).toBe(true);
      expect(store.current).toEqual(pinnedKeyFromBlob(parsedKey(hostKey.public).getPublicSSH()));
      expect(server!.calls.map((c) => c.command)).toEqual(['true']);
      // The session is live.
      expect((await r.session.exec('exit 4')).code).toBe(4);
      await r.session.close();
    } finally {
      clearTimeout(starter);
      await server?.close();
    }
  });

  it('gives up fast with the auth error when the key is refused', async () => {
    const server = await startTestServer({ hostKey: hostKey.private, userKey: otherKey.public });
    try {
      const attempts: SshAttempt[] = [];
      const t0 = Date.now();
      const err = await waitForSsh({
        ...opts(server.port),
        hostKey: memoryHostKeyStore(),
        timeoutMs: 30_000,
        authGraceMs: 500,
        onAttempt: (a) => attempts.push(a),
      }).catch((e: unknown) => e);
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(err).toBeInstanceOf(SshError);
      expect(err).not.toBeInstanceOf(TimeoutError);
      expect((err as SshError).kind).toBe('auth');
      expect((err as SshError).hint).toMatch(/not installed/);
      expect(attempts.length).toBeGreaterThanOrEqual(3);
      expect(attempts.every((a) => a.outcome === 'auth')).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('with the default grace, still well before the timeout', async () => {
    const server = await startTestServer({ hostKey: hostKey.private });
    try {
      const t0 = Date.now();
      await expect(waitForSsh({ ...opts(server.port), hostKey: memoryHostKeyStore(), timeoutMs: 60_000 })).rejects.toMatchObject({ kind: 'auth' });
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      await server.close();
    }
  });

  it('times out on a port that closes before the banner; the hint names the last error', async () => {
    const raw = await startRawServer('close');
    try {
      const t0 = Date.now();
      const err = await waitForSsh({ ...opts(raw.port), hostKey: memoryHostKeyStore(), timeoutMs: 1_000, label: "machine 'web'" }).catch((e: unknown) => e);
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(950);
      expect(took).toBeLessThan(1_600);
      expect(err).toBeInstanceOf(TimeoutError);
      const e = err as TimeoutError;
      expect(e.exitCode).toBe(5);
      expect(e.message).toContain("SSH on machine 'web'");
      expect(e.hint).toMatch(/closed before the SSH session was set up/);
      expect(raw.accepted).toBeGreaterThanOrEqual(3);
    } finally {
      await raw.close();
    }
  });

  it('bounds an attempt on a server that never speaks by the overall timeout', async () => {
    const raw = await startRawServer('silent');
    try {
      const t0 = Date.now();
      const err = await waitForSsh({ ...opts(raw.port), hostKey: memoryHostKeyStore(), timeoutMs: 800 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect(Date.now() - t0).toBeLessThan(1_500);
    } finally {
      await raw.close();
    }
  });

  it("does not wait out a forward's silent connection: a later one reaches sshd", async () => {
    // QEMU's user-mode forward while the guest boots: connections accepted, then nothing.
    const server = await startTestServer({ hostKey: hostKey.private, userKey: userKey.public });
    let accepted = 0;
    const sockets = new Set<Socket>();
    const forward = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
      if (accepted++ === 0) return;
      const up = connect(server.port, '127.0.0.1');
      sockets.add(up);
      up.on('error', () => undefined);
      s.pipe(up).pipe(s);
    });
    forward.listen(0, '127.0.0.1');
    await once(forward, 'listening');
    try {
      const t0 = Date.now();
      const r = await waitForSsh({ ...opts((forward.address() as AddressInfo).port), hostKey: memoryHostKeyStore(), timeoutMs: 10_000 });
      // One stagger (1 s), not the 10 s attempt timeout.
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(accepted).toBe(2);
      await r.session.close();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => forward.close(() => res()));
      await server.close();
    }
  });

  it('is cancelled by its signal', async () => {
    const port = await freePort();
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('interrupted')), 300);
    const t0 = Date.now();
    await expect(waitForSsh({ ...opts(port), hostKey: memoryHostKeyStore(), timeoutMs: 10_000, signal: ac.signal })).rejects.toThrow('interrupted');
    expect(Date.now() - t0).toBeLessThan(800);
  });

  it('does not retry a changed host key', async () => {
    const server = await startTestServer({ hostKey: hostKey.private, userKey: userKey.public });
    try {
      const pin = pinnedKeyFromBlob(parsedKey(otherKey.public).getPublicSSH());
      const attempts: SshAttempt[] = [];
      const err = await waitForSsh({ ...opts(server.port), hostKey: memoryHostKeyStore(pin), timeoutMs: 10_000, onAttempt: (a) => attempts.push(a) }).catch(
        (e: unknown) => e,
      );
      expect((err as SshError).kind).toBe('host-key');
      expect(attempts).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('treats a shell that fails `true` as not ready yet', async () => {
    let n = 0;
    const server = await startTestServer({
      hostKey: hostKey.private,
      userKey: userKey.public,
      commands: (ch) => {
        ch.exit(n++ < 2 ? 1 : 0);
        ch.end();
      },
    });
    try {
      const r = await waitForSsh({ ...opts(server.port), hostKey: memoryHostKeyStore(), timeoutMs: 5_000 });
      expect(r.attempts).toBe(3);
      await r.session.close();
    } finally {
      await server.close();
    }
  });
});
