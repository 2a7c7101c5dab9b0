/**
 * `vmenv doctor` and `vmenv prune` with the built CLI against the harness's libvirtd:
 * - a socket path with nothing there → "socket missing"; a socket file nobody listens
 *   on → "daemon down"; both exit 3, with the checks that need libvirt skipped;
 * - a project whose pool does not exist → a warning that `vmenv up` creates it (and a
 *   failure when QEMU's user could not reach the folder it would be made in);
 * - stale resources: a domain (defined, never started) whose project folder does not
 *   exist, its volumes and the vmenv network only it uses, an old machine volume with
 *   no domain, an index entry of a vanished project → reported by doctor, listed by
 *   `prune --dry-run`, removed by `prune -f`; a live project's domain and volume, a
 *   box volume and a fresh orphan volume are kept.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machineIndexPath } from '../../src/project/machine-index.js';
import type { Check, DoctorReport } from '../../src/services/doctor/doctor.js';
import { isNotFound, openLibvirt, type LibvirtClient } from '../../src/libvirt/index.js';
import { domainXml, networkXml, poolXml, volumeXml } from '../../src/libvirt/xml/index.js';
import { machineMac } from '../../src/lifecycle/domain-plan.js';
import { vmenvBridgeName } from '../../src/net/network.js';
import { registerMachine } from '../../src/project/machine-index.js';
import { machineResourceName } from '../../src/project/names.js';
import type { PruneResult } from '../../src/inventory/prune.js';
import { newMachineState, ProjectState } from '../../src/project/state.js';
import { runVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const tmp = mkdtempSync(join(tmpdir(), 'vmenv-e2e-doctor-'));
// QEMU's user must be able to search the folders a pool would be made in.
chmodSync(tmp, 0o755);
const home = join(tmp, 'home');
const tag = `${process.pid}`;
const gone = join(tmp, `gone-${tag}`);
const liveDir = join(tmp, `live-${tag}`);
const staleName = machineResourceName(gone, 'web');
const orphanName = machineResourceName(join(tmp, `gone2-${tag}`), 'db');
const freshName = machineResourceName(join(tmp, `gone3-${tag}`), 'db');
const liveName = machineResourceName(liveDir, 'web');
const networkName = `vmenv-e2e-doctor-${tag}`;
const boxVolume = `vmenv-box_doctor-e2e_${tag}_0_0123456789.qcow2`;
const staleVolumes = [`${staleName}.qcow2`, `${staleName}-seed.iso`, `${orphanName}.qcow2`];
const keptVolumes = [`${liveName}.qcow2`, boxVolume, `${freshName}-disk0.qcow2`];
let client: LibvirtClient;

function vmenv(args: string[], env: NodeJS.ProcessEnv = {}, cwd = tmp): Promise<Run> {
  return runVmenv(args, { cwd, env: { VMENV_HOME: home, VMENV_LIBVIRT_URI: host.uri, VMENV_CWD: '', ...env }, timeoutMs: 90_000 });
}

function check(report: DoctorReport, name: string): Check {
  const c = report.checks.find((x) => x.name === name);
  expect(c, `no check named ${name}`).toBeDefined();
  return c!;
}

async function exists(kind: 'domain' | 'volume' | 'network', name: string): Promise<boolean> {
  const lookup =
    kind === 'domain'
      ? client.domainLookupByName(name)
      : kind === 'network'
        ? client.networkLookupByName(name)
        : client.storagePoolLookupByName(host.pool).then((p) => client.storageVolLookupByName(p, name));
  return lookup.then(
    () => true,
    (err: unknown) => {
      if (isNotFound(err)) return false;
      throw err;
    },
  );
}

async function defineMachineDomain(name: string, projectPath: string, network?: string): Promise<void> {
  await client.domainDefineXml(
    domainXml({
      name,
      type: 'qemu',
      memoryMiB: 64,
      vcpus: 1,
      rng: false,
      guestAgent: false,
      disks: [{ source: { kind: 'volume', pool: host.pool, volume: `${name}.qcow2` }, target: 'vda', format: 'qcow2' }],
      interfaces: network === undefined ? [] : [{ type: 'network', network, mac: machineMac(name) }],
      metadata: { projectPath, machine: 'web', box: 'tiny' },
    }),
  );
}

async function removeAll(): Promise<void> {
  for (const name of [staleName, liveName]) {
    const d = await client.domainLookupByName(name).catch(() => undefined);
    if (d) await client.domainUndefine(d).catch(() => undefined);
  }
  const pool = await client.storagePoolLookupByName(host.pool);
  for (const v of [...staleVolumes, ...keptVolumes]) {
    const vol = await client.storageVolLookupByName(pool, v).catch(() => undefined);
    if (vol) await client.storageVolDelete(vol).catch(() => undefined);
  }
  const net = await client.networkLookupByName(networkName).catch(() => undefined);
  if (net) await client.networkUndefine(net).catch(() => undefined);
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  mkdirSync(home, { recursive: true, mode: 0o755 });
  // A network vmenv owns (its bridge is vmenv-<hash>), defined but not started; isolated, no subnet.
  await client.networkDefineXml(networkXml({ name: networkName, bridge: { name: vmenvBridgeName(networkName) }, forward: { mode: 'none' } }));
  const pool = await client.storagePoolLookupByName(host.pool);
  for (const v of [...staleVolumes, ...keptVolumes]) {
    await client.storageVolCreateXml(pool, volumeXml({ name: v, capacityBytes: 1024n * 1024n, format: v.endsWith('.iso') ? 'raw' : 'qcow2' }));
  }
  // The orphan is an hour old: no `up` is making it.
  const orphanPath = await client.storageVolGetPath(await client.storageVolLookupByName(pool, `${orphanName}.qcow2`));
  const hourAgo = new Date(Date.now() - 3600_000);
  utimesSync(orphanPath, hourAgo, hourAgo);

  await defineMachineDomain(staleName, gone, networkName);
  mkdirSync(liveDir, { recursive: true });
  writeFileSync(join(liveDir, 'vmenv.yaml'), 'box: tiny\n');
  await new ProjectState(liveDir).write(newMachineState({ machine: 'web', uri: host.uri, pool: host.pool, ssh: { username: 'u', privateKeyPath: '/k' } }));
  await defineMachineDomain(liveName, liveDir);
  await registerMachine({ id: '0badc0de-0000-4000-8000-00000000d0c1', project: gone, machine: 'web', box: { name: 'tiny', version: '1' }, uri: host.uri, domain: staleName }, { home });
});

afterAll(async () => {
  if (client !== undefined) {
    await removeAll();
    await client.close();
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe('vmenv doctor against the harness libvirtd', () => {
  it('--json reports every check as data, in order, each not ok with a fix', async () => {
    const r = await vmenv(['doctor', '--json', '--uri', host.uri]);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(r.code).toBe(report.exitCode);
    expect(report.ok).toBe(report.exitCode === 0);
    expect(['kvm', 'qemu']).toContain(report.domainType);
    expect(report.uri).toBe(host.uri);
    expect(report.checks.map((c) => c.name)).toEqual(['node', 'virtualization', 'qemu-system-x86_64', 'qemu-img', 'virsh', 'rsync', 'ssh', 'iso-tool', 'libvirt', 'pool', 'kvm-device', 'network', 'stale']);
    for (const c of report.checks) {
      expect(['ok', 'warn', 'fail']).toContain(c.status);
      expect(c.detail).not.toBe('');
      if (c.status === 'ok') expect(c.fix).toBeNull();
      else expect(typeof c.fix).toBe('string');
    }
    const libvirt = check(report, 'libvirt');
    expect(libvirt.status, libvirt.detail).toBe('ok');
    expect(libvirt.detail).toMatch(new RegExp(`^libvirt \\d+\\.\\d+\\.\\d+ at ${host.uri.replace(/[?]/g, '\\?')} .*\\(given with --uri\\)$`));
  });

  it('prints one line per check, and Fix lines', async () => {
    const r = await vmenv(['doctor', '--uri', host.uri, '--timeout', '5']);
    expect(r.stdout).toMatch(/^\[ ok \] node /m);
    expect(r.stdout).toMatch(/^\[ ok \] libvirt /m);
    expect(r.stdout).toMatch(/^\[(?: ok |warn|FAIL)\] (?:pool|network|stale) /m);
    expect(r.stdout).toMatch(/^(?:Ready: guests will run as|\d+ problems? to fix)/m);
  });
});

describe('vmenv doctor when libvirt cannot be reached', () => {
  it('says "socket missing" for a socket path with nothing there, exits 3 and skips the libvirt checks', async () => {
    const uri = 'qemu+unix:///system?socket=/run/vmenv-test/none/libvirt-sock';
    const r = await vmenv(['doctor', '--json', '--uri', uri]);
    expect(r.code, r.stderr).toBe(3);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report).toMatchObject({ ok: false, exitCode: 3 });
    const libvirt = check(report, 'libvirt');
    expect(libvirt).toMatchObject({ status: 'fail', cause: 'socket-missing' });
    expect(libvirt.detail).toContain('socket missing');
    expect(libvirt.detail).toContain('/run/vmenv-test/none/libvirt-sock');
    expect(libvirt.fix).toMatch(/socket/);
    for (const name of ['pool', 'kvm-device', 'network', 'stale']) expect(check(report, name).status).toBe('skip');

    const text = await vmenv(['doctor', '--uri', uri]);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/^\[FAIL\] libvirt +cannot use libvirt at .*socket missing/m);
    expect(text.stdout).toMatch(/^ +Fix: Start the libvirt daemon that listens on \/run\/vmenv-test\/none\/libvirt-sock/m);
    expect(text.stdout).toMatch(/^\[skip\] pool /m);
  });

  it('says "daemon down" for a socket nobody accepts on, and prune stops with exit 3', async () => {
    const socket = join(tmp, 'dead-sock');
    // A server that exits without closing leaves its socket file: connecting is refused.
    const made = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => process.exit(0))`], { timeout: 10_000 });
    expect(made.status).toBe(0);
    expect(existsSync(socket)).toBe(true);
    const uri = `qemu:///system?socket=${socket}`;
    const r = await vmenv(['doctor', '--json', '--uri', uri]);
    expect(r.code).toBe(3);
    const libvirt = check(JSON.parse(r.stdout) as DoctorReport, 'libvirt');
    expect(libvirt).toMatchObject({ status: 'fail', cause: 'daemon-down' });
    expect(libvirt.detail).toContain('daemon down');
    expect(libvirt.fix).toContain(`Restart the libvirt daemon that listens on ${socket}`);

    const p = await vmenv(['prune', '-f', '--uri', uri]);
    expect(p.code).toBe(3);
    expect(p.stderr).toContain('daemon down');
  });
});

describe('vmenv doctor in a project', () => {
  it('warns that a missing pool is created by vmenv up, and where', async () => {
    const project = join(tmp, 'nopool');
    mkdirSync(project);
    writeFileSync(join(project, 'vmenv.yaml'), `box: tiny\npool: no-such-pool-${tag}\nnetwork: { mode: user }\n`);
    const r = await vmenv(['doctor', '--json'], {}, project);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(check(report, 'libvirt').status).toBe('ok');
    expect(check(report, 'project')).toMatchObject({ status: 'ok' });
    const pool = check(report, 'pool');
    expect(pool.status, pool.detail).toBe('warn');
    expect(pool.detail).toContain(`pool 'no-such-pool-${tag}' (from vmenv.yaml) does not exist`);
    // On a system daemon QEMU's user cannot enter a home folder: the pool goes beside libvirt's images.
    expect(pool.detail).toContain(`'vmenv up' creates it at /var/lib/libvirt/vmenv-pools/no-such-pool-${tag}`);
    expect(pool.detail).toMatch(/libvirt-qemu \(QEMU's user\) can reach files there/);
    expect(pool.fix).toContain(`pool-define-as no-such-pool-${tag} dir`);
    expect(check(report, 'network').detail).toContain('user-mode networking (network.mode in vmenv.yaml)');
    // Only the warnings of this host (no KVM) and of the pool: nothing fails.
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(r.code).toBe(0);
  });

  it("fails a pool whose folder QEMU's user cannot reach", async () => {
    const project = join(tmp, 'closed');
    mkdirSync(project);
    const name = `closed-pool-${tag}`;
    writeFileSync(join(project, 'vmenv.yaml'), `box: tiny\npool: ${name}\n`);
    const closedHome = join(tmp, 'closed-home');
    mkdirSync(closedHome, { mode: 0o700 });
    chmodSync(closedHome, 0o700);
    const lv = await openLibvirt(host.uri);
    const pool = await lv.storagePoolDefineXml(poolXml({ name, path: join(closedHome, 'pool') }));
    try {
      const r = await vmenv(['doctor', '--json'], {}, project);
      expect(r.code).toBe(1);
      const c = check(JSON.parse(r.stdout) as DoctorReport, 'pool');
      expect(c.status).toBe('fail');
      expect(c.detail).toContain(`libvirt-qemu (QEMU's user) cannot search ${closedHome} (drwx------ root:root)`);
      expect(c.fix).toContain(`sudo chmod o+x ${closedHome}`);
    } finally {
      await lv.storagePoolUndefine(pool);
      await lv.close();
    }
  });

  it('passes the harness pool, which QEMU can reach', async () => {
    const project = join(tmp, 'harness-pool');
    mkdirSync(project);
    writeFileSync(join(project, 'vmenv.yaml'), `box: tiny\npool: ${host.pool}\n`);
    const report = JSON.parse((await vmenv(['doctor', '--json'], {}, project)).stdout) as DoctorReport;
    const pool = check(report, 'pool');
    expect(pool.status, pool.detail).toBe('ok');
    expect(pool.detail).toContain(`dir at ${host.poolDir}`);
  });
});

describe('stale resources', () => {
  it('doctor lists them with the command that removes them', async () => {
    const r = await vmenv(['doctor', '--json']);
    const report = JSON.parse(r.stdout) as DoctorReport;
    const stale = check(report, 'stale');
    expect(stale.status).toBe('warn');
    expect(stale.fix).toContain('vmenv prune');
    expect(stale.items).toEqual(
      expect.arrayContaining([
        `domain ${staleName}: project folder is gone (${gone})`,
        `volume ${host.pool}/${staleName}.qcow2: its domain ${staleName} is stale`,
        `volume ${host.pool}/${staleName}-seed.iso: its domain ${staleName} is stale`,
        `volume ${host.pool}/${orphanName}.qcow2: no domain ${orphanName}`,
        `network ${networkName}: only stale domains use it (${staleName})`,
        `index entry web (${gone}): project folder is gone`,
      ]),
    );
    const listed = (stale.items ?? []).join('\n');
    for (const kept of [liveName, boxVolume, freshName]) expect(listed).not.toContain(kept);
    expect(report.stale?.kept.some((k) => k.includes(`${freshName}-disk0.qcow2`) && k.includes("an 'up' under way"))).toBe(true);

    const text = await vmenv(['doctor']);
    expect(text.stdout).toMatch(/^\[warn\] stale +left behind by projects that are gone/m);
    expect(text.stdout).toMatch(new RegExp(`^ +- domain ${staleName}: project folder is gone`, 'm'));
    expect(text.stdout).toMatch(/^ +Fix: vmenv prune/m);
  });

  it('prune --dry-run lists them and removes nothing; without a terminal prune needs -f', async () => {
    const r = await vmenv(['prune', '--dry-run', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as PruneResult;
    expect(plan.dryRun).toBe(true);
    expect(plan.domains.map((d) => d.name)).toContain(staleName);
    expect(plan.volumes.map((v) => v.name)).toEqual(expect.arrayContaining(staleVolumes));
    expect(plan.networks.map((n) => n.name)).toContain(networkName);
    expect(plan.index.map((e) => e.project)).toEqual([gone]);
    expect(await exists('domain', staleName)).toBe(true);

    const text = await vmenv(['prune', '--dry-run']);
    expect(text.stdout).toContain('Would remove from');
    expect(text.stdout).toMatch(new RegExp(`^  domain  ${staleName}: project folder is gone \\(${gone}\\)$`, 'm'));

    const refused = await vmenv(['prune']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('no terminal');
    expect(await exists('domain', staleName)).toBe(true);
  });

  it('prune -f removes them and keeps what a live project, a box or an up under way owns', async () => {
    const r = await vmenv(['prune', '-f', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as PruneResult;
    expect(result.domains.find((d) => d.name === staleName)).toMatchObject({ removed: true });
    for (const v of staleVolumes) expect(result.volumes.find((x) => x.name === v), v).toMatchObject({ removed: true });
    expect(result.networks.find((n) => n.name === networkName)).toMatchObject({ removed: true });
    expect(result.index).toEqual([expect.objectContaining({ project: gone, removed: true })]);

    expect(await exists('domain', staleName)).toBe(false);
    for (const v of staleVolumes) expect(await exists('volume', v), v).toBe(false);
    expect(await exists('network', networkName)).toBe(false);
    expect(await exists('domain', liveName)).toBe(true);
    for (const v of keptVolumes) expect(await exists('volume', v), v).toBe(true);
    expect(JSON.parse(readFileSync(machineIndexPath({ home }), 'utf8'))).toEqual({ machines: [] });

    const after = JSON.parse((await vmenv(['doctor', '--json'])).stdout) as DoctorReport;
    const listed = (check(after, 'stale').items ?? []).join('\n');
    for (const name of [staleName, orphanName, networkName]) expect(listed).not.toContain(name);
  });
});
