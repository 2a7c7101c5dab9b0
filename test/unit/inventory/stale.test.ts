import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LibvirtClient } from '../../../src/libvirt/client.js';
import type { DomainRef, NetworkRef, StoragePoolRef, StorageVolRef } from '../../../src/libvirt/protocol/types.js';
import { domainXml } from '../../../src/libvirt/xml/index.js';
import {
  domainNetworks,
  findStale,
  parseMachineVolumeName,
  parseVmenvMetadata,
  readInventory,
  readLiveness,
  volumeMtimeMs,
  type Inventory,
  type Liveness,
} from '../../../src/inventory/stale.js';
import { registerMachine } from '../../../src/project/machine-index.js';
import { machineResourceName, machineVolumeNames } from '../../../src/project/names.js';
import { newMachineState, ProjectState } from '../../../src/project/state.js';

describe('reading what vmenv made', () => {
  it("reads vmenv's metadata from a domain's XML as the builder writes it, escapes undone", () => {
    const xml = domainXml({
      name: 'x_web_00000000',
      type: 'qemu',
      memoryMiB: 64,
      vcpus: 1,
      interfaces: [{ type: 'network', network: 'vmenv', mac: '52:54:00:00:00:01' }],
      metadata: { projectPath: '/home/me/R&D <new>', machine: 'web', box: 'tiny' },
    });
    expect(parseVmenvMetadata(xml)).toEqual({ projectPath: '/home/me/R&D <new>', machine: 'web', box: 'tiny' });
    expect(domainNetworks(xml)).toEqual(['vmenv']);
  });

  it('reads the metadata whatever prefix libvirt gives the namespace, and ignores other metadata', () => {
    const xml = `<domain><name>d</name><metadata><other:x xmlns:other="urn:x"><other:project>/nope</other:project></other:x><v:machine xmlns:v="https://vmenv.dev/xmlns/domain/1"><v:project>/srv/p</v:project><v:name>db</v:name></v:machine></metadata></domain>`;
    expect(parseVmenvMetadata(xml)).toEqual({ projectPath: '/srv/p', machine: 'db' });
    expect(parseVmenvMetadata('<domain><name>d</name></domain>')).toBeUndefined();
    expect(parseVmenvMetadata('<domain><metadata><other:x xmlns:other="urn:x"/></metadata></domain>')).toBeUndefined();
  });

  it('recognises machine volumes by name, never box volumes', () => {
    const rn = machineResourceName('/home/me/my shop.v2', 'web-1');
    const names = machineVolumeNames(rn);
    expect(parseMachineVolumeName(names.root)).toEqual({ resourceName: rn, role: 'root' });
    expect(parseMachineVolumeName(names.seed)).toEqual({ resourceName: rn, role: 'seed' });
    expect(parseMachineVolumeName(names.disk(3))).toEqual({ resourceName: rn, role: 'disk' });
    expect(parseMachineVolumeName(names.disk(0, 'data_1-x'))).toEqual({ resourceName: rn, role: 'disk' });
    expect(parseMachineVolumeName(names.disk(0, 'x'.repeat(63)))).toEqual({ resourceName: rn, role: 'disk' });
    expect(parseMachineVolumeName(`${rn}-disk-Data.qcow2`)).toBeUndefined();
    expect(parseMachineVolumeName(`${rn}-disk-.qcow2`)).toBeUndefined();
    expect(parseMachineVolumeName(names.boxDisk(1))).toEqual({ resourceName: rn, role: 'box-disk' });
    expect(parseMachineVolumeName('vmenv-box_tiny_1.0.0_1_0123456789.raw')).toBeUndefined();
    expect(parseMachineVolumeName('vmenv-box_tiny_1.0.0_0_0123456789.qcow2')).toBeUndefined();
    expect(parseMachineVolumeName('vmenv-box_a_b_c_01234567.qcow2')).toBeUndefined();
    expect(parseMachineVolumeName('debian12.qcow2')).toBeUndefined();
    expect(parseMachineVolumeName(`${rn}.img`)).toBeUndefined();
  });

  it("reads a volume's mtime", () => {
    expect(volumeMtimeMs("<volume><target><timestamps><atime>1.5</atime><mtime>1700000000.250000000</mtime></timestamps></target></volume>")).toBe(1_700_000_000_250);
    expect(volumeMtimeMs('<volume/>')).toBeUndefined();
  });
});

const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;

