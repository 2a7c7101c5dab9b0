import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DomainEventType,
  DomainInterfaceAddressSource,
  DomainShutdownFlags,
  DomainState,
  DomainUndefineFlags,
  formatUuid,
  isDomainNotFound,
  isNetworkNotFound,
  isNotFound,
  isPoolNotFound,
  isVolumeNotFound,
  LibvirtError,
  openLibvirt,
  type DomainRef,
  type LibvirtClient,
  type StoragePoolRef,
  type StorageVolRef,
} from '../../src/libvirt/index.js';
import { domainXml, networkXml, poolXml, volumeXml } from '../../src/libvirt/xml/index.js';
import { testHost } from '../support/harness.js';

const run = promisify(execFile);
const host = testHost();
const suffix = randomBytes(3).toString('hex');
const MiB = 1024 * 1024;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Waits for the first event that satisfies `match`, failing after `ms`. */
function waitFor<T>(events: T[], match: (e: T) => boolean, ms: number, what: string): Promise<T> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      const hit = events.find(match);
      if (hit) resolve(hit);
      else if (Date.now() - started > ms) reject(new Error(`no ${what} within ${ms} ms; saw ${JSON.stringify(events)}`));
      else setTimeout(tick, 20);
    };
    tick();
  });
}

let client: LibvirtClient;
beforeAll(async () => {
  client = await openLibvirt(host.uri);
});
afterAll(async () => {
  await client?.close();
});

describe('connection', () => {
  it('reports the daemon version, hostname and capabilities', async () => {
    const v = await client.connectGetLibVersion();
    expect(v).toBeGreaterThanOrEqual(9_000_000n);
    expect(await client.connectGetHostname()).not.toBe('');
    expect(await client.connectGetCapabilities()).toMatch(/<capabilities>[\s\S]*<guest>/);
    expect(await client.connectGetUri()).toBe('qemu:///system');
  });

  it('matches 200 concurrent calls to their replies', async () => {
    const pools = await Promise.all(Array.from({ length: 200 }, () => client.storagePoolLookupByName(host.pool)));
    expect(new Set(pools.map((p) => p.name))).toEqual(new Set([host.pool]));
  });

  it('raises typed not-found errors', async () => {
    const dom = await client.domainLookupByName(`absent-${suffix}`).catch((e: unknown) => e);
    expect(dom).toBeInstanceOf(LibvirtError);
    expect(isDomainNotFound(dom)).toBe(true);
    expect(isNotFound(dom)).toBe(true);
    expect(isNetworkNotFound(await client.networkLookupByName(`absent-${suffix}`).catch((e: unknown) => e))).toBe(true);
    expect(isPoolNotFound(await client.storagePoolLookupByName(`absent-${suffix}`).catch((e: unknown) => e))).toBe(true);
    const pool = await client.storagePoolLookupByName(host.pool);
    expect(isVolumeNotFound(await client.storageVolLookupByName(pool, `absent-${suffix}`).catch((e: unknown) => e))).toBe(true);
  });
});

