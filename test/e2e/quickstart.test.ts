/**
 * README's first command, run as written: `bash scripts/quickstart.sh` (what
 * `npm run quickstart` runs) installs what is missing, builds the tiny box if the cache
 * has none, writes an example project, brings its machine up with user-mode
 * networking (loopback only) and runs a command in it. Afterwards the test removes
 * the machine, the pool vmenv made for this run, and the daemons the script started.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot, runVmenv, startCommand, type Run } from '../support/cli.js';

const root = mkdtempSync(join(tmpdir(), 'vmenv-quickstart-'));
const home = join(root, 'home');
const example = join(root, 'example');
// A new user's environment: none of the harness's redirections.
const env: NodeJS.ProcessEnv = { ...process.env, VMENV_HOME: home, VMENV_QUICKSTART_DIR: example };
for (const k of Object.keys(env)) if (k.startsWith('VMENV_TEST_') || k === 'VMENV_GUEST_NETNS' || k === 'VMENV_LIBVIRT_URI' || k === 'LIBVIRT_DEFAULT_URI') delete env[k];
let started: number[] = [];

async function quickstart(): Promise<Run & { seconds: number }> {
  const t0 = Date.now();
  const r = await startCommand('bash', ['scripts/quickstart.sh'], { cwd: projectRoot, env, timeoutMs: 900_000 }).done;
  return { ...r, seconds: (Date.now() - t0) / 1000 };
}

function hasDefaultPool(): boolean {
  try {
    execFileSync('virsh', ['-c', 'qemu:///system', 'pool-info', 'default'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false; // no such pool, or no daemon yet
  }
}
const poolBefore = hasDefaultPool();

/** /dev/kvm as found: the script may give it udev's group and mode; the host gets it back. */
function kvmDevice(): { mode: number; gid: number } | undefined {
  try {
    const s = statSync('/dev/kvm');
    return s.isCharacterDevice() ? { mode: s.mode & 0o7777, gid: s.gid } : undefined;
  } catch {
    return undefined;
  }
}
const kvmBefore = kvmDevice();
/** Whether QEMU's user (libvirt-qemu) can open /dev/kvm read-write now. */
function qemuUserOpensKvm(): boolean {
  return spawnSync('setpriv', ['--reuid=libvirt-qemu', '--regid=kvm', '--init-groups', 'test', '-r', '/dev/kvm', '-a', '-w', '/dev/kvm']).status === 0;
}
const qemuOpenedKvmBefore = kvmBefore !== undefined && qemuUserOpensKvm();

afterAll(async () => {
  await runVmenv(['destroy', '-f', '--cwd', example], { env, timeoutMs: 120_000 });
  await runVmenv(['box', 'remove', 'tiny', '--all'], { env, timeoutMs: 120_000 });
  // The pool `up` defined when there was none (never one that was there before).
  if (!poolBefore && hasDefaultPool()) {
    execFileSync('virsh', ['-c', 'qemu:///system', 'pool-destroy', 'default'], { stdio: 'ignore' });
    execFileSync('virsh', ['-c', 'qemu:///system', 'pool-undefine', 'default'], { stdio: 'ignore' });
  }
  if (kvmBefore !== undefined) {
    chownSync('/dev/kvm', 0, kvmBefore.gid);
    chmodSync('/dev/kvm', kvmBefore.mode);
  }
  for (const pid of started.reverse()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone already
    }
  }
  rmSync(root, { recursive: true, force: true });
});

describe('the quick start', () => {
  it('brings up a machine from the tiny box and prints the output of a command run in it', async () => {
    const r = await quickstart();
    started = [...r.stderr.matchAll(/started (?:virtlogd|libvirtd) \(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^Hello from default: Linux \S+, up \d+ s$/m);
    expect(r.stderr).toMatch(/==> done in [\d.]+ s/);
    // A host without udev: the script gives /dev/kvm udev's group and mode, and says so.
    if (kvmBefore !== undefined && !qemuOpenedKvmBefore) {
      expect(r.stderr).toContain("giving /dev/kvm the group and mode Debian's udev rule gives it (root:kvm 0660)");
      expect(qemuUserOpensKvm()).toBe(true);
    } else {
      expect(r.stderr).not.toContain('giving /dev/kvm');
    }
    console.log(`quick start: ${r.seconds.toFixed(1)} s (${started.length > 0 ? 'started libvirt daemons' : 'libvirt was running'})`);
    const status = JSON.parse((await runVmenv(['status', '--json', '--cwd', example], { env })).stdout) as { machines: { status: string; ip?: string }[] };
    expect(status.machines[0]).toMatchObject({ status: 'running', ip: '127.0.0.1' });
  });
});
