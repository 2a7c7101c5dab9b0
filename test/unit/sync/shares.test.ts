import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import {
  asRoot,
  chownCommand,
  liveTagOf,
  machineShares,
  mountCommand,
  mountedAt,
  mountOptions,
  MountStatus,
  MOUNT_SCRIPT,
  parseDomainFilesystems,
  parseProcMounts,
  shareOwner,
  type Share,
} from '../../../src/sync/shares.js';

function sharesOf(folders: string): Share[] {
  const { config } = parseConfig(`box: tiny\nsynced_folders:\n${folders}`, '/home/ann/shop/vmenv.yaml');
  return machineShares(config.machines[0]!);
}

describe('machineShares', () => {
  it('numbers the 9p and virtiofs folders in order and leaves rsync ones out', () => {
    const shares = sharesOf(
      '  - { host: a, guest: /a, type: 9p }\n  - { host: b, guest: /b }\n  - { host: c, guest: /c, type: virtiofs }\n  - { host: d, guest: /d, type: 9p, mount: false }\n',
    );
    expect(shares.map((s) => [s.folder.guest, s.driver, s.tag, s.folder.mount])).toEqual([
      ['/a', '9p', 'vmenv0', true],
      ['/c', 'virtiofs', 'vmenv1', true],
      ['/d', '9p', 'vmenv2', false],
    ]);
  });
});

describe('mount options and owners', () => {
  const [mapped, ro, pass, fs, fsRo] = sharesOf(
    [
      '  - { host: a, guest: /a, type: 9p }',
      '  - { host: b, guest: /b, type: 9p, readonly: true, owner: www-data }',
      '  - { host: c, guest: /c, type: 9p, accessmode: passthrough }',
      '  - { host: d, guest: /d, type: virtiofs, owner: vagrant }',
      '  - { host: e, guest: /e, type: virtiofs, readonly: true }',
      '',
    ].join('\n'),
  ) as [Share, Share, Share, Share, Share];

  it('mounts 9p over virtio with 9p2000.L and a 256 KiB msize, read-only when asked; virtiofs rw or ro', () => {
    expect(mountOptions(mapped)).toBe('trans=virtio,version=9p2000.L,msize=262144');
    expect(mountOptions(ro)).toBe('trans=virtio,version=9p2000.L,msize=262144,ro');
    expect(mountOptions(fs)).toBe('rw');
    expect(mountOptions(fsRo)).toBe('ro');
  });

  it('gives an owner only where the guest can keep it: 9p mapped and writable', () => {
    expect(shareOwner(mapped, 'vagrant')).toEqual({ user: 'vagrant', group: 'vagrant' });
    expect(shareOwner({ ...mapped, folder: { ...mapped.folder, owner: 'www-data', group: 'adm' } }, 'vagrant')).toEqual({ user: 'www-data', group: 'adm' });
    expect(shareOwner(ro, 'vagrant')).toBeUndefined();
    expect(shareOwner(pass, 'vagrant')).toBeUndefined();
    expect(shareOwner(fs, 'vagrant')).toBeUndefined();
  });
});

describe('the guest commands, run by a real sh', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmenv-shares-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A PATH whose mount, modprobe and chown only record their arguments (and mount fails when told to). */
  function fakeTools(): { env: NodeJS.ProcessEnv; log: string } {
    const bin = mkdtempSync(join(dir, 'bin-'));
    const log = join(bin, 'calls');
    for (const tool of ['mount', 'modprobe', 'chown', 'sudo']) {
      const body =
        tool === 'sudo'
          ? 'shift; exec "$@"' // drops -n; the tests run as root anyway
          : `printf '%s' ${tool} >> ${log}; for a in "$@"; do printf ' [%s]' "$a" >> ${log}; done; echo >> ${log}; ${tool === 'mount' ? '[ -z "$FAIL_MOUNT" ] || { echo "mount: mounting failed: No such file or directory" >&2; exit 255; }' : ''}`;
      writeFileSync(join(bin, tool), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    return { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` }, log };
  }

  function run(command: string, env: NodeJS.ProcessEnv): { code: number | null; stderr: string } {
    const r = spawnSync('sh', ['-c', command], { env, encoding: 'utf8' });
    return { code: r.status, stderr: r.stderr };
  }

  it('asRoot passes arguments through unchanged, quotes and spaces included', () => {
    const r = spawnSync('sh', ['-c', asRoot('printf "<%s>" "$@"', ["it's", 'a b', '$HOME'])], { encoding: 'utf8' });
    expect(r.stdout).toBe("<it's><a b><$HOME>");
  });

  it('makes the folder and mounts the tag there (a file system the kernel has: no modprobe)', () => {
    const tools = fakeTools();
    // The host kernel surely has ext4 or tmpfs: stand in for 9p in /proc/filesystems.
    const fstype = readFileSync('/proc/filesystems', 'utf8').includes('\text4') ? 'ext4' : 'tmpfs';
    const guest = join(dir, 'a dir', "with 'quotes'");
    const share: Share = { ...sharesOf(`  - { host: a, guest: "${guest.replace(/"/g, '\\"')}", type: virtiofs }\n`)[0]!, driver: fstype as Share['driver'] };
    expect(run(mountCommand(share), tools.env).code).toBe(0);
    expect(readFileSync(tools.log, 'utf8')).toBe(`mount [-t] [${fstype}] [-o] [${mountOptions(share)}] [vmenv0] [${guest}]\n`);
    expect(spawnSync('test', ['-d', guest]).status).toBe(0);
  });

  it('loads the modules, and says so by its exit status when the kernel still has no such file system', () => {
    const tools = fakeTools();
    const r = run(asRoot(MOUNT_SCRIPT, ['nosuchfs', 'vmenv0', join(dir, 'n'), 'rw', '9pnet_virtio 9p']), tools.env);
    expect(r.code).toBe(MountStatus.noFilesystem);
    expect(readFileSync(tools.log, 'utf8')).toBe('modprobe [9pnet_virtio]\nmodprobe [9p]\n');
  });

  it('reports a failed mount by its exit status with mount’s message on stderr', () => {
    const tools = fakeTools();
    const fstype = readFileSync('/proc/filesystems', 'utf8').includes('\text4') ? 'ext4' : 'tmpfs';
    const share: Share = { ...sharesOf(`  - { host: a, guest: ${join(dir, 'm')}, type: virtiofs }\n`)[0]!, driver: fstype as Share['driver'] };
    const r = run(mountCommand(share), { ...tools.env, FAIL_MOUNT: '1' });
    expect(r.code).toBe(MountStatus.mountFailed);
    expect(r.stderr).toContain('No such file or directory');
  });

  it('chowns only the mount point', () => {
    const tools = fakeTools();
    const share = sharesOf('  - { host: a, guest: /srv/my app, type: 9p }\n')[0]!;
    expect(run(chownCommand(share, { user: 'www-data', group: 'adm' }), tools.env).code).toBe(0);
    expect(readFileSync(tools.log, 'utf8')).toBe('chown [--] [www-data:adm] [/srv/my app]\n');
  });
});

