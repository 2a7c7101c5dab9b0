/** Behaviour of domainXml beyond the expected files: defaults and generated parts. */
import { describe, expect, it } from 'vitest';
import { QEMU_XMLNS, VMENV_DOMAIN_XMLNS, domainXml } from '../../../src/libvirt/xml/index.js';
import type { DomainSpec } from '../../../src/libvirt/xml/index.js';
import { xpathString } from './helpers.js';

const base: DomainSpec = { name: 'm', type: 'qemu', memoryMiB: 512, vcpus: 1 };

function args(xml: string): string[] {
  return [...xml.matchAll(/<qemu:arg value='([^']*)'\/>/g)].map((m) => m[1] ?? '');
}

describe('domainXml', () => {
  it('defaults: pc machine, bios, no cpu element under TCG, pty serial, agent, rng, no graphics', () => {
    const xml = domainXml(base);
    expect(xpathString(xml, '/domain/os/type/@machine')).toBe('pc');
    expect(xpathString(xml, '/domain/os/type/@arch')).toBe('x86_64');
    expect(xpathString(xml, 'count(/domain/os/loader)')).toBe('0');
    expect(xpathString(xml, 'count(/domain/cpu)')).toBe('0');
    expect(xpathString(xml, "/domain/devices/serial[@type='pty']/target/@port")).toBe('0');
    expect(xpathString(xml, 'count(/domain/devices/serial/log)')).toBe('0');
    expect(xpathString(xml, "/domain/devices/channel/target/@name")).toBe('org.qemu.guest_agent.0');
    expect(xpathString(xml, '/domain/devices/rng/backend')).toBe('/dev/urandom');
    expect(xpathString(xml, 'count(/domain/devices/graphics)')).toBe('0');
    expect(xpathString(xml, 'count(/domain/memoryBacking)')).toBe('0');
    expect(xml).not.toContain('xmlns:qemu');
    expect(xml).not.toContain('<metadata>');
  });

  it('no USB controller and no memory balloon; a NIC has no option ROM unless it is in the boot order', () => {
    const xml = domainXml({
      ...base,
      interfaces: [
        { type: 'network', network: 'n', mac: '52:54:00:00:00:01' },
        { type: 'network', network: 'n', mac: '52:54:00:00:00:02', bootOrder: 1 },
      ],
    });
    expect(xpathString(xml, "/domain/devices/controller[@type='usb']/@model")).toBe('none');
    expect(xpathString(xml, '/domain/devices/memballoon/@model')).toBe('none');
    expect(xpathString(xml, '/domain/devices/interface[1]/rom/@enabled')).toBe('no');
    expect(xpathString(xml, 'count(/domain/devices/interface[2]/rom)')).toBe('0');
  });

  it('kvm defaults to host-passthrough', () => {
    expect(xpathString(domainXml({ ...base, type: 'kvm' }), '/domain/cpu/@mode')).toBe('host-passthrough');
    expect(xpathString(domainXml({ ...base, type: 'kvm', cpu: { mode: 'default' } }), 'count(/domain/cpu)')).toBe('0');
  });

  it('a cdrom defaults to sata and raw, a disk to virtio and qcow2', () => {
    const xml = domainXml({
      ...base,
      disks: [{ source: { kind: 'file', path: '/d' }, target: 'vda' }, { device: 'cdrom', target: 'sda' }],
    });
    expect(xpathString(xml, '/domain/devices/disk[1]/target/@bus')).toBe('virtio');
    expect(xpathString(xml, '/domain/devices/disk[1]/driver/@type')).toBe('qcow2');
    expect(xpathString(xml, '/domain/devices/disk[2]/target/@bus')).toBe('sata');
    expect(xpathString(xml, '/domain/devices/disk[2]/driver/@type')).toBe('raw');
    expect(xpathString(xml, 'count(/domain/devices/disk[2]/readonly)')).toBe('1');
    expect(xpathString(xml, 'count(/domain/devices/disk[2]/source)')).toBe('0');
  });

  it('user NICs with forwards become QEMU arguments, numbered, before the extra arguments', () => {
    const xml = domainXml({
      ...base,
      interfaces: [
        { type: 'network', network: 'n' },
        { type: 'user', model: 'e1000', bootOrder: 3, portForwards: [{ hostPort: 2222, guestPort: 22 }, { protocol: 'udp', hostAddress: '127.0.0.2', hostPort: 6000, guestPort: 60 }] },
        { type: 'user' },
        { type: 'user', mac: '52:54:00:AA:BB:CC', portForwards: [{ hostPort: 8080, guestPort: 80 }] },
      ],
      qemuArgs: ['-smp', 'sockets=1'],
    });
    expect(xml).toContain(`xmlns:qemu='${QEMU_XMLNS}'`);
    expect(args(xml)).toEqual([
      '-netdev',
      'user,id=vmenv-user0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:127.0.0.2:6000-:60',
      '-device',
      'e1000,netdev=vmenv-user0,bootindex=3,addr=0x1e',
      '-netdev',
      'user,id=vmenv-user1,hostfwd=tcp:127.0.0.1:8080-:80',
      '-device',
      'virtio-net-pci,netdev=vmenv-user1,mac=52:54:00:aa:bb:cc,addr=0x1d',
      '-smp',
      'sockets=1',
    ]);
    // The plain user NIC and the network NIC stay libvirt interfaces.
    expect(xpathString(xml, 'count(/domain/devices/interface)')).toBe('2');
    expect(xpathString(xml, "count(/domain/devices/interface[@type='user'])")).toBe('1');
  });

  it('metadata carries the project path and machine name in the vmenv namespace', () => {
    const xml = domainXml({ ...base, metadata: { projectPath: '/home/u/p', machine: 'web' } });
    const ns = `namespace-uri(/domain/metadata/*)`;
    expect(xpathString(xml, ns)).toBe(VMENV_DOMAIN_XMLNS);
    expect(xpathString(xml, "/domain/metadata/*[local-name()='machine']/*[local-name()='project']")).toBe('/home/u/p');
    expect(xpathString(xml, "/domain/metadata/*[local-name()='machine']/*[local-name()='name']")).toBe('web');
    expect(xpathString(xml, "count(//*[local-name()='box'])")).toBe('0');
  });

  it('virtiofs turns on shared memfd memory; sharedMemory can force it', () => {
    const fs = domainXml({ ...base, filesystems: [{ driver: 'virtiofs', source: '/p', target: 'p' }] });
    expect(xpathString(fs, '/domain/memoryBacking/source/@type')).toBe('memfd');
    expect(xpathString(fs, '/domain/memoryBacking/access/@mode')).toBe('shared');
    expect(xpathString(domainXml({ ...base, sharedMemory: true }), 'count(/domain/memoryBacking)')).toBe('1');
  });

  it('uefi without secureBoot preference leaves the choice to libvirt', () => {
    const xml = domainXml({ ...base, firmware: { type: 'uefi' } });
    expect(xpathString(xml, '/domain/os/@firmware')).toBe('efi');
    expect(xpathString(xml, 'count(/domain/os/firmware)')).toBe('0');
    expect(xpathString(xml, 'count(/domain/features/smm)')).toBe('0');
  });

  it('accepts versioned q35 machine types as q35 (no IDE, Secure Boot allowed)', () => {
    expect(() =>
      domainXml({ ...base, machine: 'pc-q35-7.2', disks: [{ source: { kind: 'file', path: '/d' }, bus: 'ide', target: 'hda' }] }),
    ).toThrow(/IDE/);
    expect(() => domainXml({ ...base, machine: 'pc-i440fx-7.2', disks: [{ source: { kind: 'file', path: '/d' }, bus: 'ide', target: 'hda' }] })).not.toThrow();
  });
});
