/**
 * Boxes from the Vagrant world, as a user meets them: a box made the way Vagrant's own
 * boxes are made (test/fixtures/boxes/vagrant-debian: no cloud-init, Vagrant's insecure
 * keys for `vagrant`, DHCP by systemd-networkd), built once and cached, brought up in NAT
 * mode on the harness's libvirtd. Guests are reached only inside its network namespace.
 *
 * - the default flow: vmenv logs in with an insecure key, puts the machine's key in its
 *   place (the insecure keys stop working, the machine's works), and ssh, an rsync folder
 *   with an owner, a shell provisioner, halt and up again (no second insertion) work;
 * - `insert_key: false` and `ssh.private_key_path` (Vagrant's RSA key: rsa-sha2
 *   signatures through ssh2 in `up` and through OpenSSH in `vmenv ssh`);
 * - bad input: a key file that is missing or encrypted, a box that accepts no key.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLibvirt, type LibvirtClient } from '../../src/libvirt/index.js';
import { machineResourceName } from '../../src/project/names.js';
import type { MachineState } from '../../src/project/state.js';
import { vagrantKeysDir } from '../../src/ssh/vagrant-keys.js';
import { builtBox, builtFixtureBox } from '../support/boxes.js';
import { runVmenv, type Run } from '../support/cli.js';
import { inNetns, testHost } from '../support/harness.js';

const host = testHost();
const home = mkdtempSync(join(tmpdir(), 'vmenv-vagrant-home-'));
const scratch = mkdtempSync(join(tmpdir(), 'vmenv-vagrant-'));
const network = `vmenv-e2e-vg-${process.pid}`;
const env = { ...process.env, VMENV_HOME: home, VMENV_GUEST_NETNS: host.netns, VMENV_LIBVIRT_URI: host.uri };
const projects: string[] = [];
let client: LibvirtClient;

/** Vagrant's insecure private keys, copied with the mode OpenSSH wants. */
const insecure = { ed25519: join(scratch, 'insecure-ed25519'), rsa: join(scratch, 'insecure-rsa') };

function project(name: string, yaml: string[]): string {
  const dir = join(scratch, name);
  execFileSync('mkdir', ['-p', join(dir, 'app', 'sub')]);
  writeFileSync(join(dir, 'app', 'hello.txt'), 'hello from the host\n');
  writeFileSync(join(dir, 'app', 'sub', 'deep.txt'), 'deep\n');
  writeFileSync(join(dir, 'vmenv.yaml'), [`pool: ${host.pool}`, `network: { mode: nat, name: ${network} }`, 'boot: { timeout: 240 }', 'shutdown: { timeout: 60 }', ...yaml, ''].join('\n'));
  projects.push(dir);
  return dir;
}

function vmenv(dir: string, args: string[], timeoutMs = 400_000): Promise<Run> {
  return runVmenv([...args, '--cwd', dir], { env, timeoutMs });
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

function state(dir: string, machine = 'default'): MachineState {
  return JSON.parse(readFileSync(join(dir, '.vmenv', 'machines', machine, 'state.json'), 'utf8')) as MachineState;
}

/** OpenSSH with exactly this key, inside the harness namespace: its exit code (255: refused). */
function sshWith(key: string, ip: string, command = 'true'): number {
  const opts = ['-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=20', '-o', 'LogLevel=ERROR'];
  const [cmd, ...args] = inNetns(['ssh', '-i', key, ...opts, `vagrant@${ip}`, command]);
  return spawnSync(cmd!, args, { timeout: 60_000 }).status ?? -1;
}

async function leftovers(dir: string, machines: string[]): Promise<string[]> {
  const stems = machines.map((m) => machineResourceName(dir, m));
  const pool = await client.storagePoolLookupByName(host.pool);
  await client.storagePoolRefresh(pool);
  const names = [...(await client.connectListAllDomains()).map((d) => `domain ${d.name}`), ...(await client.storagePoolListAllVolumes(pool)).map((v) => `volume ${v.name}`)];
  return names.filter((n) => stems.some((s) => n.split(' ')[1]!.startsWith(s)));
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  for (const t of ['ed25519', 'rsa'] as const) writeFileSync(insecure[t], readFileSync(join(vagrantKeysDir(), `vagrant.key.${t}`)), { mode: 0o600 });
  // One build at a time: two mmdebstrap runs share the apt cache.
  const tiny = await builtBox('tiny');
  const box = await builtFixtureBox('vagrant-debian', ['debian-12']);
  ok(await runVmenv(['box', 'add', box, '--name', 'vagrant-debian'], { env, timeoutMs: 300_000 }));
  ok(await runVmenv(['box', 'add', tiny, '--name', 'tiny'], { env, timeoutMs: 300_000 }));
}, 20 * 60_000);