describe('parseProcMounts and mountedAt', () => {
  const text = [
    '/dev/vda1 / ext4 rw,relatime 0 0',
    'vmenv0 /shared 9p rw,sync,dirsync,relatime,access=client,msize=262144,trans=virtio 0 0',
    'vmenv1 /my\\040docs 9p ro,sync,relatime,trans=virtio 0 0',
    'vmenv2 /fast virtiofs rw,relatime 0 0',
    '',
  ].join('\n');

  it('decodes the octal escapes of paths', () => {
    const mounts = parseProcMounts(text);
    expect(mounts).toHaveLength(4);
    expect(mounts[2]).toEqual({ source: 'vmenv1', target: '/my docs', fstype: '9p', options: ['ro', 'sync', 'relatime', 'trans=virtio'] });
  });

  it('finds a share by tag and file system', () => {
    const mounts = parseProcMounts(text);
    expect(mountedAt(mounts, { driver: '9p', tag: 'vmenv1' })?.target).toBe('/my docs');
    expect(mountedAt(mounts, { driver: 'virtiofs', tag: 'vmenv2' })?.target).toBe('/fast');
    expect(mountedAt(mounts, { driver: '9p', tag: 'vmenv2' })).toBeUndefined();
    expect(mountedAt(mounts, { driver: '9p', tag: 'vmenv3' })).toBeUndefined();
  });
});

// As libvirt 9.0 reports a domain with vmenv's shares (virsh dumpxml, trimmed).
const LIVE_XML = `<domain type='qemu' id='7'>
  <name>app_default_1234</name>
  <memoryBacking>
    <source type='memfd'/>
    <access mode='shared'/>
  </memoryBacking>
  <devices>
    <filesystem type='mount' accessmode='mapped'>
      <driver type='path' wrpolicy='immediate'/>
      <source dir='/home/ann/app/shared'/>
      <target dir='vmenv0'/>
      <alias name='fs0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </filesystem>
    <filesystem type='mount' accessmode='mapped'>
      <driver type='path' wrpolicy='immediate'/>
      <source dir='/home/ann/app/ann&apos;s docs'/>
      <target dir='vmenv1'/>
      <readonly/>
    </filesystem>
    <filesystem type='mount' accessmode='passthrough'>
      <driver type='virtiofs' queue='1024'/>
      <binary path='/usr/lib/qemu/virtiofsd'/>
      <source dir='/home/ann/app/fast'/>
      <target dir='vmenv2'/>
    </filesystem>
  </devices>
</domain>`;

describe('parseDomainFilesystems and liveTagOf', () => {
  it('reads driver, folder, tag, access mode and read-only flag', () => {
    expect(parseDomainFilesystems(LIVE_XML)).toEqual([
      { driver: '9p', source: '/home/ann/app/shared', tag: 'vmenv0', accessmode: 'mapped', readonly: false },
      { driver: '9p', source: "/home/ann/app/ann's docs", tag: 'vmenv1', accessmode: 'mapped', readonly: true },
      { driver: 'virtiofs', source: '/home/ann/app/fast', tag: 'vmenv2', accessmode: 'passthrough', readonly: false },
    ]);
  });

  it('finds the tag the running domain uses for a folder, or none when it changed', () => {
    const devices = parseDomainFilesystems(LIVE_XML);
    const [shared, fast] = sharesOf('  - { host: shared, guest: /s, type: 9p }\n  - { host: fast, guest: /f, type: virtiofs }\n') as [Share, Share];
    expect(liveTagOf(devices, shared, '/home/ann/app/shared')).toBe('vmenv0');
    // In vmenv.yaml second (vmenv1), in the domain third: the domain's tag counts.
    expect(liveTagOf(devices, fast, '/home/ann/app/fast/')).toBe('vmenv2');
    expect(liveTagOf(devices, { ...shared, folder: { ...shared.folder, readonly: true } }, '/home/ann/app/shared')).toBeUndefined();
    expect(liveTagOf(devices, { ...shared, folder: { ...shared.folder, accessmode: 'squash' } }, '/home/ann/app/shared')).toBeUndefined();
    expect(liveTagOf(devices, { ...fast, driver: '9p' }, '/home/ann/app/fast')).toBeUndefined();
    expect(liveTagOf(devices, shared, '/home/ann/app/other')).toBeUndefined();
  });
});
