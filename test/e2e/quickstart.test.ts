/**
 * README's first command, run as written: `bash scripts/quickstart.sh` (what
 * `npm run quickstart` runs) installs what is missing, builds the tiny box if the cache
 * has none, writes an example project, brings its machine up with user-mode
 * networking (loopback only) and runs a command in it. Afterwards the test removes
 * the machine, the pool vmenv made for this run, and the daemons the script started.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

afterAll(async () => {
  await runVmenv(['destroy', '-f', '--cwd', example], { env, timeoutMs: 120_000 });
  await runVmenv(['box', 'remove', 'tiny', '--all'], { env, timeoutMs: 120_000 });
  // The pool `up` defined when there was none (never one that was there before).
  if (!poolBefore && hasDefaultPool()) {
    execFileSync('virsh', ['-c', 'qemu:///system', 'pool-destroy', 'default'], { stdio: 'ignore' });
    execFileSync('virsh', ['-c', 'qemu:///system', 'pool-undefine', 'default'], { stdio: 'ignore' });
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
    console.log(`quick start: ${r.seconds.toFixed(1)} s (${started.length > 0 ? 'started libvirt daemons' : 'libvirt was running'})`);
    const status = JSON.parse((await runVmenv(['status', '--json', '--cwd', example], { env })).stdout) as { machines: { status: string; ip?: string }[] };
    expect(status.machines[0]).toMatchObject({ status: 'running', ip: '127.0.0.1' });
  });
});