describe('storage', () => {
  let dir: string;
  let pool: StoragePoolRef;
  const created: StorageVolRef[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmenv-it-'));
    pool = await client.storagePoolDefineXml(poolXml({ name: `vmenv-it-${suffix}`, path: join(dir, 'pool') }));
    await client.storagePoolBuild(pool);
    await client.storagePoolCreate(pool);
  });
  afterAll(async () => {
    for (const v of created.reverse()) await client.storageVolDelete(v).catch(() => undefined);
    if (pool) {
      await client.storagePoolDestroy(pool).catch(() => undefined);
      await client.storagePoolUndefine(pool).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the pool and reads its XML and info', async () => {
    const all = await client.connectListAllStoragePools();
    expect(all.map((p) => p.name)).toContain(pool.name);
    expect(await client.storagePoolIsActive(pool)).toBe(true);
    expect(await client.storagePoolGetXmlDesc(pool)).toContain(join(dir, 'pool'));
    expect((await client.storagePoolGetInfo(pool)).capacity).toBeGreaterThan(0n);
  });

  it('uploads a 256 MiB qcow2 file through a stream and downloads it back byte-identical', async () => {
    const raw = join(dir, 'data.raw');
    const image = join(dir, 'data.qcow2');
    await run('sh', ['-c', `head -c ${256 * MiB} /dev/urandom > '${raw}'`]);
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
    const size = (await stat(image)).size;
    expect(size).toBeGreaterThan(256 * MiB);

    const vol = await client.storageVolCreateXml(pool, volumeXml({ name: 'base.qcow2', capacityBytes: 256 * MiB, format: 'qcow2' }));
    created.push(vol);
    let lastProgress = 0;
    const sent = await client.storageVolUploadFile(vol, image, {
      onProgress: (n) => (lastProgress = n),
    });
    expect(sent).toBe(size);
    expect(lastProgress).toBe(size);

    const path = await client.storageVolGetPath(vol);
    expect(await sha256File(path)).toBe(await sha256File(image));
    // The volume holds the qcow2 file as it was: same format and guest-visible content.
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, path]);

    const h = createHash('sha256');
    let downloaded = 0;
    for await (const chunk of await client.storageVolDownload(vol)) {
      h.update(chunk as Buffer);
      downloaded += (chunk as Buffer).length;
    }
    expect(downloaded).toBe(size);
    expect(h.digest('hex')).toBe(await sha256File(image));
    await rm(raw);
  });

  it('survives a download cancelled halfway: the daemon is told, the connection goes on', async () => {
    const base = await client.storageVolLookupByName(pool, 'base.qcow2');
    const ac = new AbortController();
    const readable = await client.storageVolDownload(base, { signal: ac.signal });
    let got = 0;
    const err = await (async () => {
      for await (const chunk of readable) {
        got += (chunk as Buffer).length;
        if (got > 16 * MiB) ac.abort(new Error('stop'));
      }
    })().catch((e: unknown) => e);
    expect((err as Error).message).toBe('stop');
    expect(client.rpc.openStreams).toBe(0);
    expect(await client.connectGetHostname()).not.toBe('');
    // A second download on the same connection runs to the end.
    let total = 0;
    for await (const chunk of await client.storageVolDownload(base)) total += (chunk as Buffer).length;
    expect(BigInt(total)).toBe(BigInt((await stat(await client.storageVolGetPath(base))).size));
  });

  it('creates a copy-on-write overlay whose backing file is the base volume', async () => {
    const base = await client.storageVolLookupByName(pool, 'base.qcow2');
    const basePath = await client.storageVolGetPath(base);
    const overlay = await client.storageVolCreateXml(
      pool,
      volumeXml({ name: 'overlay.qcow2', capacityBytes: 512 * MiB, format: 'qcow2', backingStore: { path: basePath, format: 'qcow2' } }),
    );
    created.push(overlay);
    const xml = await client.storageVolGetXmlDesc(overlay);
    expect(xml).toMatch(new RegExp(`<backingStore>\\s*<path>${basePath}</path>`));
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', await client.storageVolGetPath(overlay)])).stdout) as {
      'backing-filename': string;
      'virtual-size': number;
      format: string;
    };
    expect(info.format).toBe('qcow2');
    expect(info['backing-filename']).toBe(basePath);
    expect(info['virtual-size']).toBe(512 * MiB);
    expect((await client.storageVolGetInfo(overlay)).capacity).toBe(BigInt(512 * MiB));

    await client.storageVolResize(overlay, BigInt(768 * MiB));
    expect((await client.storageVolGetInfo(overlay)).capacity).toBe(BigInt(768 * MiB));
    expect((await client.storagePoolListAllVolumes(pool)).map((v) => v.name).sort()).toEqual(['base.qcow2', 'overlay.qcow2']);
  });

  it('deletes volumes', async () => {
    const v = await client.storageVolCreateXml(pool, volumeXml({ name: 'gone.qcow2', capacityBytes: MiB }));
    await client.storageVolDelete(v);
    expect(isVolumeNotFound(await client.storageVolLookupByName(pool, 'gone.qcow2').catch((e: unknown) => e))).toBe(true);
  });
});

