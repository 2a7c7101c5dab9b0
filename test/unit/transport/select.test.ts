import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtConnectError } from '../../../src/libvirt/errors.js';
import { dialerForUri, localSocketFor } from '../../../src/libvirt/transport/select.js';
import type { EnsureSessionDaemonOptions, SessionDaemonResult } from '../../../src/libvirt/transport/session-daemon.js';
import { parseLibvirtUri } from '../../../src/libvirt/uri.js';

let dir: string;
const servers: net.Server[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-sel-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function listen(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const s = net.createServer((c) => c.pipe(c));
  servers.push(s);
  s.listen(path);
  await once(s, 'listening');
}

describe('dialerForUri', () => {
  it('tcp and ssh describe their target', () => {
    expect(dialerForUri(parseLibvirtUri('qemu+tcp://127.0.0.1/system')).describe()).toBe('tcp 127.0.0.1:16509');
    expect(dialerForUri(parseLibvirtUri('qemu+ssh://root@127.0.0.1:2222/system?no_verify=1')).describe()).toBe(
      'ssh root@127.0.0.1:2222',
    );
  });

  it('tls parses but reports unsupported, pointing at ssh', async () => {
    const d = dialerForUri(parseLibvirtUri('qemu+tls://127.0.0.1/system'));
    const err = await d.dial().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toMatch(/uses TLS, which vmenv does not speak yet\. Use qemu\+ssh:\/\/user@127\.0\.0\.1\/system/);
  });

  it('system unix with ?socket= dials that socket', async () => {
    const path = join(dir, 'sys', 'libvirt-sock');
    await listen(path);
    const d = dialerForUri(parseLibvirtUri(`qemu:///system?socket=${path}`), { uid: 0, env: {} });
    expect(d.describe()).toBe(`unix socket ${path}`);
    (await d.dial()).destroy();
  });

  it('session for a user: starts the daemon when the socket is missing, then dials it', async () => {
    const rt = join(dir, 'rt-user');
    const u = parseLibvirtUri('qemu:///session');
    const opts = { uid: 1000, env: { XDG_RUNTIME_DIR: rt }, home: '/home/u' };
    const expected = localSocketFor(u, opts).path;
    expect(expected.startsWith(join(rt, 'libvirt') + '/')).toBe(true);
    const calls: Array<[string, EnsureSessionDaemonOptions]> = [];
    const started: SessionDaemonResult[] = [];
    const d = dialerForUri(u, {
      ...opts,
      ensureDaemon: async (socket, o) => {
        calls.push([socket, o]);
        await listen(socket);
        return { socket, started: true, daemon: '/usr/sbin/fake' };
      },
      onDaemonStarted: (r) => started.push(r),
    });
    const s = await d.dial();
    s.destroy();
    expect(calls).toHaveLength(1);
    expect(calls[0]![0]).toBe(expected);
    expect(calls[0]![1].daemon).toMatch(/^(libvirtd|virtqemud)$/);
    expect(started).toHaveLength(1);
    // Second dial: the socket is there, no start.
    (await d.dial()).destroy();
    expect(calls).toHaveLength(1);
  });

  it('does not autostart with LIBVIRT_AUTOSTART=0, and says how to start it', async () => {
    const rt = join(dir, 'rt-noauto');
    let called = false;
    const d = dialerForUri(parseLibvirtUri('qemu:///session'), {
      uid: 1000,
      env: { XDG_RUNTIME_DIR: rt, LIBVIRT_AUTOSTART: '0' },
      ensureDaemon: async () => {
        called = true;
        throw new Error('no');
      },
    });
    const err = await d.dial().catch((e: unknown) => e);
    expect(called).toBe(false);
    expect((err as Error).message).toMatch(/no libvirt socket at .*rt-noauto\/libvirt\/.*--timeout=120/);
  });

  it('for root, qemu:///session is the system daemon and is not autostarted (libvirt\'s rule)', async () => {
    let called = false;
    const d = dialerForUri(parseLibvirtUri('qemu:///session'), {
      uid: 0,
      env: { XDG_RUNTIME_DIR: join(dir, 'rt-root') },
      exists: () => false,
      ensureDaemon: async () => {
        called = true;
        throw new Error('no');
      },
    });
    expect(d.describe()).toMatch(/^unix socket \/run\/libvirt\/(libvirt|virtqemud)-sock$/);
    const err = await d.dial().catch((e: unknown) => e);
    expect(called).toBe(false);
    if (err instanceof LibvirtConnectError) {
      expect(err.message).toMatch(/As root, qemu:\/\/\/session is served by the system daemon/);
    } else {
      // A system daemon runs on this machine: root's session is that daemon.
      (err as { destroy(): void }).destroy();
    }
  });

  it('an explicit session socket is not autostarted', async () => {
    let called = false;
    const path = join(dir, 'explicit', 'libvirt-sock');
    const d = dialerForUri(parseLibvirtUri(`qemu:///session?socket=${path}`), {
      uid: 1000,
      env: {},
      ensureDaemon: async () => {
        called = true;
        throw new Error('no');
      },
    });
    await expect(d.dial()).rejects.toThrow(/no libvirt socket at/);
    expect(called).toBe(false);
  });
});
