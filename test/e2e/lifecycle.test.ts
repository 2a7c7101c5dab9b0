/**
 * The machine lifecycle as a user runs it, with the built CLI and the tiny box, on the
 * harness's libvirtd (guests inside its network namespace, reached through
 * VMENV_GUEST_NETNS): init, up, status, ssh, ssh-config with OpenSSH and rsync,
 * provisioning, halt, up again, destroy — which leaves no domain, volume or network.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLibvirt, type LibvirtClient } from '../../src/libvirt/index.js';
import { machineResourceName } from '../../src/project/names.js';
import { builtBox } from '../support/boxes.js';
import { runVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const home = mkdtempSync(join(tmpdir(), 'vmenv-life-home-'));
const project = join(mkdtempSync(join(tmpdir(), 'vmenv-life-')), 'shop');
const env = { ...process.env, VMENV_HOME: home, VMENV_GUEST_NETNS: host.netns, VMENV_LIBVIRT_URI: host.uri };
let client: LibvirtClient;

function vmenv(args: string[]): Promise<Run> {
  return runVmenv([...args, '--cwd', project], { env, timeoutMs: 300_000 });
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

async function ours(): Promise<{ domains: string[]; volumes: string[]; networks: string[] }> {
  const stem = machineResourceName(project, 'default');
  const pool = await client.storagePoolLookupByName(host.pool);
  await client.storagePoolRefresh(pool);
  return {
    domains: (await client.connectListAllDomains()).map((d) => d.name).filter((n) => n.startsWith(stem)),
    volumes: (await client.storagePoolListAllVolumes(pool)).map((v) => v.name).filter((n) => n.startsWith(stem)),
    networks: (await client.connectListAllNetworks()).map((n) => n.name).filter((n) => n === `vmenv-e2e-${process.pid}`),
  };
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  mkdirSync(join(project, 'src'), { recursive: true });
  writeFileSync(join(project, 'src', 'app.txt'), 'hello from the host\n');
  writeFileSync(join(project, 'skip.log'), 'not synced\n');
  const box = await builtBox('tiny');
  ok(await runVmenv(['box', 'add', box, '--name', 'tiny'], { env, timeoutMs: 300_000 }));
});

afterAll(async () => {
  await vmenv(['destroy', '-f']);
  await client?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(dirname(project), { recursive: true, force: true });
});

describe('vmenv lifecycle with the tiny box', () => {
  it('init writes a vmenv.yaml that up brings to life', async () => {
    ok(await vmenv(['init', 'tiny', '--no-interactive']));
    writeFileSync(
      join(project, 'vmenv.yaml'),
      [
        'box: tiny',
        'memory: 256',
        `pool: ${host.pool}`,
        `network: { mode: nat, name: vmenv-e2e-${process.pid} }`,
        'boot: { timeout: 180 }',
        'shutdown: { timeout: 30 }',
        'synced_folders:',
        '  - { host: ., guest: /vagrant, exclude: ["*.log"] }',
        'provision:',
        '  - { name: marker, type: shell, inline: "echo provisioned > /root/marker; echo ran-as-$(id -un)" }',
        '  - { type: file, source: src/app.txt, destination: /tmp/app.txt }',
        '',
      ].join('\n'),
    );
    const up = ok(await vmenv(['up']));
    expect(up.stdout).toContain('default: ran-as-root');
    const status = JSON.parse(ok(await vmenv(['status', '--json'])).stdout) as { machines: { status: string; ip?: string }[] };
    expect(status.machines[0]!.status).toBe('running');
    expect(status.machines[0]!.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it('ssh -c runs a command with its exit code, stdout and stderr apart', async () => {
    const r = await vmenv(['ssh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(ok(await vmenv(['ssh', '-c', 'cat /vagrant/src/app.txt; ls /vagrant; sudo cat /root/marker; cat /tmp/app.txt'])).stdout).toBe(
      'hello from the host\nsrc\nvmenv.yaml\nprovisioned\nhello from the host\n',
    );
  });

  it('ssh-config works with OpenSSH and rsync', async () => {
    const cfg = join(dirname(project), 'ssh_config');
    writeFileSync(cfg, ok(await vmenv(['ssh-config'])).stdout);
    const ssh = spawnSync('ssh', ['-F', cfg, 'default', 'hostname'], { encoding: 'utf8', timeout: 60_000 });
    expect(ssh.stderr).toBe('');
    expect(ssh.stdout.trim()).toBe('default');
    const rs = spawnSync('rsync', ['-a', '-e', `ssh -F ${cfg}`, join(project, 'src') + '/', 'default:/tmp/copied/'], { encoding: 'utf8', timeout: 60_000 });
    expect(rs.status, rs.stderr).toBe(0);
    expect(ok(await vmenv(['ssh', '-c', 'cat /tmp/copied/app.txt'])).stdout).toBe('hello from the host\n');
  });

  it('halt shuts it down, and up starts it again without provisioning twice', async () => {
    expect(ok(await vmenv(['halt'])).stdout).toMatch(/default: (shut down|powered off)/);
    const status = JSON.parse(ok(await vmenv(['status', '--json'])).stdout) as { machines: { status: string }[] };
    expect(status.machines[0]!.status).toBe('shutoff');
    const up = ok(await vmenv(['up']));
    expect(up.stdout).not.toContain('ran-as-root');
    expect(ok(await vmenv(['ssh', '-c', 'sudo cat /root/marker'])).stdout).toBe('provisioned\n');
  });

  it('destroy -f leaves no domain, volume or network behind', async () => {
    expect((await ours()).domains).toHaveLength(1);
    ok(await vmenv(['destroy', '-f']));
    expect(await ours()).toEqual({ domains: [], volumes: [], networks: [] });
    const status = JSON.parse(ok(await vmenv(['status', '--json'])).stdout) as { machines: { status: string }[] };
    expect(status.machines[0]!.status).toBe('not created');
  });
});

describe('a first up that fails', () => {
  it('times out naming what it waited for, shows the console and the lease sources, and leaves nothing', async () => {
    const other = join(dirname(project), 'slow');
    mkdirSync(other, { recursive: true });
    writeFileSync(
      join(other, 'vmenv.yaml'),
      ['box: tiny', 'memory: 256', `pool: ${host.pool}`, `network: { mode: nat, name: vmenv-e2e-${process.pid} }`, 'boot: { timeout: 2 }', ''].join('\n'),
    );
    const r = await runVmenv(['up', '--cwd', other], { env, timeoutMs: 300_000 });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/Timed out after 2\.0 s waiting for an IP address/);
    expect(r.stderr).toContain('lease API:');
    expect(r.stderr).toMatch(/serial console|console log/);
    const stem = machineResourceName(other, 'default');
    const pool = await client.storagePoolLookupByName(host.pool);
    await client.storagePoolRefresh(pool);
    expect((await client.connectListAllDomains()).map((d) => d.name).filter((n) => n.startsWith(stem))).toEqual([]);
    expect((await client.storagePoolListAllVolumes(pool)).map((v) => v.name).filter((n) => n.startsWith(stem))).toEqual([]);
    const status = JSON.parse((await runVmenv(['status', '--json', '--cwd', other], { env })).stdout) as { machines: { status: string }[] };
    expect(status.machines[0]!.status).toBe('not created');
  });
});