describe('domains', () => {
  const name = `vmenv-it-dom-${suffix}`;
  let dom: DomainRef | undefined;

  afterAll(async () => {
    if (!dom) return;
    await client.domainDestroy(dom).catch(() => undefined);
    await client.domainUndefine(dom, DomainUndefineFlags.nvram | DomainUndefineFlags.snapshotsMetadata).catch(() => undefined);
  });

  it('defines, starts, destroys and undefines a qemu domain, with lifecycle events', async () => {
    const events: { name: string; event: number }[] = [];
    const off = await client.onDomainLifecycle(null, (e) => {
      if (e.domain.name === name) events.push({ name: e.domain.name, event: e.event });
    });
    try {
      dom = await client.domainDefineXml(domainXml({ name, type: 'qemu', memoryMiB: 64, vcpus: 1, rng: false, guestAgent: false }));
      await waitFor(events, (e) => e.event === DomainEventType.defined, 10_000, 'defined event');
      expect(dom.id).toBe(-1);
      expect((await client.domainGetState(dom)).state).toBe(DomainState.shutoff);

      const byUuid = await client.domainLookupByUuid(dom.uuid);
      expect(byUuid.name).toBe(name);
      expect(await client.domainGetXmlDesc(dom)).toContain(formatUuid(dom.uuid));

      const running = await client.domainCreate(dom);
      expect(running.id).toBeGreaterThan(0);
      await waitFor(events, (e) => e.event === DomainEventType.started, 30_000, 'started event');
      expect((await client.domainGetState(dom)).state).toBe(DomainState.running);
      expect(await client.domainIsActive(dom)).toBe(true);
      const listed = await client.connectListAllDomains();
      expect(listed.map((d) => d.name)).toContain(name);

      await client.domainSuspend(dom);
      await waitFor(events, (e) => e.event === DomainEventType.suspended, 10_000, 'suspended event');
      expect((await client.domainGetState(dom)).state).toBe(DomainState.paused);
      await client.domainResume(dom);
      await waitFor(events, (e) => e.event === DomainEventType.resumed, 10_000, 'resumed event');

      // A guest with no OS ignores the power button, but libvirt accepts the request.
      await client.domainShutdown(dom, DomainShutdownFlags.acpiPowerButton);

      await client.domainDestroy(dom);
      await waitFor(events, (e) => e.event === DomainEventType.stopped, 10_000, 'stopped event');
      expect((await client.domainGetState(dom)).state).toBe(DomainState.shutoff);

      await client.domainUndefine(dom, DomainUndefineFlags.nvram | DomainUndefineFlags.snapshotsMetadata);
      await waitFor(events, (e) => e.event === DomainEventType.undefined, 10_000, 'undefined event');
      expect(isDomainNotFound(await client.domainLookupByName(name).catch((e: unknown) => e))).toBe(true);
      dom = undefined;
    } finally {
      await off();
    }
  });
});

