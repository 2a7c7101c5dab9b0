/**
 * 9p and virtiofs synced folders as a user runs them, with the built CLI and the tiny
 * box on the harness's libvirtd (QEMU runs there as libvirt-qemu, as on a Debian host):
 * a folder QEMU's user cannot open stops `up` with the fix; once it can, the shares are
 * mounted on `up` (9p mapped read and written from the guest, a read-only one refusing
 * writes, virtiofs read and written both ways, `mount: false` only attached), a second
 * `up` leaves them as they are, a folder added later asks for `reload`, which mounts it.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLibvirt, type LibvirtClient } from '../../src/libvirt/index.js';
import { machineResourceName } from '../../src/project/names.js';
import { builtBox } from '../support/boxes.js';
import { runVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const home = mkdtempSync(join(tmpdir(), 'vmenv-shares-home-'));
const project = join(mkdtempSync(join(tmpdir(), 'vmenv-shares-')), 'app');
const env = { ...process.env, VMENV_HOME: home, VMENV_GUEST_NETNS: host.netns, VMENV_LIBVIRT_URI: host.uri };
const network = `vmenv-e2e-sh-${process.pid}`;
const qemuUid = Number(execFileSync('id', ['-u', 'libvirt-qemu'], { encoding: 'utf8' }).trim());
let client: LibvirtClient;

function vmenv(args: string[]): Promise<Run> {
  return runVmenv([...args, '--cwd', project], { env, timeoutMs: 300_000 });
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

async function guest(command: string): Promise<string> {
  return ok(await vmenv(['ssh', '-c', command])).stdout;
}

async function ours(): Promise<{ domains: string[]; volumes: string[]; networks: string[] }> {
  const stem = machineResourceName(project, 'default');
  const pool = await client.storagePoolLookupByName(host.pool);
  await client.storagePoolRefresh(pool);
  return {
    domains: (await client.connectListAllDomains()).map((d) => d.name).filter((n) => n.startsWith(stem)),
    volumes: (await client.storagePoolListAllVolumes(pool)).map((v) => v.name).filter((n) => n.startsWith(stem)),
    networks: (await client.connectListAllNetworks()).map((n) => n.name).filter((n) => n === network),
  };
}

const config = (extra: string[] = []): string =>
  [
    'box: tiny',
    'memory: 256',
    `pool: ${host.pool}`,
    `network: { mode: nat, name: ${network} }`,
    'boot: { timeout: 180 }',
    'shutdown: { timeout: 30 }',
    'synced_folders:',
    '  - { guest: /vagrant, disabled: true }',
    '  - { host: shared, guest: /shared, type: 9p }',
    '  - { host: docs, guest: /docs, type: 9p, readonly: true }',
    '  - { host: fast, guest: /fast, type: virtiofs }',
    '  - { host: later, guest: /later, type: 9p, mount: false, create: true }',
    ...extra,
    '',
  ].join('\n');

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  for (const d of ['shared', 'docs', 'fast']) mkdirSync(join(project, d), { recursive: true });
  writeFileSync(join(project, 'shared', 'from-host.txt'), 'hello over 9p\n');
  writeFileSync(join(project, 'docs', 'readme.txt'), 'read only\n');
  writeFileSync(join(project, 'fast', 'from-host.txt'), 'hello over virtiofs\n');
  writeFileSync(join(project, 'vmenv.yaml'), config());
  const box = await builtBox('tiny');
  ok(await runVmenv(['box', 'add', box, '--name', 'tiny'], { env, timeoutMs: 300_000 }));
});

afterAll(async () => {
  await vmenv(['destroy', '-f']);
  await runVmenv(['box', 'remove', 'tiny', '--all'], { env });
  await client?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(dirname(project), { recursive: true, force: true });
});

describe('9p and virtiofs shares with the tiny box', () => {
  it("up stops with the fix when QEMU's user cannot open a 9p folder, and leaves nothing", async () => {
    // mkdtemp made the project's parent 0700: libvirt-qemu cannot get through it.
    expect(statSync(dirname(project)).mode & 0o777).toBe(0o700);
    const r = await vmenv(['up']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`QEMU (user libvirt-qemu) cannot open the 9p shared folder ${join(project, 'shared')}: Permission denied`);
    expect(r.stderr).toContain(`sudo chmod o+x ${dirname(project)}`);
    expect(r.stderr).toContain(`u:libvirt-qemu:rwX`);
    expect(await ours()).toMatchObject({ domains: [], volumes: [] });
    // create: true made the missing folder before the domain was defined.
    expect(existsSync(join(project, 'later'))).toBe(true);
  });

  it('up mounts the shares once QEMU can reach them; the guest reads and writes 9p (mapped) and virtiofs', async () => {
    // What the hint says: search permission on the way, the writable share given to QEMU's user.
    chmodSync(dirname(project), 0o755);
    chmodSync(project, 0o755);
    chownSync(join(project, 'shared'), qemuUid, 0);
    const up = ok(await vmenv(['up']));
    expect(up.stdout).toContain(`default: mounted /shared (9p, mapped, from ${join(project, 'shared')})`);
    expect(up.stdout).toContain(`default: mounted /docs (9p, mapped, read-only, from ${join(project, 'docs')})`);
    expect(up.stdout).toContain(`default: mounted /fast (virtiofs, from ${join(project, 'fast')})`);
    expect(up.stdout).not.toContain('/later');
    expect(up.stderr).not.toContain('Warning');

    const mounts = await guest("grep -E ' (9p|virtiofs) ' /proc/mounts | cut -d' ' -f1-3");
    expect(mounts).toBe('vmenv0 /shared 9p\nvmenv1 /docs 9p\nvmenv2 /fast virtiofs\n');

    // 9p mapped: the SSH user owns the mount point and writes there; the file lands on the host.
    expect(await guest('cat /shared/from-host.txt; stat -c %U:%G /shared; echo written-in-guest > /shared/from-guest.txt')).toBe(
      'hello over 9p\nvagrant:vagrant\n',
    );
    expect(readFileSync(join(project, 'shared', 'from-guest.txt'), 'utf8')).toBe('written-in-guest\n');
    // Live both ways: a host change is seen at once, nothing copied.
    writeFileSync(join(project, 'shared', 'later-from-host.txt'), 'seen live\n');
    expect(await guest('cat /shared/later-from-host.txt')).toBe('seen live\n');

    // virtiofs: the host's owners as they are (root here), written through sudo.
    expect(await guest("cat /fast/from-host.txt; sudo sh -c 'echo via-virtiofs > /fast/from-guest.txt'")).toBe('hello over virtiofs\n');
    expect(readFileSync(join(project, 'fast', 'from-guest.txt'), 'utf8')).toBe('via-virtiofs\n');
  });

  it('a read-only share refuses writes, also from root', async () => {
    expect(await guest('cat /docs/readme.txt')).toBe('read only\n');
    for (const cmd of ['echo x > /docs/new.txt', "sudo sh -c 'echo x > /docs/new.txt'", "sudo sh -c 'echo x >> /docs/readme.txt'"]) {
      const r = await vmenv(['ssh', '-c', cmd]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('Read-only file system');
    }
    expect(existsSync(join(project, 'docs', 'new.txt'))).toBe(false);
    expect(readFileSync(join(project, 'docs', 'readme.txt'), 'utf8')).toBe('read only\n');
  });

  it('mount: false attaches the device without mounting it', async () => {
    expect(await guest('for f in /sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag; do tr -d "\\000" < $f; echo; done | sort')).toBe('vmenv0\nvmenv1\nvmenv3\n');
    expect(await guest('grep -c vmenv3 /proc/mounts || true')).toBe('0\n');
  });

  it('a second up leaves mounted shares as they are', async () => {
    const up = ok(await vmenv(['up']));
    expect(up.stdout).not.toContain('mounted');
    expect(await guest("grep -cE ' (9p|virtiofs) ' /proc/mounts")).toBe('3\n');
  });

  it('a folder added to a running machine asks for reload, which attaches and mounts it', async () => {
    writeFileSync(join(project, 'vmenv.yaml'), config(['  - { host: added, guest: /added, type: virtiofs, create: true }']));
    const up = await vmenv(['up']);
    expect(up.code).toBe(1);
    expect(up.stderr).toContain(`/added (virtiofs, from ${join(project, 'added')}) is not attached to machine 'default'`);
    expect(up.stderr).toContain("Run 'vmenv reload default'");

    const reload = ok(await vmenv(['reload']));
    for (const dir of ['/shared', '/docs', '/fast', '/added']) expect(reload.stdout).toContain(`default: mounted ${dir} (`);
    writeFileSync(join(project, 'added', 'new.txt'), 'added later\n');
    expect(await guest('cat /added/new.txt; cat /shared/from-guest.txt')).toBe('added later\nwritten-in-guest\n');
  });

  it('destroy -f leaves no domain, volume or network behind', async () => {
    ok(await vmenv(['destroy', '-f']));
    expect(await ours()).toEqual({ domains: [], volumes: [], networks: [] });
  });
});
