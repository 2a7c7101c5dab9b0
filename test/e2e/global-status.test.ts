/**
 * `vmenv global-status` with the built CLI against the harness's libvirtd: a domain
 * defined there (not started) is listed as shutoff; an index entry whose project folder
 * vanished and one whose domain libvirt does not have are pruned and reported on
 * stderr; a libvirt that cannot be reached (a closed port on loopback) leaves its
 * machine unknown and in the index; --no-prune changes nothing.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machineIndexPath, readMachineIndex, type MachineIndexEntry } from '../../src/project/machine-index.js';
import { formatUuid, isNotFound, openLibvirt, type DomainRef, type LibvirtClient } from '../../src/libvirt/index.js';
import { domainXml } from '../../src/libvirt/xml/index.js';
import { registerMachine } from '../../src/project/machine-index.js';
import { newMachineState, ProjectState } from '../../src/project/state.js';
import type { GlobalStatus } from '../../src/inventory/global-status.js';
import { runVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const tmp = mkdtempSync(join(tmpdir(), 'vmenv-e2e-global-'));
const home = join(tmp, 'home');
const project = join(tmp, 'shop');
const domainName = `vmenv-e2e-global-${process.pid}`;
// Nothing listens on port 1 of loopback: a libvirt that cannot be reached.
const deadUri = 'qemu+tcp://127.0.0.1:1/system';
let client: LibvirtClient;
let dom: DomainRef | undefined;
let live: MachineIndexEntry;

function vmenv(args: string[]): Promise<Run> {
  return runVmenv(args, { env: { VMENV_HOME: home, VMENV_LIBVIRT_URI: '' }, timeoutMs: 60_000 });
}

function entry(id: string, dir: string, machine: string, uri: string, domain: string): MachineIndexEntry {
  return { id, project: dir, machine, box: { name: 'tiny', version: '1.0.0' }, uri, domain, state: 'running' };
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  dom = await client.domainDefineXml(domainXml({ name: domainName, type: 'qemu', memoryMiB: 64, vcpus: 1, rng: false, guestAgent: false }));
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'vmenv.yaml'), 'machines:\n  web: { box: tiny }\n  db: { box: tiny }\n  cache: { box: tiny }\n');
  for (const m of ['web', 'db', 'cache']) {
    await new ProjectState(project).write(newMachineState({ machine: m, uri: host.uri, pool: host.pool, ssh: { username: 'u', privateKeyPath: '/k' } }));
  }
  live = entry(formatUuid(dom.uuid), project, 'web', host.uri, domainName);
  await registerMachine(live, { home });
  await registerMachine(entry('0badc0de-0000-4000-8000-000000000001', join(tmp, 'vanished'), 'web', host.uri, 'vanished_web_00000000'), { home });
  await registerMachine(entry('0badc0de-0000-4000-8000-000000000002', project, 'db', host.uri, `${domainName}-never-defined`), { home });
  await registerMachine(entry('0badc0de-0000-4000-8000-000000000003', project, 'cache', deadUri, 'shop_cache_00000000'), { home });
});

afterAll(async () => {
  if (dom !== undefined) {
    await client.domainUndefine(dom).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }
  await client?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('vmenv global-status (built CLI, harness libvirtd)', () => {
  it('lists the defined domain as shutoff, an unreachable libvirt as unknown, and prunes the vanished entries', async () => {
    const r = await vmenv(['global-status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as GlobalStatus;
    expect(result.machines.map((m) => [m.id, m.machine, m.state])).toEqual([
      ['0badc0de-0000-4000-8000-000000000003', 'cache', 'unknown (libvirt unreachable)'],
      [live.id, 'web', 'shutoff'],
    ]);
    expect(result.machines.find((m) => m.id === live.id)).toMatchObject({ project, uri: host.uri, domain: domainName, box: { name: 'tiny', version: '1.0.0' } });
    expect(result.pruned.map((p) => [p.id, p.reason]).sort()).toEqual([
      ['0badc0de-0000-4000-8000-000000000001', 'project folder is gone'],
      ['0badc0de-0000-4000-8000-000000000002', 'domain is gone'],
    ]);
    expect(r.stderr).toContain(`Pruned 0badc0d web (${join(tmp, 'vanished')}): project folder is gone.`);
    expect(r.stderr).toContain(`Pruned 0badc0d db (${project}): domain is gone.`);
    expect((await readMachineIndex({ home })).map((e) => e.id).sort()).toEqual(['0badc0de-0000-4000-8000-000000000003', live.id]);
  });

  it('prints a table; nothing is left to prune', async () => {
    const r = await vmenv(['global-status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +NAME +STATE +BOX +URI +DIRECTORY$/);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(new RegExp(`^${live.id.slice(0, 7)} +web +shutoff +tiny 1\\.0\\.0 +${host.uri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +${project}$`));
  });

  it('--no-prune marks an entry whose state vanished and leaves the index untouched; the next run prunes it', async () => {
    await new ProjectState(project).remove('web');
    const before = readFileSync(machineIndexPath({ home }), 'utf8');
    const r = await vmenv(['global-status', '--no-prune']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${live.id.slice(0, 7)} +web +stale: machine state is gone `, 'm'));
    expect(r.stdout).toContain("1 entry is stale; 'vmenv global-status' without --no-prune removes it.");
    expect(readFileSync(machineIndexPath({ home }), 'utf8')).toBe(before);

    const pruned = await vmenv(['global-status', '--prune', '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect((JSON.parse(pruned.stdout) as GlobalStatus).pruned.map((p) => [p.id, p.reason])).toEqual([[live.id, 'machine state is gone']]);
    expect((await readMachineIndex({ home })).map((e) => e.id)).toEqual(['0badc0de-0000-4000-8000-000000000003']);
  });

  it('--help shows the examples', async () => {
    const r = await vmenv(['global-status', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--no-prune');
    expect(r.stdout).toContain('global-status --json');
  });
});