describe('snapshots, leases and managed save', () => {
  const name = `vmenv-it-snap-${suffix}`;
  const netName = `vmenv-it-snapnet-${suffix}`;
  const third = 100 + ((parseInt(suffix.slice(2, 4), 16) + 50) % 100);
  let pool: StoragePoolRef;
  let disk: StorageVolRef | undefined;
  let dom: DomainRef | undefined;

  afterAll(async () => {
    if (dom) {
      await client.domainDestroy(dom).catch(() => undefined);
      await client.domainUndefine(dom, DomainUndefineFlags.snapshotsMetadata | DomainUndefineFlags.managedSave).catch(() => undefined);
    }
    if (disk) await client.storageVolDelete(disk).catch(() => undefined);
    const net = await client.networkLookupByName(netName).catch(() => undefined);
    if (net) {
      await client.networkDestroy(net).catch(() => undefined);
      await client.networkUndefine(net).catch(() => undefined);
    }
  });

  it('creates, lists, reverts to and deletes snapshots, and reads interface addresses', async () => {
    pool = await client.storagePoolLookupByName(host.pool);
    disk = await client.storageVolCreateXml(pool, volumeXml({ name: `${name}.qcow2`, capacityBytes: 64 * MiB }));
    const net = await client.networkDefineXml(
      networkXml({ name: netName, forward: { mode: 'none' }, ipv4: { address: `10.232.${third}.1`, prefix: 24, dhcp: { range: { start: `10.232.${third}.10`, end: `10.232.${third}.20` } } } }),
    );
    await client.networkCreate(net);
    const mac = '52:54:00:aa:bb:01';
    dom = await client.domainDefineXml(
      domainXml({
        name,
        type: 'qemu',
        memoryMiB: 64,
        vcpus: 1,
        rng: false,
        guestAgent: false,
        disks: [{ source: { kind: 'volume', pool: host.pool, volume: `${name}.qcow2` }, target: 'vda' }],
        interfaces: [{ type: 'network', network: netName, mac }],
      }),
    );

    const first = await client.domainSnapshotCreateXml(dom, `<domainsnapshot><name>first</name></domainsnapshot>`);
    expect(first.name).toBe('first');
    await client.domainSnapshotCreateXml(dom, `<domainsnapshot><name>second</name></domainsnapshot>`);
    expect((await client.domainListAllSnapshots(dom)).map((s) => s.name).sort()).toEqual(['first', 'second']);
    const found = await client.domainSnapshotLookupByName(dom, 'first');
    expect(await client.domainSnapshotGetXmlDesc(found)).toContain('<name>first</name>');
    await client.domainRevertToSnapshot(found);
    await client.domainSnapshotDelete(await client.domainSnapshotLookupByName(dom, 'second'));
    expect((await client.domainListAllSnapshots(dom)).map((s) => s.name)).toEqual(['first']);
    await client.domainSnapshotDelete(found);
    expect(await client.domainListAllSnapshots(dom)).toEqual([]);

    await client.domainCreate(dom);
    // No OS runs, so no lease: the call works and the answer is empty.
    expect(await client.domainInterfaceAddresses(dom, DomainInterfaceAddressSource.lease)).toEqual([]);
    expect(await client.networkGetDhcpLeases(net, mac)).toEqual([]);

    await client.domainManagedSave(dom);
    expect((await client.domainGetState(dom)).state).toBe(DomainState.shutoff);
    expect(await client.domainHasManagedSaveImage(dom)).toBe(true);
    await client.domainCreate(dom); // restores from the saved image
    expect((await client.domainGetState(dom)).state).toBe(DomainState.running);
    expect(await client.domainHasManagedSaveImage(dom)).toBe(false);
    const info = await client.domainGetInfo(dom);
    expect(info.memoryKiB).toBe(64n * 1024n);
    expect(info.vcpus).toBe(1);
    await client.domainDestroy(dom);
  });
});

describe('networks', () => {
  const name = `vmenv-it-net-${suffix}`;
  const third = 100 + (parseInt(suffix.slice(0, 2), 16) % 100);

  it('defines and starts a NAT network and reads its empty DHCP lease list', async () => {
    const net = await client.networkDefineXml(
      networkXml({
        name,
        forward: { mode: 'nat' },
        ipv4: { address: `10.231.${third}.1`, prefix: 24, dhcp: { range: { start: `10.231.${third}.10`, end: `10.231.${third}.99` } } },
      }),
    );
    try {
      await client.networkCreate(net);
      expect(await client.networkIsActive(net)).toBe(true);
      expect((await client.connectListAllNetworks()).map((n) => n.name)).toContain(name);
      expect(await client.networkGetBridgeName(net)).toMatch(/^virbr\d+$/);
      expect(await client.networkGetXmlDesc(net)).toContain(`10.231.${third}.1`);
      expect(await client.networkGetDhcpLeases(net)).toEqual([]);
      expect(await client.networkGetDhcpLeases(net, '52:54:00:12:34:56')).toEqual([]);
      await client.networkDestroy(net);
      expect(await client.networkIsActive(net)).toBe(false);
    } finally {
      await client.networkDestroy(net).catch(() => undefined);
      await client.networkUndefine(net);
    }
    expect(isNetworkNotFound(await client.networkLookupByName(name).catch((e: unknown) => e))).toBe(true);
  });
});
