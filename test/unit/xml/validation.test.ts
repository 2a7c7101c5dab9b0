/** Invalid specs are refused with an XmlSpecError that names the field. */
import { describe, expect, it } from 'vitest';
import { XmlSpecError, domainXml, networkXml, poolXml, volumeXml } from '../../../src/libvirt/xml/index.js';
import type { DomainSpec, NetworkSpec, VolumeSpec } from '../../../src/libvirt/xml/index.js';
import { ExitCode } from '../../../src/errors.js';
import { kvmQ35Domain, natNetwork, sessionDomain } from './specs.js';

function specError(fn: () => unknown): XmlSpecError {
  try {
    fn();
  } catch (e) {
    if (e instanceof XmlSpecError) return e;
    throw new Error(`expected an XmlSpecError, got ${String(e)}`);
  }
  throw new Error('expected an XmlSpecError, nothing was thrown');
}

const base: DomainSpec = { name: 'm', type: 'qemu', memoryMiB: 512, vcpus: 1 };

describe('domain spec validation', () => {
  it.each<[string, Partial<DomainSpec>, string, RegExp?]>([
    ['empty name', { name: '' }, 'name'],
    ['slash in name', { name: 'a/b' }, 'name'],
    ['padded name', { name: ' a' }, 'name'],
    ['bad uuid', { uuid: 'not-a-uuid' }, 'uuid'],
    ['zero memory', { memoryMiB: 0 }, 'memoryMiB'],
    ['fractional memory', { memoryMiB: 1.5 }, 'memoryMiB'],
    ['negative vcpus', { vcpus: -1 }, 'vcpus'],
    ['zero vcpus', { vcpus: 0 }, 'vcpus'],
    ['bad machine', { machine: 'q35;rm' }, 'machine'],
    ['unknown type', { type: 'xen' as 'kvm' }, 'type'],
    ['host-passthrough under TCG', { cpu: { mode: 'host-passthrough' } }, 'cpu.mode', /KVM/],
    ['bad cpu model', { cpu: { mode: 'custom', model: 'a b' } }, 'cpu.model'],
    ['secure boot on pc', { firmware: { type: 'uefi', secureBoot: true } }, 'firmware.secureBoot', /q35/],
    ['nvram template without loader', { firmware: { type: 'uefi', nvramTemplate: '/x.fd' } }, 'firmware.nvramTemplate'],
    ['relative loader', { firmware: { type: 'uefi', loader: 'OVMF.fd' } }, 'firmware.loader'],
    ['disk without source', { disks: [{ target: 'vda' }] }, 'disks[0].source'],
    ['relative disk path', { disks: [{ source: { kind: 'file', path: 'disk.qcow2' }, target: 'vda' }] }, 'disks[0].source.path'],
    ['target not matching bus', { disks: [{ source: { kind: 'file', path: '/d' }, target: 'sda' }] }, 'disks[0].target', /vda/],
    ['ide on q35', { machine: 'q35', disks: [{ source: { kind: 'file', path: '/d' }, bus: 'ide', target: 'hda' }] }, 'disks[0].bus', /IDE/],
    ['virtio cdrom', { disks: [{ device: 'cdrom', bus: 'virtio', target: 'vda' }] }, 'disks[0].bus'],
    ['bad format', { disks: [{ source: { kind: 'file', path: '/d' }, target: 'vda', format: 'vmdk' as 'raw' }] }, 'disks[0].format'],
    ['bad serial', { disks: [{ source: { kind: 'file', path: '/d' }, target: 'vda', serial: 'a/b' }] }, 'disks[0].serial'],
    [
      'duplicate target',
      { disks: [{ source: { kind: 'file', path: '/a' }, target: 'vda' }, { source: { kind: 'file', path: '/b' }, target: 'vda' }] },
      'disks[1].target',
      /disks\[0\]\.target/,
    ],
    [
      'duplicate boot order',
      {
        disks: [{ source: { kind: 'file', path: '/a' }, target: 'vda', bootOrder: 1 }],
        interfaces: [{ type: 'network', network: 'n', bootOrder: 1 }],
      },
      'interfaces[0].bootOrder',
      /disks\[0\]\.bootOrder/,
    ],
    ['zero boot order', { disks: [{ source: { kind: 'file', path: '/a' }, target: 'vda', bootOrder: 0 }] }, 'disks[0].bootOrder'],
    ['malformed MAC', { interfaces: [{ type: 'network', network: 'n', mac: '52:54:00:zz:00:01' }] }, 'interfaces[0].mac'],
    ['short MAC', { interfaces: [{ type: 'network', network: 'n', mac: '52:54:00:00:01' }] }, 'interfaces[0].mac'],
    ['multicast MAC', { interfaces: [{ type: 'network', network: 'n', mac: '01:00:5e:00:00:01' }] }, 'interfaces[0].mac', /multicast/],
    [
      'duplicate MAC (any case)',
      {
        interfaces: [
          { type: 'network', network: 'n', mac: '52:54:00:ab:00:01' },
          { type: 'user', mac: '52:54:00:AB:00:01' },
        ],
      },
      'interfaces[1].mac',
    ],
    ['bad bridge name', { interfaces: [{ type: 'bridge', bridge: 'a-very-long-bridge-name' }] }, 'interfaces[0].bridge'],
    ['bad direct mode', { interfaces: [{ type: 'direct', dev: 'eth0', mode: 'nat' as 'vepa' }] }, 'interfaces[0].mode'],
    ['bad nic model', { interfaces: [{ type: 'network', network: 'n', model: 'ne2k' as 'virtio' }] }, 'interfaces[0].model'],
    ['bad mtu', { interfaces: [{ type: 'network', network: 'n', mtu: 10 }] }, 'interfaces[0].mtu'],
    [
      'mtu on a forwarded user NIC',
      { interfaces: [{ type: 'user', mtu: 1400, portForwards: [{ hostPort: 2222, guestPort: 22 }] }] },
      'interfaces[0].mtu',
    ],
    ['port out of range', { interfaces: [{ type: 'user', portForwards: [{ hostPort: 70000, guestPort: 22 }] }] }, 'interfaces[0].portForwards[0].hostPort'],
    ['bad host address', { interfaces: [{ type: 'user', portForwards: [{ hostAddress: 'localhost', hostPort: 1, guestPort: 22 }] }] }, 'interfaces[0].portForwards[0].hostAddress'],
    [
      'same host port twice',
      {
        interfaces: [
          { type: 'user', portForwards: [{ hostPort: 2222, guestPort: 22 }] },
          { type: 'user', portForwards: [{ hostPort: 2222, guestPort: 80 }] },
        ],
      },
      'interfaces[1].portForwards[0].hostPort',
    ],
    ['relative share', { filesystems: [{ driver: '9p', source: 'proj', target: 't' }] }, 'filesystems[0].source'],
    ['bad mount tag', { filesystems: [{ driver: '9p', source: '/p', target: 'a b' }] }, 'filesystems[0].target'],
    ['bad access mode', { filesystems: [{ driver: '9p', source: '/p', target: 't', accessMode: 'none' as 'mapped' }] }, 'filesystems[0].accessMode'],
    [
      'duplicate mount tag',
      { filesystems: [{ driver: '9p', source: '/p', target: 't' }, { driver: '9p', source: '/q', target: 't' }] },
      'filesystems[1].target',
    ],
    ['virtiofs without shared memory', { filesystems: [{ driver: 'virtiofs', source: '/p', target: 't' }], sharedMemory: false }, 'sharedMemory'],
    ['vnc port below 5900', { graphics: { type: 'vnc', port: 22 } }, 'graphics.port'],
    ['vnc on a hostname', { graphics: { type: 'vnc', listen: 'localhost' } }, 'graphics.listen'],
    ['bad lifecycle action', { onReboot: 'coredump-restart' as 'restart' }, 'onReboot'],
    ['relative serial log', { serial: { logFile: 'console.log' } }, 'serial.logFile'],
    ['relative project path', { metadata: { projectPath: 'proj', machine: 'default' } }, 'metadata.projectPath'],
    ['empty machine name', { metadata: { projectPath: '/p', machine: '' } }, 'metadata.machine'],
    ['empty qemu arg', { qemuArgs: [''] }, 'qemuArgs[0]'],
  ])('%s', (_label, patch, field, message) => {
    const err = specError(() => domainXml({ ...base, ...patch }));
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
    expect(err.exitCode).toBe(ExitCode.usage);
    if (message !== undefined) expect(err.message + (err.hint ?? '')).toMatch(message);
  });

  it('a virtiofs read-only share is refused (libvirt 9.0 cannot do it)', () => {
    const fs = { driver: 'virtiofs', source: '/p', target: 't', readonly: true } as unknown as { driver: 'virtiofs'; source: string; target: string };
    expect(specError(() => domainXml({ ...base, filesystems: [fs] })).field).toBe('filesystems[0].readonly');
  });

  it('the representative specs pass', () => {
    expect(() => domainXml(sessionDomain)).not.toThrow();
    expect(() => domainXml(kvmQ35Domain)).not.toThrow();
  });
});

