/**
 * vmenv's boxes in Vagrant: the tiny box (the cached build of the built CLI) booted the
 * way vagrant-libvirt boots a box — its own disk, no NoCloud seed — accepts Vagrant's
 * insecure keys (ed25519 and RSA, the RSA one with OpenSSH's rsa-sha2 signatures against
 * the guest's dropbear) for `vagrant`, with passwordless sudo and the `scp -t` sink
 * Vagrant uploads through; once Vagrant has replaced them they are not put back by a
 * reboot. Booted with a seed (as every `vmenv up` boots it), only the seed's key gets in:
 * the insecure keys are refused.
 *
 * Plain QEMU (TCG), user-mode networking restricted to SSH forwarded on 127.0.0.1, each
 * boot from its own qcow2 overlay on the box's disk (the cached box is not changed).
 * Every wait is bounded; only the QEMU processes this file starts are stopped.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBoxArchive } from '../../src/box/format.js';
import { freeLoopbackPort } from '../../src/net/ports.js';
import { renderSeed, writeSeedIso } from '../../src/lifecycle/seed.js';
import { builtBox } from '../support/boxes.js';

const execFileP = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const vagrantKeys = join(root, 'boxes', 'common', 'vagrant-keys');
const SSH_READY_LIMIT_S = 90;

let work: string;
let disk: string; // box.img of the cached tiny box, unpacked
let keys: { ed25519: string; rsa: string; seed: string };
let insecurePub: string[];
const running = new Set<ChildProcess>();

interface Guest {
  port: number;
  qemu: ChildProcess;
  console: string;
  exited: Promise<number | null>;
  /** What QEMU wrote to stderr so far. */
  stderr: () => string;
}

async function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}


async function consoleTail(g: Guest): Promise<string> {
  if (!existsSync(g.console)) return '(no console output)';
  return (await readFile(g.console, 'utf8')).split('\n').slice(-40).join('\n');
}

/** Boots the tiny box's disk from a fresh overlay, with a seed ISO or none. */
async function boot(name: string, seedIso?: string): Promise<Guest> {
  const overlay = join(work, `${name}.qcow2`);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', disk, '-F', 'qcow2', overlay, '2G']);
  const port = await freeLoopbackPort();
  const console = join(work, `${name}-console.log`);
  const qemu = spawn(
    'qemu-system-x86_64',
    [
      '-machine', 'pc',
      '-accel', 'tcg',
      '-m', '256',
      '-smp', '1',
      '-nodefaults',
      '-no-user-config',
      '-display', 'none',
      '-serial', `file:${console}`,
      '-drive', `file=${overlay},if=virtio,format=qcow2`,
      ...(seedIso === undefined ? [] : ['-drive', `file=${seedIso},media=cdrom,if=ide,readonly=on`]),
      '-nic', `user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:22`,
      '-device', 'virtio-rng-pci',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  running.add(qemu);
  let stderr = '';
  qemu.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    qemu.once('exit', (code) => {
      running.delete(qemu);
      resolve(code);
    }),
  );
  return { port, qemu, console, exited, stderr: () => stderr };
}

async function stop(g: Guest): Promise<void> {
  if (g.qemu.exitCode !== null || g.qemu.signalCode !== null) return;
  g.qemu.kill('SIGTERM');
  const done = await Promise.race([g.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 10_000))]);
  if (!done) {
    g.qemu.kill('SIGKILL');
    await g.exited;
  }
}

interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** OpenSSH as `vagrant` with one key only, a known_hosts of this test, bounded. */
async function ssh(g: Guest, key: string, command: string, extra: string[] = [], timeoutMs = 30_000): Promise<SshResult> {
  // extra first: for -o options OpenSSH keeps the first value it is given
  const args = [
    ...extra,
    '-F', '/dev/null',
    '-i', key,
    '-p', String(g.port),
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'PreferredAuthentications=publickey',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=accept-new',
    '-o', `UserKnownHostsFile=${join(work, 'known_hosts')}`,
    '-o', 'ConnectTimeout=5',
    '-o', 'LogLevel=ERROR',
    'vagrant@127.0.0.1',
    command,
  ];
  try {
    const { stdout, stderr } = await execFileP('ssh', args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; killed?: boolean };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''}${e.killed === true ? ' (timed out)' : ''}` };
  }
}

async function sshOk(g: Guest, key: string, command: string, extra: string[] = []): Promise<string> {
  const r = await ssh(g, key, command, extra);
  if (r.code !== 0) throw new Error(`ssh '${command}' exited ${r.code}: ${r.stderr.trim()}\n--- serial console ---\n${await consoleTail(g)}`);
  return r.stdout.trim();
}

/**
 * Waits for the boot script's last line ("tiny: up in N s": the network is up, dropbear
 * about to start; SSH attempts before that would hang inside QEMU's user network), then
 * for a login with `key`. Returns the seconds since QEMU started.
 */
async function waitForLogin(g: Guest, key: string, what: string, since = Date.now(), upLines = 1): Promise<number> {
  const deadline = since + SSH_READY_LIMIT_S * 1000;
  const fail = async (why: string): Promise<never> => {
    throw new Error(`${what}: ${why}\n--- serial console ---\n${await consoleTail(g)}`);
  };
  for (;;) {
    if (g.qemu.exitCode !== null) await fail(`QEMU exited (${g.qemu.exitCode}): ${g.stderr()}`);
    const text = existsSync(g.console) ? await readFile(g.console, 'utf8') : '';
    if ((text.match(/tiny: up in /g) ?? []).length >= upLines) break;
    if (Date.now() > deadline) await fail(`the guest did not finish booting within ${SSH_READY_LIMIT_S} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
  let last = '';
  while (Date.now() < deadline) {
    const r = await ssh(g, key, 'true', [], 15_000);
    if (r.code === 0) return (Date.now() - since) / 1000;
    last = r.stderr.trim();
    await new Promise((r2) => setTimeout(r2, 500));
  }
  return fail(`no SSH login on 127.0.0.1:${g.port} within ${SSH_READY_LIMIT_S} s (${last})`);
}

/** A private key where OpenSSH accepts it (mode 0600; the committed files are 0644). */
async function privateKey(from: string, name: string): Promise<string> {
  const to = join(work, name);
  await copyFile(from, to);
  await chmod(to, 0o600);
  return to;
}

const RSA_SHA2 = ['-o', 'PubkeyAcceptedAlgorithms=rsa-sha2-512,rsa-sha2-256'];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmenv-vagrant-'));
  keys = {
    ed25519: await privateKey(join(vagrantKeys, 'vagrant.key.ed25519'), 'vagrant.ed25519'),
    rsa: await privateKey(join(vagrantKeys, 'vagrant.key.rsa'), 'vagrant.rsa'),
    seed: join(work, 'machine'),
  };
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vmenv-e2e-machine', '-f', keys.seed]);
  insecurePub = await Promise.all(['vagrant.pub.ed25519', 'vagrant.pub.rsa'].map(async (f) => (await readFile(join(vagrantKeys, f), 'utf8')).trim()));
}, 60_000);