function inventory(over: Partial<Inventory> = {}): Inventory {
  return {
    uri: 'qemu:///system',
    local: true,
    readAt: NOW,
    domains: [
      { name: 'gone_web_11111111', uuid: 'u1', active: true, mark: { projectPath: '/gone', machine: 'web' }, networks: ['vmenv'] },
      { name: 'live_web_22222222', uuid: 'u2', active: false, mark: { projectPath: '/live', machine: 'web' }, networks: ['shared'] },
      { name: 'foreign', uuid: 'u3', active: true, networks: ['vmenv-foreign'] },
    ],
    volumes: [
      { pool: 'default', name: 'gone_web_11111111.qcow2', resourceName: 'gone_web_11111111', role: 'root', mtimeMs: NOW },
      { pool: 'default', name: 'live_web_22222222.qcow2', resourceName: 'live_web_22222222', role: 'root', mtimeMs: NOW - HOUR },
      { pool: 'default', name: 'orphan_db_33333333-disk0.qcow2', resourceName: 'orphan_db_33333333', role: 'disk', mtimeMs: NOW - HOUR },
      { pool: 'default', name: 'fresh_db_44444444.qcow2', resourceName: 'fresh_db_44444444', role: 'root', mtimeMs: NOW - 60_000 },
      { pool: 'default', name: 'making_db_55555555.qcow2', resourceName: 'making_db_55555555', role: 'root', mtimeMs: NOW - HOUR },
      { pool: 'default', name: 'foreign.qcow2', resourceName: 'foreign', role: 'root' },
    ],
    networks: [
      { name: 'vmenv', active: true },
      { name: 'shared', active: true },
      { name: 'unused', active: false },
      { name: 'being-made', active: true },
      { name: 'vmenv-foreign', active: true },
    ],
    ...over,
  };
}

function liveness(over: Partial<Liveness> = {}): Liveness {
  return {
    domains: new Map([
      ['gone_web_11111111', 'project folder is gone'],
      ['live_web_22222222', undefined],
    ]),
    liveVolumes: new Set(['default/making_db_55555555.qcow2']),
    liveNetworks: new Set(['being-made']),
    indexed: new Set(),
    ...over,
  };
}

describe('findStale', () => {
  it("judges domains by their project, volumes by their domain, networks by who uses them", () => {
    const s = findStale(inventory(), liveness(), NOW);
    expect(s.domains).toEqual([{ name: 'gone_web_11111111', uuid: 'u1', projectPath: '/gone', machine: 'web', active: true, reason: 'project folder is gone (/gone)' }]);
    expect(s.volumes).toEqual([
      { pool: 'default', name: 'gone_web_11111111.qcow2', resourceName: 'gone_web_11111111', reason: 'its domain gone_web_11111111 is stale' },
      { pool: 'default', name: 'orphan_db_33333333-disk0.qcow2', resourceName: 'orphan_db_33333333', reason: 'no domain orphan_db_33333333' },
    ]);
    expect(s.networks).toEqual([
      { name: 'vmenv', reason: 'only stale domains use it (gone_web_11111111)' },
      { name: 'unused', reason: 'no machine uses it' },
    ]);
    // The fresh orphan may be an `up` under way: kept, and said so.
    expect(s.kept).toEqual([expect.stringMatching(/^volume default\/fresh_db_44444444.qcow2: no domain fresh_db_44444444, but it changed 60 s ago/)]);
  });

  it('never judges a domain without vmenv metadata, nor the volumes named after it', () => {
    const s = findStale(inventory(), liveness(), NOW);
    expect([...s.domains, ...s.volumes].map((x) => x.name).join()).not.toContain('foreign');
    expect(s.networks.map((n) => n.name)).not.toContain('vmenv-foreign');
  });

  it('keeps everything of a libvirt on another host that this host did not make', () => {
    const remote = findStale(inventory({ local: false }), liveness(), NOW);
    expect(remote.domains).toEqual([]);
    expect(remote.volumes).toEqual([]);
    expect(remote.kept.some((k) => k.startsWith('domain gone_web_11111111: /gone is not on this host'))).toBe(true);
    const indexed = findStale(inventory({ local: false }), liveness({ indexed: new Set(['gone_web_11111111']) }), NOW);
    expect(indexed.domains.map((d) => d.name)).toEqual(['gone_web_11111111']);
    expect(indexed.volumes.map((v) => v.name)).toEqual(['gone_web_11111111.qcow2']);
  });

  it('finds nothing when every project is live', () => {
    const s = findStale(inventory({ volumes: [], networks: [{ name: 'vmenv', active: true }] }), liveness({ domains: new Map([['gone_web_11111111', undefined]]) }), NOW);
    expect(s).toEqual({ uri: 'qemu:///system', domains: [], volumes: [], networks: [], kept: [] });
  });
});

