/** Representative specs; each has a hand-written expected file in expected/. */
import type { DomainSpec, NetworkSpec, PoolSpec, VolumeSpec } from '../../../src/libvirt/xml/index.js';

/** The session default: software emulation, user-mode NIC with SSH forwarded to loopback, seed ISO. */
export const sessionDomain: DomainSpec = {
  name: 'proj_default_1a2b3c',
  uuid: '6F1C3A52-8E0B-4C7D-9A41-2B5E7D90C318',
  type: 'qemu',
  memoryMiB: 1024,
  vcpus: 2,
  disks: [
    { source: { kind: 'volume', pool: 'vmenv', volume: 'proj_default_1a2b3c.qcow2' }, target: 'vda', bootOrder: 1 },
    { source: { kind: 'file', path: '/home/dev/proj/.vmenv/machines/default/seed.iso' }, device: 'cdrom', target: 'sda' },
  ],
  interfaces: [{ type: 'user', mac: '52:54:00:3C:A1:07', portForwards: [{ hostPort: 2222, guestPort: 22 }] }],
  serial: { logFile: '/home/dev/proj/.vmenv/machines/default/console.log' },
  metadata: { projectPath: '/home/dev/proj', machine: 'default', box: 'tiny' },
};

/** KVM on q35 with explicit OVMF files, private/public networks, shares, VNC. */
export const kvmQ35Domain: DomainSpec = {
  name: 'proj_web_9f8e7d',
  description: 'vmenv machine web of /home/dev/proj',
  type: 'kvm',
  memoryMiB: 4096,
  vcpus: 4,
  machine: 'q35',
  firmware: {
    type: 'uefi',
    loader: '/usr/share/OVMF/OVMF_CODE_4M.fd',
    nvramTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd',
    nvram: '/home/dev/proj/.vmenv/machines/web/VARS.fd',
    secureBoot: false,
  },
  disks: [
    {
      source: { kind: 'volume', pool: 'vmenv', volume: 'proj_web_9f8e7d.qcow2' },
      target: 'vda',
      bootOrder: 1,
      cache: 'none',
      discard: 'unmap',
    },
    { source: { kind: 'file', path: '/srv/images/data.raw' }, bus: 'scsi', target: 'sdb', format: 'raw', readonly: true, serial: 'data01' },
    { device: 'cdrom', target: 'sdc' },
  ],
  interfaces: [
    { type: 'network', network: 'vmenv-nat', mac: '52:54:00:10:00:01', bootOrder: 2 },
    { type: 'bridge', bridge: 'br0', model: 'e1000', mtu: 9000 },
    { type: 'direct', dev: 'eth0' },
  ],
  filesystems: [
    { driver: '9p', source: '/home/dev/proj', target: 'vmenv-project', readonly: true },
    { driver: 'virtiofs', source: '/srv/data', target: 'data' },
  ],
  graphics: { type: 'vnc', port: 5901 },
  rng: false,
  onReboot: 'destroy',
  onCrash: 'coredump-destroy',
};

/** Firmware chosen by libvirt with Secure Boot, a custom CPU model under TCG, extra QEMU args. */
export const uefiAutoDomain: DomainSpec = {
  name: 'build-debian-12',
  type: 'qemu',
  memoryMiB: 2048,
  vcpus: 1,
  machine: 'pc-q35-7.2',
  firmware: { type: 'uefi', secureBoot: true },
  cpu: { mode: 'custom', model: 'Haswell-noTSX', fallback: 'forbid' },
  disks: [{ source: { kind: 'file', path: '/var/lib/vmenv/build/disk.qcow2' }, target: 'vda', cache: 'unsafe' }],
  interfaces: [{ type: 'user' }],
  serial: { logFile: '/var/lib/vmenv/build/console.log', append: false },
  graphics: { type: 'vnc' },
  guestAgent: false,
  onPoweroff: 'preserve',
  qemuArgs: ['-fw_cfg', 'name=opt/vmenv/build,string=1'],
};

export const natNetwork: NetworkSpec = {
  name: 'vmenv',
  uuid: '0b5f2a8e-3c1d-4e6f-8a7b-9c0d1e2f3a4b',
  bridge: { name: 'virbr-vmenv' },
  domain: { name: 'vmenv.internal' },
  ipv4: {
    address: '192.168.121.1',
    prefix: 24,
    dhcp: {
      range: { start: '192.168.121.10', end: '192.168.121.254' },
      hosts: [
        { mac: '52:54:00:10:00:01', ip: '192.168.121.2', name: 'web' },
        { mac: '52:54:00:10:00:02', ip: '192.168.121.3' },
      ],
    },
  },
  dnsmasqOptions: ['no-ping'],
};

export const isolatedNetwork: NetworkSpec = {
  name: 'vmenv-private',
  forward: { mode: 'none' },
  bridge: { name: 'vmenv-priv0', stp: false, delay: 2 },
  mtu: 9000,
  ipv4: { address: '10.10.0.1', prefix: 16 },
};

export const routedNetwork: NetworkSpec = {
  name: 'vmenv-routed',
  forward: { mode: 'route', dev: 'eth1' },
  mac: '52:54:00:aa:00:01',
  domain: { name: 'lab.example', localOnly: false },
  ipv4: {
    address: '172.20.0.1',
    prefix: 28,
    dhcp: { hosts: [{ mac: '52:54:00:aa:00:02', ip: '172.20.0.14', name: 'db.lab' }] },
  },
};

export const overlayVolume: VolumeSpec = {
  name: 'proj_default_1a2b3c.qcow2',
  capacityBytes: 10n * 1024n ** 3n,
  backingStore: { path: '/home/dev/.local/share/vmenv/pool/box_tiny_0.1.0.img', format: 'qcow2' },
};

export const rawVolume: VolumeSpec = {
  name: 'proj_default_1a2b3c-seed.iso',
  capacityBytes: 1048576,
  allocationBytes: 1048576,
  format: 'raw',
  permissions: { mode: 0o640, owner: 0, group: 107 },
};

export const dirPool: PoolSpec = {
  name: 'vmenv',
  path: '/home/dev/.local/share/vmenv/pool',
};

export const dirPoolWithPermissions: PoolSpec = {
  name: 'vmenv-system',
  uuid: 'c2a9e7b4-5d3f-4a1e-9b8c-7d6e5f4a3b2c',
  path: '/var/lib/vmenv/pool',
  permissions: { mode: 0o711, owner: 1000, group: 1000 },
};
