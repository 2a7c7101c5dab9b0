/**
 * A box as a user gets it: built from its recipe, added to the store, uploaded into a
 * pool once, booted by the harness's libvirtd (inside its network namespace) from a
 * copy-on-write overlay with a NoCloud seed, reached over SSH with the seed's key;
 * a file survives a reboot; the ACPI power button powers it off; `box remove` takes
 * its volumes out of the pool again.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBox } from '../../src/box/stored-boxes.js';
import { listUploads, recordUpload, toUploadBox, uploadLock } from '../../src/box/upload-records.js';
import { ensureBoxVolumes } from '../../src/box/upload.js';
import {
  DomainEventType,
  DomainShutdownFlags,
  DomainUndefineFlags,
  isNotFound,
  openLibvirt,
  type DomainRef,
  type LibvirtClient,
  type NetworkRef,
  type StoragePoolRef,
  type StorageVolRef,
} from '../../src/libvirt/index.js';
import { domainXml, networkXml, volumeXml } from '../../src/libvirt/xml/index.js';
import { machineMac, seedDrive } from '../../src/lifecycle/domain-plan.js';
import { renderSeed, writeSeedIso } from '../../src/lifecycle/seed.js';
import { discoverIp } from '../../src/net/ip-discovery.js';
import { hostRoutesAndAddresses, networkAddresses, pickFreeSubnet } from '../../src/net/subnet.js';
import { generateMachineKey, memoryHostKeyStore, netnsProxyCommand, waitForSsh, type SshSession } from '../../src/ssh/index.js';
import { builtBox } from '../support/boxes.js';
import { runVmenv } from '../support/cli.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const suffix = randomBytes(3).toString('hex');
const name = `vmenv-e2e-tiny-${suffix}`;
const home = mkdtempSync(join(tmpdir(), 'vmenv-boot-home-'));
const work = mkdtempSync(join(tmpdir(), 'vmenv-boot-'));
const GiB = 1024 ** 3;
const boxName = `vmenv-e2e/tiny-${suffix}`;

let client: LibvirtClient;
let pool: StoragePoolRef;
let net: NetworkRef | undefined;
let dom: DomainRef | undefined;
const volumes: StorageVolRef[] = [];
const key = generateMachineKey(`vmenv-e2e@${name}`);
const pins = memoryHostKeyStore();
const mac = machineMac(name);
const events: number[] = [];
/** The guest's serial console, as virtlogd writes it on the harness host. */
const consoleLog = join(host.state, 'log', 'qemu', `${name}-serial.log`);

async function vmenv(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await runVmenv(args, { env: { VMENV_HOME: home }, timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`vmenv ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

function consoleTail(): string {
  return existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8').split('\n').slice(-40).join('\n') : '(no console log)';
}

/** Boots (or waits for a reboot), finds the IP through the leases and connects over SSH inside the netns. */
async function reach(what: string): Promise<{ session: SshSession; ip: string; ms: number }> {
  const t0 = Date.now();
  try {
    const { ip } = await discoverIp({ client, domain: dom!, mac, network: net!, timeoutMs: 120_000, what: `an IP for ${what}` });
    const { session } = await waitForSsh({
      host: ip,
      username: 'vagrant',
      privateKey: key.privateKey,
      hostKey: pins,
      proxyCommand: netnsProxyCommand(host.netns),
      timeoutMs: 120_000,
      label: what,
    });
    return { session, ip, ms: Date.now() - t0 };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- serial console ---\n${consoleTail()}`, { cause: err });
  }
}

async function sh(session: SshSession, command: string): Promise<string> {
  const r = await session.exec(command);
  if (r.code !== 0) throw new Error(`'${command}' exited ${String(r.code)}: ${r.stderr ?? ''}`);
  return (r.stdout ?? '').trim();
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  pool = await client.storagePoolLookupByName(host.pool);
  await client.onDomainLifecycle(null, (e) => {
    if (e.domain.name === name) events.push(e.event);
  });
});

