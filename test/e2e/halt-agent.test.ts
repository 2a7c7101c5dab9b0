/**
 * `shutdown.mode: agent` as a user runs it, with the built CLI on the harness's libvirtd:
 * the debian-12 box (qemu-guest-agent) is shut down by its guest agent — with the guest's
 * ACPI power button made to do nothing first, and shown to do nothing, so only the agent
 * can have shut it down —, and the tiny box (no agent) still halts, through the ACPI power
 * button, within a bounded time, saying why.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainShutdownFlags, DomainState } from '../../src/libvirt/constants.js';
import { openLibvirt, type LibvirtClient } from '../../src/libvirt/index.js';
import { machineResourceName } from '../../src/project/names.js';
import { builtBox } from '../support/boxes.js';
import { runVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const home = mkdtempSync(join(tmpdir(), 'vmenv-agent-home-'));
const project = join(mkdtempSync(join(tmpdir(), 'vmenv-agent-')), 'agent');
const env = { ...process.env, VMENV_HOME: home, VMENV_GUEST_NETNS: host.netns, VMENV_LIBVIRT_URI: host.uri };
const network = `vmenv-e2e-ag-${process.pid}`;
let client: LibvirtClient;

function vmenv(args: string[], timeoutMs = 420_000): Promise<Run> {
  return runVmenv([...args, '--cwd', project], { env, timeoutMs });
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

async function domainOf(machine: string): Promise<Awaited<ReturnType<LibvirtClient['domainLookupByName']>>> {
  return client.domainLookupByName(machineResourceName(project, machine));
}

async function stateOf(machine: string): Promise<number> {
  return (await client.domainGetState(await domainOf(machine))).state;
}

/** Polls `check` every 500 ms until it holds or `timeoutMs` passes; the last answer. */
async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  mkdirSync(project, { recursive: true });
  writeFileSync(
    join(project, 'vmenv.yaml'),
    [
      `pool: ${host.pool}`,
      `network: { mode: nat, name: ${network} }`,
      'boot: { timeout: 300 }',
      'shutdown: { mode: agent, timeout: 120 }',
      'synced_folders:',
      '  - { guest: /vagrant, disabled: true }',
      'machines:',
      '  tiny: { box: tiny, memory: 256 }',
      '  deb: { box: debian-12, memory: 768 }',
      '',
    ].join('\n'),
  );
  // VMENV_TEST_DEBIAN12_BOX: a debian-12 .box already built (building one takes minutes).
  const [tiny, deb] = await Promise.all([builtBox('tiny'), process.env['VMENV_TEST_DEBIAN12_BOX'] ?? builtBox('debian-12')]);
  ok(await runVmenv(['box', 'add', tiny, '--name', 'tiny'], { env, timeoutMs: 300_000 }));
  ok(await runVmenv(['box', 'add', deb, '--name', 'debian-12'], { env, timeoutMs: 300_000 }));
}, 1_200_000);

afterAll(async () => {
  await vmenv(['destroy', '-f']);
  await runVmenv(['box', 'remove', 'tiny', '--all'], { env });
  await runVmenv(['box', 'remove', 'debian-12', '--all'], { env });
  await client?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(dirname(project), { recursive: true, force: true });
}, 300_000);

describe('halt with shutdown.mode agent', () => {
  it('the tiny box has no agent: halt falls back to the ACPI power button and says why, in bounded time', async () => {
    ok(await vmenv(['up', 'tiny']));
    const t0 = Date.now();
    const r = ok(await vmenv(['halt', 'tiny'], 120_000));
    const seconds = (Date.now() - t0) / 1000;
    expect(r.stdout).toContain('tiny: shut down');
    expect(r.stderr).toMatch(/tiny: the guest agent cannot shut it down \(.*agent.*\): pressing the ACPI power button/);
    // The agent's refusal comes at once; the busybox guest powers off on the button in seconds.
    expect(seconds).toBeLessThan(40);
    expect(await stateOf('tiny')).toBe(DomainState.shutoff);
  });

  it('the debian-12 box is shut down by its guest agent, with its power button doing nothing', async () => {
    ok(await vmenv(['up', 'deb']));
    const domain = await domainOf('deb');
    // qemu-guest-agent starts after sshd may: wait until libvirt sees it connected.
    const connected = await until(async () => /name=['"]org\.qemu\.guest_agent\.0['"][^>]*state=['"]connected['"]/.test(await client.domainGetXmlDesc(domain)), 120_000);
    expect(connected).toBe(true);
    // logind ignores the power button from now on; shown by pressing it.
    ok(
      await vmenv([
        'ssh',
        'deb',
        '-c',
        "sudo mkdir -p /etc/systemd/logind.conf.d && printf '[Login]\\nHandlePowerKey=ignore\\n' | sudo tee /etc/systemd/logind.conf.d/ignore-power.conf >/dev/null && sudo systemctl restart systemd-logind",
      ]),
    );
    await new Promise((r) => setTimeout(r, 3000)); // logind up again with the new setting
    await client.domainShutdown(domain, DomainShutdownFlags.acpiPowerButton);
    expect(await until(async () => (await stateOf('deb')) === DomainState.shutoff, 10_000)).toBe(false);
    expect(ok(await vmenv(['ssh', 'deb', '-c', 'echo still-up'])).stdout).toBe('still-up\n');

    const r = ok(await vmenv(['halt', 'deb'], 180_000));
    expect(r.stdout).toContain('deb: shut down');
    expect(r.stderr).toContain('deb: the guest agent shut it down');
    expect(r.stderr).not.toContain('ACPI');
    expect(await stateOf('deb')).toBe(DomainState.shutoff);
  });
});