afterAll(async () => {
  for (const dir of projects) await vmenv(dir, ['destroy', '-f']);
  await runVmenv(['box', 'remove', 'vagrant-debian', '--all'], { env });
  await runVmenv(['box', 'remove', 'tiny', '--all'], { env });
  await client?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
}, 300_000);

describe('a Vagrant-style box (insecure key, no cloud-init)', () => {
  it("up replaces the insecure key with the machine's own; ssh, an owned rsync folder, provisioning, halt and up again work", async () => {
    const dir = project('vagrant', [
      'box: vagrant-debian',
      'memory: 512',
      'synced_folders:',
      '  - { host: app, guest: /srv/app, owner: nobody, group: nogroup }',
      'provision:',
      '  - { type: shell, inline: "echo provisioned-as-$(id -un) | tee /root/marker" }',
    ]);
    const up = ok(await vmenv(dir, ['up']));
    expect(up.stdout + up.stderr).toMatch(/SSH ready \([\d.]+ s; Vagrant's insecure ed25519 key replaced with the machine's key\)/);
    expect(up.stdout).toContain('default: provisioned-as-root');
    const s = state(dir);
    expect(s.ssh.privateKeyPath).toBe(join(dir, '.vmenv', 'machines', 'default', 'id_ed25519'));
    expect(s.ssh.keyInserted).toMatch(/^\d{4}-/);
    const ip = s.ip!;

    // Neither insecure key logs in any more; the machine's key does.
    expect(sshWith(insecure.ed25519, ip)).toBe(255);
    expect(sshWith(insecure.rsa, ip)).toBe(255);
    expect(sshWith(s.ssh.privateKeyPath, ip)).toBe(0);
    expect(ok(await vmenv(dir, ['ssh', '-c', 'grep -c . ~/.ssh/authorized_keys; cat /srv/app/hello.txt'])).stdout).toBe('1\nhello from the host\n');

    // Every synced file and folder belongs to the folder's owner and group.
    const owners = ok(await vmenv(dir, ['ssh', '-c', 'find /srv/app -exec stat -c "%U:%G %n" {} + | sort'])).stdout;
    expect(owners).toBe(['nobody:nogroup /srv/app', 'nobody:nogroup /srv/app/hello.txt', 'nobody:nogroup /srv/app/sub', 'nobody:nogroup /srv/app/sub/deep.txt', ''].join('\n'));

    // halt, then up again: the machine's key, no second insertion, no second provisioning.
    ok(await vmenv(dir, ['halt']));
    const again = ok(await vmenv(dir, ['up']));
    expect(again.stdout + again.stderr).not.toMatch(/replaced|insecure/);
    expect(again.stdout).not.toContain('provisioned-as');
    expect(state(dir).ssh.keyInserted).toBe(s.ssh.keyInserted);
    expect(ok(await vmenv(dir, ['ssh', '-c', 'sudo cat /root/marker'])).stdout).toBe('provisioned-as-root\n');

    ok(await vmenv(dir, ['destroy', '-f']));
    expect(await leftovers(dir, ['default'])).toEqual([]);
  }, 900_000);

  it("keeps the key it logged in with under insert_key: false, also a given RSA key (rsa-sha2 through ssh2 and OpenSSH)", async () => {
    const dir = project('kept', [
      'box: vagrant-debian',
      'memory: 384',
      'synced_folders: [{ guest: /vagrant, disabled: true }]',
      'machines:',
      '  plain: { ssh: { insert_key: false } }',
      `  given: { ssh: { private_key_path: ${insecure.rsa}, insert_key: false } }`,
    ]);
    const up = ok(await vmenv(dir, ['up', '--parallel']));
    const out = up.stdout + up.stderr;
    expect(out).toContain("logged in with Vagrant's insecure ed25519 key, kept (ssh.insert_key is false)");
    expect(out).toContain(`logged in with ssh.private_key_path ${insecure.rsa}, kept (ssh.insert_key is false)`);

    const plain = state(dir, 'plain');
    expect(plain.ssh.privateKeyPath).toBe(join(dir, '.vmenv', 'machines', 'plain', 'vagrant-insecure-ed25519'));
    expect(plain.ssh.keyInserted).toBeUndefined();
    expect(sshWith(insecure.ed25519, plain.ip!)).toBe(0);
    const given = state(dir, 'given');
    expect(given.ssh.privateKeyPath).toBe(insecure.rsa);

    // vmenv ssh (OpenSSH) and ssh-config use the key that got in.
    expect(ok(await vmenv(dir, ['ssh', 'plain', '-c', 'grep -c . ~/.ssh/authorized_keys'])).stdout).toBe('2\n');
    expect(ok(await vmenv(dir, ['ssh', 'given', '-c', 'echo rsa-ok'])).stdout).toBe('rsa-ok\n');
    expect(ok(await vmenv(dir, ['ssh-config', 'given'])).stdout).toContain(`IdentityFile ${insecure.rsa}`);

    ok(await vmenv(dir, ['destroy', '-f']));
    expect(await leftovers(dir, ['plain', 'given'])).toEqual([]);
  }, 900_000);
});

