/**
 * `vmenv box build debian-12` end to end, with the built CLI, as root:
 *   1. build the box (or reuse one built from the same recipe and builder, see below);
 *   2. check the .box: metadata.json (libvirt, qcow2, 10 GiB, vmenv fields with the
 *      recipe hash), the recipe's Vagrantfile and the qcow2 disk inside;
 *   3. boot it under QEMU directly — SeaBIOS boots the disk by itself, no -kernel — on an
 *      overlay larger than the box, with a NoCloud seed ISO carrying a fresh SSH key and a
 *      host name; user-mode networking (restrict=on) with SSH forwarded to 127.0.0.1;
 *   4. SSH in as vagrant: passwordless sudo, rsync, the seed's host name, the root
 *      filesystem grown to the overlay, host keys made at first boot;
 *   5. ACPI power button (system_powerdown on the monitor): QEMU exits within 60 s.
 *
 * Cache: building takes minutes, so a built box is kept as
 * /var/cache/vmenv/boxes/debian-12-<key>.box (src/build/cache.ts), where <key> covers the
 * recipe hash (boxes/debian-12 and boxes/common) and the builder's sources (src/build,
 * src/box/format.ts, src/box/metadata.ts); any change to those builds afresh.
 * VMENV_TEST_REBUILD=1 always builds. scripts/box-cache.sh shares the cache.
 *
 * Network: only loopback (the forwarded SSH port) and, while building, Debian's mirror
 * through apt.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOX_CACHE_DIR, boxCacheKey, cachedBoxName } from '../../src/build/cache.js';

const execFileP = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'run.js');
const RECIPE = 'debian-12';
const BOX_CACHE = BOX_CACHE_DIR;
const GiB = 1024 ** 3;

const SSH_READY_LIMIT_S = 90;
const POWEROFF_LIMIT_S = 60;

let work: string;
let boxPath: string;
let boxFromCache = false;
let buildSeconds: number | undefined;
let recipeHash: string;
let buildDirsBefore: string[] = [];
let qemu: ChildProcess | undefined;
let qemuExited: Promise<number | null> | undefined;
let sshPort = 0;
let sshReadySeconds: number | undefined;
const hostname = `vmenv-e2e-${process.pid}`;

async function sh(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** The build work dirs (src/build/workdir.ts) of this recipe now in $TMPDIR. */
async function buildDirs(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((f) => f.startsWith(`vmenv-build-${RECIPE}-`));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function sshArgs(key: string, command: string): string[] {
  return [
    '-i', key,
    '-p', String(sshPort),
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=5',
    'vagrant@127.0.0.1',
    command,
  ];
}

async function ssh(command: string, timeoutMs = 30_000): Promise<string> {
  return sh('ssh', sshArgs(join(work, 'id_ed25519'), command), timeoutMs);
}

async function consoleTail(lines = 40): Promise<string> {
  try {
    const text = await readFile(join(work, 'console.log'), 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no console output)';
  }
}

/** Sends one HMP command on QEMU's monitor socket. */
function monitor(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(join(work, 'monitor.sock'));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`monitor did not answer ${command}`));
    }, 10_000);
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.once('connect', () => {
      sock.write(`${command}\n`);
      setTimeout(() => {
        clearTimeout(timer);
        sock.end();
        resolve();
      }, 500);
    });
  });
}