afterAll(async () => {
  for (const q of running) {
    q.kill('SIGKILL');
  }
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('the tiny box in Vagrant', () => {
  it('is a vagrant-libvirt box: metadata.json (libvirt, qcow2, whole GiB), box.img and a Vagrantfile', async () => {
    const box = await builtBox('tiny');
    const r = await readBoxArchive(box, join(work, 'box'));
    expect(r.files.sort()).toEqual(['Vagrantfile', 'box.img', 'metadata.json']);
    const metadata = JSON.parse(await readFile(join(work, 'box', 'metadata.json'), 'utf8')) as Record<string, unknown>;
    expect(metadata).toMatchObject({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 });
    expect(await readFile(r.vagrantfile!, 'utf8')).toBe(await readFile(join(root, 'boxes', 'tiny', 'Vagrantfile'), 'utf8'));
    disk = join(work, 'box', 'box.img');
  }, 16 * 60_000);

  it("booted with no seed: Vagrant's insecure ed25519 and RSA keys log in as vagrant, with sudo and scp -t; after Vagrant replaced them a reboot does not put them back", async () => {
    expect(disk).toBeDefined();
    const g = await boot('no-seed');
    try {
      const t0 = Date.now();
      const ready = await waitForLogin(g, keys.ed25519, 'seedless boot, ed25519 insecure key', t0);
      console.log(`tiny without a seed: SSH with the insecure ed25519 key ${ready.toFixed(1)} s after QEMU started`);
      expect(await sshOk(g, keys.ed25519, 'id -un && sudo -n true && echo sudo-ok')).toBe('vagrant\nsudo-ok');
      // RSA: OpenSSH signs with rsa-sha2-512/256 only (never SHA-1 ssh-rsa); dropbear must take that.
      const rsa = await ssh(g, keys.rsa, 'id -un && sudo -n true && echo sudo-ok', [...RSA_SHA2, '-o', 'LogLevel=DEBUG3']);
      expect(rsa.code, rsa.stderr).toBe(0);
      expect(rsa.stdout.trim()).toBe('vagrant\nsudo-ok');
      const sig = rsa.stderr.match(/sign_and_send_pubkey: signing using (\S+)/)?.[1];
      console.log(`RSA insecure key accepted, signed with ${sig ?? '?'}`);
      expect(sig).toMatch(/^rsa-sha2-(256|512)$/);

      const authorized = (await sshOk(g, keys.ed25519, 'cat ~/.ssh/authorized_keys')).split('\n');
      expect(authorized).toEqual(insecurePub);
      expect(await sshOk(g, keys.ed25519, 'stat -c %a ~/.ssh ~/.ssh/authorized_keys')).toBe('700\n600');
      expect(await sshOk(g, keys.ed25519, 'cat /var/log/vmenv-nocloud.log')).toContain("first boot without a seed: Vagrant's insecure keys authorized for vagrant");

      // Vagrant uploads its new key with the SCP protocol (scp -t on the guest)...
      const machinePub = (await readFile(`${keys.seed}.pub`, 'utf8')).trim();
      await run('scp', [
        '-O', '-q', '-F', '/dev/null', '-i', keys.ed25519, '-P', String(g.port),
        '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${join(work, 'known_hosts')}`, '-o', 'ConnectTimeout=5',
        `${keys.seed}.pub`, 'vagrant@127.0.0.1:/tmp/vagrant-authorized-keys',
      ], 30_000);
      // ...and replaces the insecure keys with it (as its Linux insert_public_key/remove_public_key do).
      await sshOk(g, keys.ed25519, 'cat /tmp/vagrant-authorized-keys > ~/.ssh/authorized_keys && chmod 0600 ~/.ssh/authorized_keys && rm /tmp/vagrant-authorized-keys && sync');
      expect(await sshOk(g, keys.seed, 'cat ~/.ssh/authorized_keys')).toBe(machinePub);

      // A reboot: the key Vagrant put there stays, the insecure ones are not put back.
      await ssh(g, keys.seed, 'sudo -n reboot', [], 10_000);
      const t1 = Date.now();
      await waitForLogin(g, keys.seed, 'after the reboot', t1, 2);
      expect(await sshOk(g, keys.seed, 'cat ~/.ssh/authorized_keys')).toBe(machinePub);
      for (const key of [keys.ed25519, keys.rsa]) {
        const r = await ssh(g, key, 'true', key === keys.rsa ? RSA_SHA2 : []);
        expect(r.code, `${key} after the reboot`).toBe(255);
        expect(r.stderr).toMatch(/Permission denied/);
      }
    } finally {
      await stop(g);
    }
  }, 300_000);

  it("booted with a NoCloud seed: the seed's key logs in, the insecure keys are refused and never installed", async () => {
    expect(disk).toBeDefined();
    const pub = (await readFile(`${keys.seed}.pub`, 'utf8')).trim();
    const iso = join(work, 'seed.iso');
    await writeSeedIso(iso, renderSeed({ instanceId: `i-vagrant-e2e-${process.pid}`, hostname: 'seeded', sshAuthorizedKeys: [pub] }));
    const g = await boot('seed', iso);
    try {
      const t0 = Date.now();
      const ready = await waitForLogin(g, keys.seed, 'seeded boot, the seed key', t0);
      console.log(`tiny with a seed: SSH with the seed's key ${ready.toFixed(1)} s after QEMU started`);
      expect(await sshOk(g, keys.seed, 'id -un && hostname && sudo -n true && echo sudo-ok')).toBe('vagrant\nseeded\nsudo-ok');
      for (const key of [keys.ed25519, keys.rsa]) {
        const r = await ssh(g, key, 'true', key === keys.rsa ? RSA_SHA2 : []);
        expect(r.code, `${key} with a seed`).toBe(255);
        expect(r.stderr).toMatch(/Permission denied/);
      }
      expect(await sshOk(g, keys.seed, 'cat ~/.ssh/authorized_keys')).toBe(pub);
      expect(await sshOk(g, keys.seed, 'test -e /var/lib/vmenv-nocloud/vagrant-insecure-keys && echo marker || echo none')).toBe('none');
    } finally {
      await stop(g);
    }
  }, 240_000);
});