describe('bad input leaves nothing behind', () => {
  it('a key file that does not exist, or is encrypted: a clear error before anything is made', async () => {
    const missing = join(scratch, 'no-such-key');
    const dir = project('missing-key', ['box: tiny', `ssh: { private_key_path: ${missing} }`]);
    const r = await vmenv(dir, ['up']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`ssh.private_key_path of machine 'default': cannot read the SSH key ${missing}: no such file`);
    expect(r.stderr).toMatch(/Correct the path in vmenv.yaml/);
    expect(existsSync(join(dir, '.vmenv', 'machines', 'default'))).toBe(false);
    expect(await leftovers(dir, ['default'])).toEqual([]);

    const locked = join(scratch, 'locked-key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', locked]);
    writeFileSync(join(dir, 'vmenv.yaml'), readFileSync(join(dir, 'vmenv.yaml'), 'utf8').replace(missing, locked));
    const r2 = await vmenv(dir, ['up']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/ssh\.private_key_path of machine 'default': cannot use .*locked-key.* it is protected by a passphrase/);
    expect(await leftovers(dir, ['default'])).toEqual([]);
  });

  it('a box that accepts no key: the error names every key tried and the user, says what to set, and up is rolled back', async () => {
    // The tiny box takes the seed's key for vagrant; root accepts none of them.
    const dir = project('no-key', ['box: tiny', 'memory: 256', 'ssh: { username: root }', 'synced_folders: [{ guest: /vagrant, disabled: true }]']);
    const started = Date.now();
    const r = await vmenv(dir, ['up']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SSH authentication failed for machine 'default' \(root@[\d.]+:22\): the server refused all 3 keys offered: /);
    expect(r.stderr).toContain("(the machine's key)");
    expect(r.stderr).toContain("(Vagrant's insecure ed25519 key)");
    expect(r.stderr).toContain("(Vagrant's insecure RSA key)");
    expect(r.stderr).toMatch(/set ssh\.private_key_path/);
    // Refusals end the wait at once rather than at boot.timeout (240 s).
    expect(Date.now() - started).toBeLessThan(150_000);
    expect(await leftovers(dir, ['default'])).toEqual([]);
  });
});