afterAll(async () => {
  if (dom) {
    await client.domainDestroy(dom).catch(() => undefined);
    await client.domainUndefine(dom, DomainUndefineFlags.nvram).catch(() => undefined);
  }
  for (const v of volumes) await client.storageVolDelete(v).catch(() => undefined);
  if (net) {
    await client.networkDestroy(net).catch(() => undefined);
    await client.networkUndefine(net).catch(() => undefined);
  }
  // Box volumes, should the test have failed before `box remove`.
  const stored = await findBox(boxName, undefined, { home }).catch(() => undefined);
  if (stored) {
    for (const u of await listUploads(stored, { home })) {
      const v = await client.storageVolLookupByName(await client.storagePoolLookupByName(u.pool), u.volume).catch(() => undefined);
      if (v) await client.storageVolDelete(v).catch(() => undefined);
    }
  }
  await client?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('the tiny box', () => {
  let session: SshSession;

  it('is built, added and uploaded into the pool once', async () => {
    const file = await builtBox('tiny');
    expect(statSync(file).size).toBeLessThanOrEqual(60 * 1024 * 1024);
    await vmenv(['box', 'add', file, '--name', boxName]);
    const { stdout } = await vmenv(['box', 'list', '--json']);
    expect(JSON.stringify(JSON.parse(stdout))).toContain(boxName);

    const stored = await findBox(boxName, undefined, { home });
    const withLock = uploadLock({ home });
    const onUploaded = (r: { uri: string; pool: string; volume: string }): Promise<void> => recordUpload(stored, r, { home });
    const [base] = await ensureBoxVolumes(client, host.pool, toUploadBox(stored), { withLock, onUploaded });
    const [again] = await ensureBoxVolumes(client, host.pool, toUploadBox(stored), { withLock, onUploaded });
    expect(again!.key).toBe(base!.key);
    expect(await listUploads(stored, { home })).toHaveLength(1);
  });

  it('boots from an overlay with a NoCloud seed and answers SSH with the seed key', async () => {
    const stored = await findBox(boxName, undefined, { home });
    const [base] = await ensureBoxVolumes(client, host.pool, toUploadBox(stored));
    // An overlay larger than the box: the root filesystem must grow into it.
    const overlay = await client.storageVolCreateXml(
      pool,
      volumeXml({ name: `${name}.qcow2`, capacityBytes: 2 * GiB, backingStore: { path: await client.storageVolGetPath(base!), format: 'qcow2' } }),
    );
    volumes.push(overlay);
    const iso = join(work, 'seed.iso');
    await writeSeedIso(iso, renderSeed({ instanceId: `i-${suffix}`, hostname: 'tinybox', sshAuthorizedKeys: [key.publicKey] }));
    const seed = await client.storageVolCreateXml(pool, volumeXml({ name: `${name}-seed.iso`, capacityBytes: statSync(iso).size, format: 'raw' }));
    volumes.push(seed);
    await client.storageVolUploadFile(seed, iso);

    const used = (await hostRoutesAndAddresses({ netns: host.netns })).used;
    const subnet = pickFreeSubnet(used)!;
    const a = networkAddresses(subnet);
    net = await client.networkDefineXml(
      networkXml({ name, forward: { mode: 'nat' }, ipv4: { address: a.gateway, prefix: a.prefix, dhcp: { range: { start: a.dhcpStart, end: a.dhcpEnd } } } }),
    );
    await client.networkCreate(net);

    dom = await client.domainDefineXml(
      domainXml({
        name,
        type: 'qemu',
        memoryMiB: 256,
        vcpus: 1,
        disks: [
          { source: { kind: 'volume', pool: host.pool, volume: overlay.name }, target: 'vda', bootOrder: 1 },
          // where `vmenv up` puts it
          { source: { kind: 'volume', pool: host.pool, volume: seed.name }, device: 'cdrom', ...seedDrive('pc') },
        ],
        interfaces: [{ type: 'network', network: name, mac }],
        serial: { logFile: `/var/log/libvirt/qemu/${name}-serial.log` },
      }),
    );
    await client.domainCreate(dom);
    const reached = await reach('the tiny box');
    session = reached.session;
    console.log(`tiny: SSH ready ${(reached.ms / 1000).toFixed(1)} s after domain start (target <= 8 s)`);

    expect(await sh(session, 'id -un')).toBe('vagrant');
    expect(await sh(session, 'hostname')).toBe('tinybox');
    await sh(session, 'sudo -n true');
    expect(await sh(session, 'rsync --version | head -1')).toMatch(/rsync/);
    // The root filesystem grew from the box's size to the overlay's.
    const rootKiB = Number(await sh(session, "df -k / | awk 'NR==2 {print $2}'"));
    expect(rootKiB * 1024).toBeGreaterThan(1.5 * GiB);
    await sh(session, 'echo kept-across-reboot > /home/vagrant/marker && sync');
  });

  it('keeps a file across a reboot, with the same host key', async () => {
    const bootId = await sh(session, 'cat /proc/sys/kernel/random/boot_id');
    await session.exec('sudo -n reboot').catch(() => undefined);
    await session.close();
    // SSH may still answer for a moment before the guest goes down: only a new boot id counts.
    const deadline = Date.now() + 180_000;
    for (;;) {
      const reached = await reach('the tiny box after its reboot');
      session = reached.session;
      if ((await sh(session, 'cat /proc/sys/kernel/random/boot_id')) !== bootId) break;
      await session.close();
      if (Date.now() > deadline) throw new Error(`the guest did not reboot\n${consoleTail()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(await sh(session, 'cat /home/vagrant/marker')).toBe('kept-across-reboot');
    expect(session.pinnedNow).toBe(false);
  });

  it('powers off on the ACPI power button', async () => {
    await session.close();
    events.length = 0;
    await client.domainShutdown(dom!, DomainShutdownFlags.acpiPowerButton);
    const t0 = Date.now();
    while (!events.includes(DomainEventType.stopped) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 100));
    expect(events, consoleTail()).toContain(DomainEventType.stopped);
    console.log(`tiny: powered off ${((Date.now() - t0) / 1000).toFixed(1)} s after the ACPI power button`);
  });

  it('box remove deletes the box and its volumes from the pool', async () => {
    await client.domainUndefine(dom!, DomainUndefineFlags.nvram);
    dom = undefined;
    for (const v of volumes.splice(0)) await client.storageVolDelete(v);
    const stored = await findBox(boxName, undefined, { home });
    const [upload] = await listUploads(stored, { home });
    await vmenv(['box', 'remove', boxName]);
    await client.storagePoolRefresh(pool);
    const gone = await client.storageVolLookupByName(pool, upload!.volume).catch((e: unknown) => e);
    expect(isNotFound(gone)).toBe(true);
    const { stdout } = await vmenv(['box', 'list', '--json']);
    expect(stdout).not.toContain(boxName);
  });
});
