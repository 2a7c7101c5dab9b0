/**
 * Documents generated from many specs (every option and variant) pass libvirt 9.0's
 * RNG schemas, checked with virt-xml-validate.
 */
import { describe, expect, it } from 'vitest';
import { domainXml, networkXml, poolXml, volumeXml } from '../../../src/libvirt/xml/index.js';
import type { CpuSpec, DiskSpec, DomainSpec, InterfaceSpec, NetworkSpec, VolumeSpec } from '../../../src/libvirt/xml/index.js';
import { parseWithLibvirt, validateXml } from './helpers.js';
import * as specs from './specs.js';

const base: DomainSpec = { name: 'vmenv-schema', type: 'qemu', memoryMiB: 256, vcpus: 1 };

const disks: Record<string, DiskSpec[]> = {
  'virtio file qcow2': [{ source: { kind: 'file', path: '/d.qcow2' }, target: 'vda' }],
  'sata raw readonly': [{ source: { kind: 'file', path: '/d.raw' }, bus: 'sata', target: 'sda', format: 'raw', readonly: true }],
  'scsi volume': [{ source: { kind: 'volume', pool: 'p', volume: 'v' }, bus: 'scsi', target: 'sda', cache: 'writeback', discard: 'ignore' }],
  'ide disk and cdrom': [
    { source: { kind: 'file', path: '/d' }, bus: 'ide', target: 'hda', bootOrder: 2 },
    { source: { kind: 'volume', pool: 'p', volume: 'seed.iso' }, device: 'cdrom', bus: 'ide', target: 'hdc', bootOrder: 1 },
  ],
  'empty cdrom on scsi': [{ device: 'cdrom', bus: 'scsi', target: 'sdb' }],
};

const nics: Record<string, InterfaceSpec[]> = {
  network: [{ type: 'network', network: 'default', mac: '52:54:00:00:00:01', mtu: 1400, bootOrder: 1 }],
  bridge: [{ type: 'bridge', bridge: 'br0', model: 'rtl8139' }],
  'direct each mode': [
    { type: 'direct', dev: 'eth0', mode: 'bridge' },
    { type: 'direct', dev: 'eth1', mode: 'vepa' },
    { type: 'direct', dev: 'eth2', mode: 'private' },
    { type: 'direct', dev: 'eth3', mode: 'passthrough', model: 'e1000e' },
  ],
  'user plain': [{ type: 'user', mac: '52:54:00:00:00:02', mtu: 1500 }],
  'user with forwards (two NICs)': [
    { type: 'user', model: 'e1000', bootOrder: 1, portForwards: [{ hostPort: 2222, guestPort: 22 }, { protocol: 'udp', hostAddress: '0.0.0.0', hostPort: 5353, guestPort: 53 }] },
    { type: 'user', portForwards: [{ hostPort: 8080, guestPort: 80 }] },
  ],
};

const cpus: Record<string, [DomainSpec['type'], CpuSpec | undefined]> = {
  'kvm default': ['kvm', undefined],
  'kvm host-model': ['kvm', { mode: 'host-model' }],
  'qemu default': ['qemu', undefined],
  'qemu maximum': ['qemu', { mode: 'maximum' }],
  'qemu custom': ['qemu', { mode: 'custom', model: 'qemu64' }],
};