/** A libvirt with one vmenv domain, its root volume, an orphan volume, and one vmenv network; records the calls asked. */
function fakeLibvirt(projectPath = '/live'): { client: LibvirtClient; calls: string[] } {
  const calls: string[] = [];
  const uuid = Buffer.alloc(16, 1);
  const domain: DomainRef = { name: 'live_web_22222222', uuid, id: -1 };
  const pool: StoragePoolRef = { name: 'default', uuid };
  const vol = (name: string): StorageVolRef => ({ pool: 'default', name, key: `/pool/${name}` });
  const network: NetworkRef = { name: 'vmenv-net', uuid };
  const fake = {
    uri: 'qemu:///system',
    connectListAllDomains: async () => [domain],
    domainGetXmlDesc: async () =>
      `<domain><metadata><v:machine xmlns:v="https://vmenv.dev/xmlns/domain/1"><v:project>${projectPath}</v:project><v:name>web</v:name></v:machine></metadata></domain>`,
    domainIsActive: async () => false,
    connectListAllStoragePools: async () => [pool],
    storagePoolIsActive: async () => true,
    storagePoolListAllVolumes: async () => [vol('live_web_22222222.qcow2'), vol('orphan_db_33333333.qcow2'), vol('debian12.qcow2')],
    storageVolGetXmlDesc: async (v: StorageVolRef) => {
      calls.push(`storageVolGetXmlDesc ${v.name}`);
      return '<volume><target><timestamps><mtime>1700000000</mtime></timestamps></target></volume>';
    },
    connectListAllNetworks: async () => [network],
    networkGetXmlDesc: async () => "<network><name>vmenv-net</name><bridge name='vmenv-0123abcd'/></network>",
    networkIsActive: async () => {
      calls.push('networkIsActive');
      return true;
    },
  };
  return { client: fake as unknown as LibvirtClient, calls };
}

describe('readInventory', () => {
  it("reads the mtime of orphan volumes only, on this host only, and asks nothing it does not use", async () => {
    const { client, calls } = fakeLibvirt();
    const inv = await readInventory(client, true);
    expect(inv.domains.map((d) => d.name)).toEqual(['live_web_22222222']);
    expect(inv.volumes).toEqual([
      { pool: 'default', name: 'live_web_22222222.qcow2', resourceName: 'live_web_22222222', role: 'root' },
      { pool: 'default', name: 'orphan_db_33333333.qcow2', resourceName: 'orphan_db_33333333', role: 'root', mtimeMs: 1_700_000_000_000 },
    ]);
    expect(inv.networks).toEqual([{ name: 'vmenv-net' }]);
    expect(calls).toEqual(['storageVolGetXmlDesc orphan_db_33333333.qcow2']);

    const remote = fakeLibvirt();
    const far = await readInventory(remote.client, false);
    expect(far.volumes.every((v) => v.mtimeMs === undefined)).toBe(true);
    expect(remote.calls).toEqual([]);
  });
});

describe('readLiveness', () => {
  const root = mkdtempSync(join(tmpdir(), 'vmenv-stale-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("judges each project once: the live one's state gives its volumes and networks, the machine index's stale entries are listed", async () => {
    const home = join(root, 'home');
    const live = join(root, 'live');
    mkdirSync(live, { recursive: true });
    writeFileSync(join(live, 'vmenv.yaml'), 'box: tiny\n');
    const state = newMachineState({ machine: 'web', uri: 'qemu:///system', pool: 'default', ssh: { username: 'u', privateKeyPath: '/k' }, nics: [{ mode: 'nat', network: 'vmenv-net', mac: '52:54:00:00:00:01' }] });
    state.volumes.push({ pool: 'default', name: 'live_web_22222222.qcow2', role: 'root' });
    await new ProjectState(live).write(state);
    const entry = (id: string, project: string, machine: string) => ({ id, project, machine, box: { name: 'tiny', version: '1' }, uri: 'qemu:///system', domain: `${id}_dom` });
    await registerMachine(entry('a', live, 'web'), { home });
    await registerMachine(entry('b', join(root, 'gone'), 'db'), { home });
    await registerMachine(entry('c', live, 'never-made'), { home });

    const inv = await readInventory(fakeLibvirt(live).client, true);
    const { live: found, staleIndex } = await readLiveness(inv, { home });
    expect(found.domains.get('live_web_22222222')).toBeUndefined();
    expect(found.domains.has('live_web_22222222')).toBe(true);
    expect([...found.liveVolumes]).toEqual(['default/live_web_22222222.qcow2']);
    expect([...found.liveNetworks]).toEqual(['vmenv-net']);
    expect(found.indexed).toEqual(new Set(['a_dom', 'b_dom', 'c_dom']));
    expect(staleIndex).toEqual([
      { machine: 'db', project: join(root, 'gone'), reason: 'project folder is gone' },
      { machine: 'never-made', project: live, reason: 'machine state is gone' },
    ]);
  });
});
