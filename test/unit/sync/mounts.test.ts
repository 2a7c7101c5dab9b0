import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { fsdevOpenFailure, mountError, prepareShareSources } from '../../../src/sync/mounts.js';
import { machineShares, MountStatus } from '../../../src/sync/shares.js';
import { UserError } from '../../../src/errors.js';

function load(dir: string, folders: string): ReturnType<typeof parseConfig>['config'] {
  return parseConfig(`box: tiny\nsynced_folders:\n${folders}`, join(dir, 'vmenv.yaml')).config;
}

// QEMU's message through libvirt, as the harness's daemon gave it for a 0700 folder.
const QEMU_DENIED =
  'internal error: process exited while connecting to monitor: 2026-11-22T07:47:52.376497Z qemu-system-x86_64: -device ' +
  '{"driver":"virtio-9p-pci","id":"fs0","fsdev":"fsdev-fs0","mount_tag":"vmenv0","bus":"pci.0","addr":"0x2"}: ' +
  "cannot initialize fsdev 'fsdev-fs0': failed to open '/tmp/sx/proj/share 9': Permission denied";

describe('fsdevOpenFailure', () => {
  it("reads the folder and the reason from QEMU's message", () => {
    expect(fsdevOpenFailure(QEMU_DENIED)).toEqual({ path: '/tmp/sx/proj/share 9', reason: 'Permission denied' });
    expect(fsdevOpenFailure("cannot initialize fsdev 'fsdev-fs1': failed to open '/x': No such file or directory (qemu error 1)")).toEqual({
      path: '/x',
      reason: 'No such file or directory',
    });
    expect(fsdevOpenFailure('Cannot access storage file /pool/disk.qcow2')).toBeUndefined();
  });
});

describe('mountError', () => {
  const share = machineShares(load('/p', '  - { host: a, guest: /a, type: 9p }\n  - { host: b, guest: /b, type: virtiofs }\n').machines[0]!);
  const nineP = share[0]!;
  const virtiofs = share[1]!;

  it('names the folder and what the kernel lacks, and what a box needs', () => {
    const e = mountError('web', nineP, '/p/a', MountStatus.noFilesystem, '');
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toBe("machine 'web' cannot mount /a (9p, mapped, from /p/a): its kernel has no 9p file system (modprobe 9pnet_virtio, 9p found none)");
    expect(e.hint).toContain('CONFIG_NET_9P_VIRTIO');
    const v = mountError('web', virtiofs, '/p/b', MountStatus.noFilesystem, '');
    expect(v.message).toContain('its kernel has no virtiofs file system');
    expect(v.hint).toContain('CONFIG_VIRTIO_FS');
    expect(mountError('web', nineP, '/p/a', MountStatus.noTransport, '').message).toContain('no virtio transport for 9p (module 9pnet_virtio)');
  });

  it("carries mount's own message, and says when sudo is what failed", () => {
    const m = mountError('web', virtiofs, '/p/b', MountStatus.mountFailed, 'mount: mounting vmenv1 on /b failed: No such file or directory\n');
    expect(m.message).toBe("machine 'web' cannot mount /b (virtiofs, from /p/b): mount: mounting vmenv1 on /b failed: No such file or directory");
    expect(m.hint).toContain('vmenv1');
    const s = mountError('web', nineP, '/p/a', 1, 'sudo: a password is required\n');
    expect(s.hint).toContain('passwordless sudo');
  });
});

describe('prepareShareSources', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmenv-mounts-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a missing share folder with create: true, and names one without it', async () => {
    const ok = load(dir, '  - { host: made, guest: /m, type: 9p, create: true }\n  - { host: rs, guest: /r }\n');
    await prepareShareSources({ project: ok, machine: ok.machines[0]! });
    expect(existsSync(join(dir, 'made'))).toBe(true);
    expect(existsSync(join(dir, 'rs'))).toBe(false); // rsync folders are rsync's business

    const missing = load(dir, '  - { host: gone, guest: /g, type: virtiofs }\n');
    await expect(prepareShareSources({ project: missing, machine: missing.machines[0]! })).rejects.toThrow(`synced folder ${join(dir, 'gone')} does not exist`);
  });
});
