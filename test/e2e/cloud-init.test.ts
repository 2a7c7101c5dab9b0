/**
 * Your own cloud-init with the tiny box: `cloud_init.user_data` (a file) adds a user with
 * its own key, groups and sudo, and names the host; `cloud_init.network_config` (inline)
 * replaces the default. The box's own NoCloud handler applies the merged seed: the new
 * user logs in with its key, and vmenv's own login still works. One boot, destroyed at the end.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLibvirt, type LibvirtClient } from '../../src/libvirt/index.js';
import { machineResourceName } from '../../src/project/names.js';
import { builtBox } from '../support/boxes.js';
import { runVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const home = mkdtempSync(join(tmpdir(), 'vmenv-ci-home-'));
const project = join(mkdtempSync(join(tmpdir(), 'vmenv-ci-')), 'shop');
const network = `vmenv-e2e-ci${process.pid}`;
const env = { ...process.env, VMENV_HOME: home, VMENV_GUEST_NETNS: host.netns, VMENV_LIBVIRT_URI: host.uri };
const deployKey = join(dirname(project), 'deploy_ed25519');
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

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  mkdirSync(project, { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'deploy@e2e', '-f', deployKey]);
  const pub = readFileSync(`${deployKey}.pub`, 'utf8').trim();
  writeFileSync(
    join(project, 'user-data.yaml'),
    [
      '#cloud-config',
      'hostname: shop-dev',
      'users:', // no `default`: vmenv puts it back, so its own login keeps working
      '  - name: deploy',
      '    groups: [ops, web]',
      '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
      '    shell: /bin/sh',
      `    ssh_authorized_keys: ["${pub}"]`,
      'packages: [nginx]', // for real cloud-init: the box's handler passes over it
      'runcmd: [[touch, /tmp/not-run-by-the-tiny-box]]',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(project, 'vmenv.yaml'),
    [
      'box: tiny',
      'memory: 256',
      `pool: ${host.pool}`,
      `network: { mode: nat, name: ${network} }`,
      'boot: { timeout: 240 }',
      'synced_folders: [{ guest: /vagrant, disabled: true }]',
      'cloud_init:',
      '  user_data: user-data.yaml',
      '  network_config: { version: 2, ethernets: { eth0: { dhcp4: true } } }',
      '',
    ].join('\n'),
  );
  ok(await runVmenv(['box', 'add', await builtBox('tiny'), '--name', 'tiny'], { env, timeoutMs: 300_000 }));
});

afterAll(async () => {
  await vmenv(['destroy', '-f']);
  await runVmenv(['box', 'remove', 'tiny', '--all'], { env });
  await client?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(dirname(project), { recursive: true, force: true });
});

describe('cloud_init with the tiny box', () => {
  it('up applies the merged seed: host name, a second user with groups, sudo and its own key', async () => {
    const up = ok(await vmenv(['up']));
    expect(up.stderr).not.toMatch(/no DHCPv4/);
    expect(up.stdout).toMatch(/Read cloud_init \(host name shop-dev, from user_data\)/);
    // vmenv's own login: the box's default user with the machine's key
    expect(await guest('id -un; hostname')).toBe('vagrant\nshop-dev\n');
    expect(await guest('id -nG deploy | tr " " "\\n" | sort | tr "\\n" " "')).toMatch(/\bops\b.*\bweb\b/);
    expect(await guest('sudo cat /etc/sudoers.d/90-vmenv-nocloud')).toMatch(/^deploy ALL=\(ALL\) NOPASSWD:ALL$/m);
    expect(await guest('sudo cat /home/deploy/.ssh/authorized_keys')).toBe(`${readFileSync(`${deployKey}.pub`, 'utf8').trim()}\n`);
    expect(await guest('test -e /tmp/not-run-by-the-tiny-box && echo ran || echo passed-over')).toBe('passed-over\n');
  });

  it('the new user logs in with its own key, through OpenSSH', async () => {
    const cfg = join(dirname(project), 'ssh_config');
    writeFileSync(cfg, ok(await vmenv(['ssh-config'])).stdout);
    const ssh = spawnSync(
      'ssh',
      ['-F', cfg, '-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-o', 'BatchMode=yes', '-i', deployKey, '-l', 'deploy', 'default', 'id -un; sudo -n id -un'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(ssh.status, ssh.stderr).toBe(0);
    expect(ssh.stdout).toBe('deploy\nroot\n');
  });

  it('destroy leaves no domain and no volume', async () => {
    ok(await vmenv(['destroy', '-f']));
    const stem = machineResourceName(project, 'default');
    const pool = await client.storagePoolLookupByName(host.pool);
    await client.storagePoolRefresh(pool);
    expect((await client.connectListAllDomains()).map((d) => d.name).filter((n) => n.startsWith(stem))).toEqual([]);
    expect((await client.storagePoolListAllVolumes(pool)).map((v) => v.name).filter((n) => n.startsWith(stem))).toEqual([]);
  });
});
