import { describe, expect, it } from 'vitest';
import { domainXml } from '../../../src/libvirt/xml/index.js';
import {
  domainNetworks,
  findStale,
  parseMachineVolumeName,
  parseVmenvMetadata,
  volumeMtimeMs,
  type Inventory,
  type Liveness,
} from '../../../src/machine/stale.js';
import { machineResourceName, machineVolumeNames } from '../../../src/project/names.js';

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