describe('network spec validation', () => {
  const ip = natNetwork.ipv4!;
  it.each<[string, Partial<NetworkSpec>, string]>([
    ['empty name', { name: '' }, 'name'],
    ['nat without ipv4', { ipv4: undefined }, 'ipv4'],
    ['open without ipv4', { forward: { mode: 'open' }, ipv4: undefined }, 'ipv4'],
    ['range too large', { ipv4: { address: '10.0.0.1', prefix: 8, dhcp: { range: { start: '10.0.0.2', end: '10.1.0.2' } } } }, 'ipv4.dhcp.range'],
    ['bad mode', { forward: { mode: 'bridge' as 'nat' } }, 'forward.mode'],
    ['dev on isolated', { forward: { mode: 'none', dev: 'eth0' } }, 'forward.dev'],
    ['bad bridge name', { bridge: { name: 'bridge name' } }, 'bridge.name'],
    ['bad delay', { bridge: { delay: -1 } }, 'bridge.delay'],
    ['bad domain', { domain: { name: 'a b' } }, 'domain.name'],
    ['bad mtu', { mtu: 0 }, 'mtu'],
    ['bad MAC', { mac: 'ff:ff:ff:ff:ff:ff' }, 'mac'],
    ['bad address', { ipv4: { ...ip, address: '192.168.121' } }, 'ipv4.address'],
    ['leading zero address', { ipv4: { ...ip, address: '192.168.121.01' } }, 'ipv4.address'],
    ['network address', { ipv4: { address: '192.168.121.0', prefix: 24 } }, 'ipv4.address'],
    ['prefix too long', { ipv4: { ...ip, prefix: 31 } }, 'ipv4.prefix'],
    ['range outside', { ipv4: { ...ip, dhcp: { range: { start: '192.168.121.10', end: '192.168.122.10' } } } }, 'ipv4.dhcp.range.end'],
    ['range on broadcast', { ipv4: { ...ip, dhcp: { range: { start: '192.168.121.10', end: '192.168.121.255' } } } }, 'ipv4.dhcp.range.end'],
    ['range reversed', { ipv4: { ...ip, dhcp: { range: { start: '192.168.121.20', end: '192.168.121.10' } } } }, 'ipv4.dhcp.range'],
    ['range with gateway', { ipv4: { address: '192.168.121.100', prefix: 24, dhcp: { range: { start: '192.168.121.10', end: '192.168.121.200' } } } }, 'ipv4.dhcp.range'],
    ['host outside', { ipv4: { ...ip, dhcp: { hosts: [{ mac: '52:54:00:00:00:01', ip: '10.0.0.2' }] } } }, 'ipv4.dhcp.hosts[0].ip'],
    ['host on gateway', { ipv4: { ...ip, dhcp: { hosts: [{ mac: '52:54:00:00:00:01', ip: '192.168.121.1' }] } } }, 'ipv4.dhcp.hosts[0].ip'],
    ['host bad name', { ipv4: { ...ip, dhcp: { hosts: [{ mac: '52:54:00:00:00:01', ip: '192.168.121.2', name: '1web' }] } } }, 'ipv4.dhcp.hosts[0].name'],
    [
      'duplicate host ip',
      {
        ipv4: {
          ...ip,
          dhcp: {
            hosts: [
              { mac: '52:54:00:00:00:01', ip: '192.168.121.2' },
              { mac: '52:54:00:00:00:02', ip: '192.168.121.2' },
            ],
          },
        },
      },
      'ipv4.dhcp.hosts[1].ip',
    ],
    [
      'duplicate host mac',
      {
        ipv4: {
          ...ip,
          dhcp: {
            hosts: [
              { mac: '52:54:00:00:00:01', ip: '192.168.121.2' },
              { mac: '52:54:00:00:00:01', ip: '192.168.121.3' },
            ],
          },
        },
      },
      'ipv4.dhcp.hosts[1].mac',
    ],
  ])('%s', (_label, patch, field) => {
    expect(specError(() => networkXml({ ...natNetwork, ...patch })).field).toBe(field);
  });
});

