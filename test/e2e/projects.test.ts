/**
 * Several machines and several projects on one libvirt host: two machines brought up
 * with --parallel, and a second project whose folder has the same name as the first's
 * (in another place) living beside it without sharing a domain, volume or state.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLibvirt, type LibvirtClient } from '../../src/libvirt/index.js';
import { machineResourceName } from '../../src/project/names.js';
import { builtBox } from '../support/boxes.js';
import { runVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const home = mkdtempSync(join(tmpdir(), 'vmenv-projects-home-'));
const root = mkdtempSync(join(tmpdir(), 'vmenv-projects-'));
const first = join(root, 'one', 'app');
const second = join(root, 'two', 'app');
const network = `vmenv-e2e-p${process.pid}`;
const env = { ...process.env, VMENV_HOME: home, VMENV_GUEST_NETNS: host.netns, VMENV_LIBVIRT_URI: host.uri };
let client: LibvirtClient;

function vmenv(dir: string, args: string[]): Promise<Run> {
  return runVmenv([...args, '--cwd', dir], { env, timeoutMs: 300_000 });
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

function yaml(machines?: string[]): string {
  const lines = ['box: tiny', 'memory: 256', `pool: ${host.pool}`, `network: { mode: nat, name: ${network} }`, 'boot: { timeout: 240 }'];
  if (machines) lines.push('machines:', ...machines.map((m) => `  ${m}: { hostname: ${m}-host }`));
  return `${lines.join('\n')}\n`;
}

async function domainsOf(dir: string, machine: string): Promise<string[]> {
  const stem = machineResourceName(dir, machine);
  return (await client.connectListAllDomains()).map((d) => d.name).filter((n) => n === stem);
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  for (const [dir, text] of [
    [first, yaml()],
    [second, yaml(['default', 'db'])],
  ] as const) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'vmenv.yaml'), text);
  }
  ok(await runVmenv(['box', 'add', await builtBox('tiny'), '--name', 'tiny'], { env, timeoutMs: 300_000 }));
});

afterAll(async () => {
  await vmenv(second, ['destroy', '-f']);
  await vmenv(first, ['destroy', '-f']);
  await runVmenv(['box', 'remove', 'tiny', '--all'], { env });
  await client?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

describe('machines and projects side by side', () => {
  it('a project named like another one, elsewhere, gets its own domain', async () => {
    ok(await vmenv(first, ['up']));
    expect(machineResourceName(first, 'default')).not.toBe(machineResourceName(second, 'default'));
    expect(await domainsOf(first, 'default')).toHaveLength(1);
  });

  it('up --parallel brings two machines up at once, each with its own name and address', async () => {
    const up = ok(await vmenv(second, ['up', '--parallel']));
    expect(up.stderr).not.toMatch(/Also failed/);
    const status = JSON.parse(ok(await vmenv(second, ['status', '--json'])).stdout) as { machines: { machine: string; status: string; ip?: string }[] };
    expect(status.machines.map((m) => [m.machine, m.status])).toEqual([
      ['default', 'running'],
      ['db', 'running'],
    ]);
    expect(new Set(status.machines.map((m) => m.ip)).size).toBe(2);
    expect(ok(await vmenv(second, ['ssh', 'db', '-c', 'hostname'])).stdout).toBe('db-host\n');
    expect(ok(await vmenv(second, ['ssh', 'default', '-c', 'hostname'])).stdout).toBe('default-host\n');
  });

  it("the first project's machine is untouched by the second's; the shared network goes with the last machine", async () => {
    expect(ok(await vmenv(first, ['ssh', '-c', 'hostname'])).stdout).toBe('default\n');
    // The first project created the network; the second joined it. Destroying the
    // creator keeps it for the others, and the last one out removes it.
    ok(await vmenv(first, ['destroy', '-f']));
    expect(await domainsOf(first, 'default')).toEqual([]);
    expect((await client.connectListAllNetworks()).map((n) => n.name)).toContain(network);
    expect(ok(await vmenv(second, ['ssh', 'db', '-c', 'hostname'])).stdout).toBe('db-host\n');
    ok(await vmenv(second, ['destroy', '-f', '--parallel']));
    expect(await domainsOf(second, 'default')).toEqual([]);
    expect(await domainsOf(second, 'db')).toEqual([]);
    expect((await client.connectListAllNetworks()).map((n) => n.name)).not.toContain(network);
  });
});
