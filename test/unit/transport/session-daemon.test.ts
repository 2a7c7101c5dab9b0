import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtConnectError } from '../../../src/libvirt/errors.js';
import {
  daemonEnv,
  daemonForSocket,
  ensureSessionDaemon,
  findDaemonBinary,
  type SocketState,
} from '../../../src/libvirt/transport/session-daemon.js';
import { probeUnixSocket } from '../../../src/libvirt/transport/unix.js';

let dir: string;
const pids: number[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-sd-'));
});
afterAll(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A stand-in daemon: like a session libvirtd, it listens on
 * $XDG_RUNTIME_DIR/libvirt/libvirt-sock, after `delayMs`; it prints its arguments and
 * whether a non-libvirt variable leaked into its environment; it exits by itself.
 */
function fakeDaemon(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(
    p,
    `#!${process.execPath}
const net = require('net'), path = require('path');
console.log('args', JSON.stringify(process.argv.slice(2)));
console.log('leaked', process.env.VMENV_TEST_SECRET === undefined ? 'no' : 'yes');
const sock = path.join(process.env.XDG_RUNTIME_DIR, 'libvirt', 'libvirt-sock');
${body}
setTimeout(() => process.exit(0), 5000);
`,
  );
  chmodSync(p, 0o755);
  return p;
}

describe('ensureSessionDaemon', () => {
  it('starts the daemon detached with --timeout=120 and waits for its socket', async () => {
    const rt = mkdtempSync(join(dir, 'rt-'));
    const bin = fakeDaemon('libvirtd-ok', `setTimeout(() => net.createServer(c => c.end()).listen(sock), 300);`);
    const socket = join(rt, 'libvirt', 'libvirt-sock');
    const env = { XDG_RUNTIME_DIR: rt, PATH: '/usr/bin:/bin', VMENV_TEST_SECRET: 'x', LIBVIRT_DEBUG: '1' };
    const t0 = Date.now();
    const r = await ensureSessionDaemon(socket, { env, findBinary: () => bin, timeoutMs: 5000 });
    if (r.pid) pids.push(r.pid);
    expect(r).toMatchObject({ socket, started: true, daemon: bin });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(await probeUnixSocket(socket)).toBe(true);
    const log = readFileSync(r.logFile!, 'utf8');
    expect(log).toContain('args ["--timeout=120"]');
    expect(log).toContain('leaked no');
  });

  it('does nothing when the daemon already answers', async () => {
    const r = await ensureSessionDaemon('/whatever/libvirt-sock', {
      probe: async () => 'ok',
      spawnDaemon: () => {
        throw new Error('must not spawn');
      },
    });
    expect(r).toEqual({ socket: '/whatever/libvirt-sock', started: false });
  });

  it('reports a daemon that exits early, with what it said', async () => {
    const rt = mkdtempSync(join(dir, 'rt-'));
    const bin = fakeDaemon('libvirtd-dies', `console.error('error : cannot load the qemu driver'); process.exit(3);`);
    const err = await ensureSessionDaemon(join(rt, 'libvirt', 'libvirt-sock'), {
      env: { XDG_RUNTIME_DIR: rt },
      findBinary: () => bin,
      timeoutMs: 10_000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toMatch(/exited with status 3 before opening .*cannot load the qemu driver.*libvirtd-dies\.log/);
  });

  it('times out, bounded, naming the socket and the logs', async () => {
    const rt = mkdtempSync(join(dir, 'rt-'));
    const bin = fakeDaemon('libvirtd-silent', `// never listens`);
    const t0 = Date.now();
    const err = await ensureSessionDaemon(join(rt, 'libvirt', 'libvirt-sock'), {
      env: { XDG_RUNTIME_DIR: rt },
      findBinary: () => bin,
      timeoutMs: 400,
    }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect((err as Error).message).toMatch(/timed out after 0\.4 s waiting for the session daemon .* to open .*libvirt-sock \(last state: missing\)/);
  });

  it('polls every 50–100 ms', async () => {
    const times: number[] = [];
    let n = 0;
    const r = await ensureSessionDaemon('/x/libvirt-sock', {
      probe: async (): Promise<SocketState> => {
        times.push(Date.now());
        return ++n >= 6 ? 'ok' : 'missing';
      },
      findBinary: () => '/fake/libvirtd',
      spawnDaemon: () => ({ pid: 1, onExit: () => {}, detach: () => {} }),
      pollMs: 10, // clamped to 50
    });
    expect(r.started).toBe(true);
    const gaps = times.slice(2).map((t, i) => t - times[i + 1]!);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(45);
  });

  it('says when no daemon is installed', async () => {
    const err = await ensureSessionDaemon('/x/virtqemud-sock', {
      probe: async () => 'missing',
      findBinary: () => undefined,
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/virtqemud is not installed/);
  });

  it('stops waiting when aborted', async () => {
    const ac = new AbortController();
    const p = ensureSessionDaemon('/x/libvirt-sock', {
      signal: ac.signal,
      probe: async () => 'missing',
      findBinary: () => '/fake/libvirtd',
      spawnDaemon: () => ({ pid: 1, onExit: () => {}, detach: () => {} }),
    });
    setTimeout(() => ac.abort(new Error('Ctrl-C')), 120);
    await expect(p).rejects.toThrow('Ctrl-C');
  });
});

describe('helpers', () => {
  it('maps sockets to daemons', () => {
    expect(daemonForSocket('/run/user/1000/libvirt/libvirt-sock')).toBe('libvirtd');
    expect(daemonForSocket('/run/user/1000/libvirt/virtqemud-sock')).toBe('virtqemud');
    expect(daemonForSocket('/tmp/strange')).toBeUndefined();
  });

  it('finds daemons on PATH and in sbin', () => {
    const bin = fakeDaemon('mydaemon', '');
    expect(findDaemonBinary('mydaemon', { PATH: dir })).toBe(bin);
    expect(findDaemonBinary('surely-not-a-daemon', { PATH: dir })).toBeUndefined();
    expect(findDaemonBinary(bin, {})).toBe(bin);
  });

  it('passes the daemon only what libvirt passes', () => {
    expect(
      daemonEnv({ PATH: '/bin', HOME: '/h', XDG_RUNTIME_DIR: '/r', LIBVIRT_LOG_OUTPUTS: 'x', AWS_SECRET: 's', LC_ALL: 'C' }),
    ).toEqual({ PATH: '/bin', HOME: '/h', XDG_RUNTIME_DIR: '/r', LIBVIRT_LOG_OUTPUTS: 'x', LC_ALL: 'C' });
  });
});