beforeAll(async () => {
  if (!existsSync(join(root, 'dist', 'cli', 'commands', 'box', 'build.js')) || !existsSync(join(root, 'oclif.manifest.json'))) {
    await sh('npm', ['run', 'build'], 300_000);
  }
  work = await mkdtemp(join(tmpdir(), 'vmenv-e2e-box-build-'));
  const { key, recipeHash: hash } = await boxCacheKey(join(root, 'boxes', RECIPE), join(root, 'boxes', 'common'), root);
  recipeHash = hash;
  const cached = join(BOX_CACHE, cachedBoxName(RECIPE, key));
  if (process.env['VMENV_TEST_REBUILD'] !== '1' && existsSync(cached)) {
    boxPath = cached;
    boxFromCache = true;
    return;
  }
  boxPath = join(work, `${RECIPE}.box`);
  // Work dirs of other builds (an earlier run's, or another process's) are not this build's.
  buildDirsBefore = await buildDirs();
  const started = Date.now();
  const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, 'box', 'build', RECIPE, '-o', boxPath, '--checksum', 'sha256'], {
      cwd: work,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 840_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
  buildSeconds = (Date.now() - started) / 1000;
  if (run.code !== 0) throw new Error(`vmenv box build ${RECIPE} exited ${run.code}:\n${run.out.split('\n').slice(-40).join('\n')}`);
  console.log(`built ${RECIPE} in ${buildSeconds.toFixed(0)} s`);
  // Keep it for the next runs (atomically: a half-copied box is never reused).
  await mkdir(BOX_CACHE, { recursive: true });
  const tmp = `${cached}.${process.pid}.tmp`;
  await copyFile(boxPath, tmp);
  await rename(tmp, cached);
}, 900_000);