const domainVariants: Record<string, DomainSpec> = {
  minimal: base,
  session: specs.sessionDomain,
  'kvm q35': specs.kvmQ35Domain,
  'uefi auto': specs.uefiAutoDomain,
  'uefi auto without secure boot, nvram path': {
    ...base,
    firmware: { type: 'uefi', secureBoot: false, nvram: '/var/lib/vmenv/VARS.fd' },
  },
  'uefi auto, libvirt decides': { ...base, machine: 'q35', firmware: { type: 'uefi' } },
  'uefi loader only, secure': {
    ...base,
    machine: 'q35',
    firmware: { type: 'uefi', loader: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', secureBoot: true },
  },
  'bios explicit': { ...base, firmware: { type: 'bios' } },
  'no agent, no rng, no serial log': { ...base, guestAgent: false, rng: false, serial: {} },
  'shared memory without virtiofs': { ...base, sharedMemory: true },
  '9p each access mode': {
    ...base,
    filesystems: [
      { driver: '9p', source: '/a', target: 'a', accessMode: 'mapped' },
      { driver: '9p', source: '/b', target: 'b', accessMode: 'passthrough' },
      { driver: '9p', source: '/c', target: 'c', accessMode: 'squash', readonly: true },
    ],
  },
  'lifecycle actions': { ...base, onPoweroff: 'rename-restart', onReboot: 'preserve', onCrash: 'coredump-restart' },
  'vnc on another loopback address': { ...base, graphics: { type: 'vnc', listen: '127.0.0.2', port: 65535 } },
  'graphics none explicit': { ...base, graphics: { type: 'none' } },
  'metadata without box': { ...base, metadata: { projectPath: '/p', machine: 'm' } },
  ...Object.fromEntries(Object.entries(disks).map(([k, d]) => [`disks: ${k}`, { ...base, disks: d }])),
  ...Object.fromEntries(Object.entries(nics).map(([k, n]) => [`interfaces: ${k}`, { ...base, interfaces: n }])),
  ...Object.fromEntries(Object.entries(cpus).map(([k, [type, cpu]]) => [`cpu: ${k}`, { ...base, type, ...(cpu ? { cpu } : {}) }])),
};

const networkVariants: Record<string, NetworkSpec> = {
  minimal: { name: 'n', forward: { mode: 'none' } },
  'nat default': { name: 'n1', ipv4: { address: '192.168.200.1', prefix: 24 } },
  nat: specs.natNetwork,
  isolated: specs.isolatedNetwork,
  routed: specs.routedNetwork,
  open: { name: 'o', forward: { mode: 'open' }, bridge: { name: 'vmenv-open0' }, ipv4: { address: '10.1.2.1', prefix: 24 } },
  'nat with dev and range only': {
    name: 'n2',
    forward: { mode: 'nat', dev: 'enp0s3' },
    ipv4: { address: '10.0.0.1', prefix: 8, dhcp: { range: { start: '10.0.0.2', end: '10.0.255.254' } } },
  },
  'dhcp without range or hosts': { name: 'n3', ipv4: { address: '192.168.5.1', prefix: 30, dhcp: {} } },
};

const volumeVariants: Record<string, VolumeSpec> = {
  overlay: specs.overlayVolume,
  raw: specs.rawVolume,
  'raw backing store': { name: 'o.qcow2', capacityBytes: 5, backingStore: { path: '/b.raw', format: 'raw' } },
  'permissions mode only': { name: 'm', capacityBytes: 1, permissions: { mode: 0 } },
};

describe('generated domains validate', () => {
  it.each(Object.entries(domainVariants))('%s', (_name, spec) => {
    expect(validateXml(domainXml(spec), 'domain')).toContain('validates');
  });
});

describe('generated networks validate', () => {
  it.each(Object.entries(networkVariants))('%s', (_name, spec) => {
    expect(validateXml(networkXml(spec), 'network')).toContain('validates');
  });
});

describe('generated volumes and pools validate', () => {
  it.each(Object.entries(volumeVariants))('volume %s', (_name, spec) => {
    expect(validateXml(volumeXml(spec), 'storagevol')).toContain('validates');
  });
  it.each([specs.dirPool, specs.dirPoolWithPermissions, { name: 'p', path: '/p', permissions: { owner: 0 } }])('pool %#', (spec) => {
    expect(validateXml(poolXml(spec), 'storagepool')).toContain('validates');
  });
});

describe("libvirt's own parser (test driver) accepts the generated documents", () => {
  it.each(Object.entries(domainVariants))('domain %s', (_name, spec) => {
    parseWithLibvirt(domainXml(spec), 'domain');
  });
  it.each(Object.entries(networkVariants))('network %s', (_name, spec) => {
    parseWithLibvirt(networkXml(spec), 'network');
  });
  it.each(Object.entries(volumeVariants))('volume %s', (_name, spec) => {
    parseWithLibvirt(volumeXml(spec), 'storagevol');
  });
  it('pools', () => {
    parseWithLibvirt(poolXml(specs.dirPool), 'storagepool');
    parseWithLibvirt(poolXml(specs.dirPoolWithPermissions), 'storagepool');
  });
});

describe('the validator itself', () => {
  it('rejects an invalid document (so passing means something)', () => {
    expect(() => validateXml("<domain type='qemu'><name>x</name><bogus/></domain>\n", 'domain')).toThrow(/rejected/);
    expect(() => validateXml("<domain type='vmenv'><name>x</name></domain>\n", 'domain')).toThrow(/rejected/);
    expect(() => validateXml("<network><name>n</name><forward mode='bogus'/></network>\n", 'network')).toThrow(/rejected/);
  });

  it("libvirt's parser rejects what the schema lets through (why vmenv emits no passt backend)", () => {
    const passt =
      "<domain type='qemu'><name>p</name><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>" +
      "<devices><interface type='user'><backend type='passt'/></interface></devices></domain>\n";
    expect(validateXml(passt, 'domain')).toContain('validates');
    expect(() => parseWithLibvirt(passt, 'domain')).toThrow(/passt/);
    expect(() => validateXml("<volume><name>x</name><target><format type='qcow2'/></target><bogus/></volume>\n", 'storagevol')).toThrow(/rejected/);
  });
});