describe('volume and pool spec validation', () => {
  const vol: VolumeSpec = { name: 'v.qcow2', capacityBytes: 1024 };
  it.each<[string, Partial<VolumeSpec>, string]>([
    ['empty name', { name: '' }, 'name'],
    ['slash in name', { name: 'a/b' }, 'name'],
    ['dot name', { name: '..' }, 'name'],
    ['zero capacity', { capacityBytes: 0 }, 'capacityBytes'],
    ['fractional capacity', { capacityBytes: 1.5 }, 'capacityBytes'],
    ['unsafe number capacity', { capacityBytes: 2 ** 60 }, 'capacityBytes'],
    ['negative bigint capacity', { capacityBytes: -1n }, 'capacityBytes'],
    ['allocation above capacity', { allocationBytes: 2048 }, 'allocationBytes'],
    ['bad format', { format: 'vmdk' as 'raw' }, 'format'],
    ['backing store on raw', { format: 'raw', backingStore: { path: '/b', format: 'qcow2' } }, 'backingStore'],
    ['relative backing path', { backingStore: { path: 'b.img', format: 'qcow2' } }, 'backingStore.path'],
    ['mode out of range', { permissions: { mode: 0o17777 } }, 'permissions.mode'],
    ['empty permissions', { permissions: {} }, 'permissions'],
    ['negative owner', { permissions: { owner: -1 } }, 'permissions.owner'],
  ])('volume: %s', (_label, patch, field) => {
    expect(specError(() => volumeXml({ ...vol, ...patch })).field).toBe(field);
  });

  it('volume: large capacities as bigint', () => {
    expect(volumeXml({ name: 'big', capacityBytes: 2n ** 60n })).toContain(`<capacity unit='bytes'>${2n ** 60n}</capacity>`);
  });

  it.each<[string, Parameters<typeof poolXml>[0], string]>([
    ['relative path', { name: 'p', path: 'pool' }, 'path'],
    ['root path', { name: 'p', path: '/' }, 'path'],
    ['slash in name', { name: 'a/b', path: '/p' }, 'name'],
    ['bad uuid', { name: 'p', uuid: '123', path: '/p' }, 'uuid'],
    ['bad mode', { name: 'p', path: '/p', permissions: { mode: -1 } }, 'permissions.mode'],
  ])('pool: %s', (_label, spec, field) => {
    expect(specError(() => poolXml(spec)).field).toBe(field);
  });
});