afterAll(async () => {
  if (qemu?.pid !== undefined && qemu.exitCode === null && qemu.signalCode === null) {
    qemu.kill('SIGTERM');
    await Promise.race([qemuExited, new Promise((r) => setTimeout(r, 5000))]);
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
  }
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe(`vmenv box build ${RECIPE}`, () => {
  it('builds within 4 minutes (when not taken from the cache) and writes a checksum beside the box', async () => {
    if (boxFromCache) {
      console.log(`using the cached box ${boxPath}`);
      return;
    }
    expect(buildSeconds).toBeLessThanOrEqual(240);
    const sum = await readFile(`${boxPath}.sha256`, 'utf8');
    const actual = (await sh('sha256sum', [boxPath], 120_000)).split(' ')[0];
    expect(sum).toBe(`${actual}  ${RECIPE}.box\n`);
    // Nothing of the build is left behind.
    expect((await buildDirs()).filter((d) => !buildDirsBefore.includes(d))).toEqual([]);
  });

  it('holds metadata.json (libvirt, qcow2, 10 GiB, vmenv fields), the recipe\'s Vagrantfile and a compressed qcow2 disk', async () => {
    const listing = (await sh('tar', ['-tf', boxPath])).trim().split('\n');
    expect(listing).toEqual(['metadata.json', 'Vagrantfile', 'box.img']);
    expect(await sh('tar', ['-xOf', boxPath, 'Vagrantfile'])).toBe(await readFile(join(root, 'boxes', RECIPE, 'Vagrantfile'), 'utf8'));
    const metadata = JSON.parse(await sh('tar', ['-xOf', boxPath, 'metadata.json'])) as Record<string, unknown> & { vmenv: Record<string, unknown> };
    expect(metadata).toMatchObject({ provider: 'libvirt', format: 'qcow2', virtual_size: 10 });
    expect(metadata.vmenv).toMatchObject({
      name: `vmenv/${RECIPE}`,
      default_user: 'vagrant',
      nocloud: true,
      recipe: RECIPE,
      recipe_hash: recipeHash,
    });
    await sh('tar', ['-xf', boxPath, '-C', work, 'box.img'], 120_000);
    const info = JSON.parse(await sh('qemu-img', ['info', '--output=json', join(work, 'box.img')])) as { format: string; 'virtual-size': number; 'actual-size': number };
    expect(info.format).toBe('qcow2');
    expect(info['virtual-size']).toBe(10 * GiB);
    const size = (await stat(join(work, 'box.img'))).size;
    console.log(`box ${(size / 1024 ** 2).toFixed(0)} MiB (qcow2), virtual ${info['virtual-size'] / GiB} GiB`);
    expect(size).toBeLessThan(400 * 1024 ** 2);
  });

  it(`boots from its own disk under QEMU and is SSH-ready within ${SSH_READY_LIMIT_S} s, with the seed's key`, async () => {
    await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', join(work, 'box.img'), '-F', 'qcow2', join(work, 'overlay.qcow2'), '12G']);
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vmenv-e2e', '-f', join(work, 'id_ed25519')]);
    const pub = (await readFile(join(work, 'id_ed25519.pub'), 'utf8')).trim();
    await mkdir(join(work, 'seed'));
    await writeFile(join(work, 'seed', 'meta-data'), `instance-id: e2e-${process.pid}\nlocal-hostname: ${hostname}\n`);
    await writeFile(join(work, 'seed', 'user-data'), `#cloud-config\nssh_authorized_keys:\n  - ${pub}\n`);
    await sh('genisoimage', ['-quiet', '-V', 'cidata', '-J', '-r', '-o', join(work, 'seed.iso'), join(work, 'seed', 'meta-data'), join(work, 'seed', 'user-data')]);

    sshPort = await freePort();
    const started = Date.now();
    qemu = spawn(
      'qemu-system-x86_64',
      [
        '-machine', 'pc',
        '-accel', 'tcg',
        '-m', '1024',
        '-smp', '2',
        '-nographic',
        '-drive', `file=${join(work, 'overlay.qcow2')},if=virtio`,
        '-cdrom', join(work, 'seed.iso'),
        '-netdev', `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22`,
        '-device', 'virtio-net-pci,netdev=n0',
        '-serial', `file:${join(work, 'console.log')}`,
        '-monitor', `unix:${join(work, 'monitor.sock')},server,nowait`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let qemuErr = '';
    qemu.stderr!.on('data', (c: Buffer) => (qemuErr += c.toString()));
    qemuExited = new Promise((resolve) => qemu!.once('exit', (code) => resolve(code)));

    const deadline = started + SSH_READY_LIMIT_S * 1000;
    let lastError = '';
    while (Date.now() < deadline) {
      if (qemu.exitCode !== null) throw new Error(`QEMU exited (${qemu.exitCode}): ${qemuErr}\n${await consoleTail()}`);
      try {
        await ssh('true', 10_000);
        sshReadySeconds = (Date.now() - started) / 1000;
        break;
      } catch (err) {
        lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    if (sshReadySeconds === undefined) {
      throw new Error(`no SSH on 127.0.0.1:${sshPort} after ${SSH_READY_LIMIT_S} s (${lastError.trim()}); serial console:\n${await consoleTail()}`);
    }
    console.log(`SSH ready ${sshReadySeconds.toFixed(1)} s after QEMU started (target 40 s)`);
    const out = await ssh('id vagrant && sudo -n true && rsync --version');
    expect(out).toMatch(/^uid=\d+\(vagrant\)/);
    expect(out).toMatch(/rsync\s+version/);
  }, 180_000);

  it("takes the seed's host name, made its own host keys, and grows its root filesystem to the overlay", async () => {
    expect(sshReadySeconds).toBeDefined();
    expect((await ssh('hostname')).trim()).toBe(hostname);
    expect((await ssh('systemctl show -p ConditionResult --value vmenv-ssh-hostkeys.service')).trim()).toBe('yes');
    expect((await ssh('sudo -n passwd -S vagrant')).split(' ')[1]).toBe('L');
    // vmenv-growroot runs alongside the rest of the boot: give it time.
    let size = 0;
    for (let i = 0; i < 60; i++) {
      size = Number((await ssh("df -B1 --output=size / | tail -n 1")).trim());
      if (size > 11 * GiB) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(size).toBeGreaterThan(11 * GiB);
  }, 120_000);

  it(`powers off on the ACPI power button within ${POWEROFF_LIMIT_S} s`, async () => {
    expect(qemu?.exitCode).toBeNull();
    const started = Date.now();
    await monitor('system_powerdown');
    const code = await Promise.race([qemuExited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), POWEROFF_LIMIT_S * 1000))]);
    if (code === 'timeout') throw new Error(`QEMU still runs ${POWEROFF_LIMIT_S} s after system_powerdown; serial console:\n${await consoleTail()}`);
    console.log(`powered off ${((Date.now() - started) / 1000).toFixed(1)} s after the ACPI power button`);
    expect(code).toBe(0);
  }, 90_000);
});
