import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { boxOverlayVolumes, machineDomainSpec, machineMac, type DomainPlan } from '../../../src/lifecycle/domain-plan.js';
import { domainXml, volumeXml } from '../../../src/libvirt/xml/index.js';
import { extraDiskVolumeNames } from '../../../src/project/names.js';
import { parseWithLibvirt, validateXml } from '../xml/helpers.js';

function plan(yaml: string, nic: DomainPlan['nics'][number], boxDisks?: string[]): DomainPlan {
  const { config } = parseConfig(yaml, '/home/ann/shop/vmenv.yaml');
  const machine = config.machines[0]!;
  return {
    name: 'shop_web_0a1b2c3d',
    type: 'qemu',
    projectDir: config.dir,
    machine,
    volumes: {
      pool: 'default',
      root: 'shop_web_0a1b2c3d.qcow2',
      seed: 'shop_web_0a1b2c3d-seed.iso',
      extra: extraDiskVolumeNames('shop_web_0a1b2c3d', machine.disks),
      ...(boxDisks ? { boxDisks } : {}),
    },
    nics: [nic],
    serialLog: '/var/log/libvirt/qemu/shop_web_0a1b2c3d-serial.log',
  };
}

describe('machineMac', () => {
  it('is stable, under 52:54:00, and differs between machines and NICs', () => {
    const a = machineMac('shop_web_0a1b2c3d');
    expect(a).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(machineMac('shop_web_0a1b2c3d')).toBe(a);
    expect(machineMac('shop_db_0a1b2c3d')).not.toBe(a);
    expect(machineMac('shop_web_0a1b2c3d', 1)).not.toBe(a);
  });
});

describe('machineDomainSpec', () => {
  it('boots the root overlay first, with the seed as an IDE cdrom and the NIC on the NAT network', () => {
    const spec = machineDomainSpec(plan('box: tiny\nmemory: 1G\ncpus: 2\n', { mode: 'nat', network: 'vmenv-net', mac: '52:54:00:aa:bb:cc' }));
    expect(spec).toMatchObject({ name: 'shop_web_0a1b2c3d', type: 'qemu', memoryMiB: 1024, vcpus: 2, machine: 'pc' });
    expect(spec.disks).toEqual([
      { source: { kind: 'volume', pool: 'default', volume: 'shop_web_0a1b2c3d.qcow2' }, target: 'vda', format: 'qcow2', bootOrder: 1 },
      { source: { kind: 'volume', pool: 'default', volume: 'shop_web_0a1b2c3d-seed.iso' }, device: 'cdrom', bus: 'ide', target: 'hdc', format: 'raw' },
    ]);
    expect(spec.interfaces).toEqual([{ type: 'network', network: 'vmenv-net', mac: '52:54:00:aa:bb:cc' }]);
    expect(spec.metadata).toEqual({ projectPath: '/home/ann/shop', machine: 'default', box: 'tiny' });
  });

  it('gives the domain one interface per NIC, the management NIC first', () => {
    const p = plan('box: tiny\n', { mode: 'nat', network: 'vmenv-net', mac: '52:54:00:aa:bb:cc' });
    const spec = machineDomainSpec({ ...p, nics: [...p.nics, { mode: 'nat', network: 'backend', mac: '52:54:00:aa:bb:cd' }] });
    expect(spec.interfaces).toEqual([
      { type: 'network', network: 'vmenv-net', mac: '52:54:00:aa:bb:cc' },
      { type: 'network', network: 'backend', mac: '52:54:00:aa:bb:cd' },
    ]);
  });

  it('names extra disks per bus, after the root disk and the seed', () => {
    const yaml = 'box: tiny\ndisks:\n  - { size: 1G }\n  - { size: 2G, bus: sata }\n  - { size: 1G }\n  - { size: 1G, bus: scsi }\n';
    const spec = machineDomainSpec(plan(yaml, { mode: 'nat', network: 'n', mac: '52:54:00:00:00:01' }));
    expect(spec.disks!.map((d) => d.target)).toEqual(['vda', 'vdb', 'sdb', 'vdc', 'sdc', 'hdc']);
  });

  it('has the QEMU guest agent channel that shutdown.mode agent needs', () => {
    const spec = machineDomainSpec(plan('box: tiny\nshutdown: { mode: agent }\n', { mode: 'nat', network: 'n', mac: '52:54:00:00:00:01' }));
    expect(domainXml(spec)).toMatch(/<channel type='unix'>\s*<source mode='bind'\/>\s*<target type='virtio' name='org\.qemu\.guest_agent\.0'\/>/);
  });

  it("attaches a named disk's volume by its name, the others by position", () => {
    const yaml = 'box: tiny\ndisks:\n  - { size: 1G }\n  - { size: 1G, name: data }\n';
    const spec = machineDomainSpec(plan(yaml, { mode: 'nat', network: 'n', mac: '52:54:00:00:00:01' }));
    expect(spec.disks!.slice(1, 3).map((d) => [d.target, d.source])).toEqual([
      ['vdb', { kind: 'volume', pool: 'default', volume: 'shop_web_0a1b2c3d-disk0.qcow2' }],
      ['vdc', { kind: 'volume', pool: 'default', volume: 'shop_web_0a1b2c3d-disk-data.qcow2' }],
    ]);
  });

  it("attaches the box's other disks after the root disk, in the box's order, then the disks of vmenv.yaml", () => {
    const yaml = 'box: ./two-disks.box\ndisks:\n  - { size: 1G }\n  - { size: 2G, bus: sata }\n';
    const boxDisks = ['shop_web_0a1b2c3d-box1.qcow2', 'shop_web_0a1b2c3d-box2.qcow2'];
    const spec = machineDomainSpec(plan(yaml, { mode: 'nat', network: 'n', mac: '52:54:00:00:00:07' }, boxDisks));
    expect(spec.disks!.map((d) => [d.target, d.source?.kind === 'volume' ? d.source.volume : undefined])).toEqual([
      ['vda', 'shop_web_0a1b2c3d.qcow2'],
      ['vdb', 'shop_web_0a1b2c3d-box1.qcow2'],
      ['vdc', 'shop_web_0a1b2c3d-box2.qcow2'],
      ['vdd', 'shop_web_0a1b2c3d-disk0.qcow2'],
      ['sdb', 'shop_web_0a1b2c3d-disk1.qcow2'],
      ['hdc', 'shop_web_0a1b2c3d-seed.iso'],
    ]);
    expect(spec.disks![1]).toMatchObject({ bus: 'virtio', format: 'qcow2' });
    expect(spec.disks!.filter((d) => d.bootOrder !== undefined).map((d) => d.target)).toEqual(['vda']);
    const xml = domainXml(spec);
    validateXml(xml, 'domain');
    parseWithLibvirt(xml, 'domain');
  });

  it('names virtio disks past vdz as the kernel does (vdaa, …)', () => {
    const boxDisks = Array.from({ length: 26 }, (_, i) => `b${i + 1}.qcow2`);
    const spec = machineDomainSpec(plan('box: tiny\n', { mode: 'nat', network: 'n', mac: '52:54:00:00:00:08' }, boxDisks));
    expect(spec.disks!.map((d) => d.target).slice(24, 28)).toEqual(['vdy', 'vdz', 'vdaa', 'hdc']);
  });

  it('puts the seed on SATA on a q35 machine, which has no IDE', () => {
    const spec = machineDomainSpec(plan('box: tiny\nboot:\n  machine: q35\n', { mode: 'nat', network: 'n', mac: '52:54:00:00:00:06' }));
    expect(spec.disks![1]).toMatchObject({ device: 'cdrom', bus: 'sata', target: 'sda' });
    validateXml(domainXml(spec), 'domain');
  });

  it('forwards SSH and the configured ports from 127.0.0.1 in user mode', () => {
    const yaml = 'box: tiny\nforwarded_ports:\n  - { guest: 80, host: 8080 }\n';
    const spec = machineDomainSpec(plan(yaml, { mode: 'user', mac: '52:54:00:00:00:02', sshHostPort: 2222 }));
    expect(spec.interfaces).toEqual([
      {
        type: 'user',
        mac: '52:54:00:00:00:02',
        portForwards: [
          { hostPort: 2222, guestPort: 22, hostAddress: '127.0.0.1' },
          { hostPort: 8080, guestPort: 80, hostAddress: '127.0.0.1', protocol: 'tcp' },
        ],
      },
    ]);
  });

  it('maps 9p and virtiofs folders to shares and leaves rsync folders out', () => {
    const yaml = 'box: tiny\nsynced_folders:\n  - { host: ./src, guest: /src, type: 9p, readonly: true }\n  - { host: /data, guest: /data, type: virtiofs }\n';
    const spec = machineDomainSpec(plan(yaml, { mode: 'nat', network: 'n', mac: '52:54:00:00:00:03' }));
    expect(spec.filesystems).toEqual([
      { driver: '9p', source: '/home/ann/shop/src', target: 'vmenv0', accessMode: 'mapped', readonly: true },
      { driver: 'virtiofs', source: '/data', target: 'vmenv1' },
    ]);
  });

  it('produces XML that libvirt accepts', () => {
    const yaml = 'box: tiny\ndisks:\n  - { size: 1G, bus: sata }\nforwarded_ports:\n  - { guest: 80, host: 8080 }\n';
    for (const xml of [
      domainXml(machineDomainSpec(plan(yaml, { mode: 'user', mac: '52:54:00:00:00:04', sshHostPort: 2200 }))),
      domainXml(machineDomainSpec(plan('box: tiny\n', { mode: 'nat', network: 'n', mac: '52:54:00:00:00:05' }))),
    ]) {
      validateXml(xml, 'domain');
      parseWithLibvirt(xml, 'domain');
    }
  });
});

describe('boxOverlayVolumes', () => {
  const disks = [
    { path: '/pool/vmenv-box_t_1_0_0123456789.raw', format: 'raw' as const, capacity: 1024n ** 3n },
    { path: '/pool/vmenv-box_t_1_1_0123456789.qcow2', format: 'qcow2' as const, capacity: 64n * 1024n ** 2n },
  ];

  it('makes a qcow2 overlay on each box disk, the root first and grown to the size asked', () => {
    const out = boxOverlayVolumes('shop_web_0a1b2c3d', disks, 2n * 1024n ** 3n);
    expect(out).toEqual([
      {
        role: 'root',
        spec: { name: 'shop_web_0a1b2c3d.qcow2', capacityBytes: 2n * 1024n ** 3n, format: 'qcow2', backingStore: { path: disks[0]!.path, format: 'raw' } },
      },
      {
        role: 'box-disk',
        spec: { name: 'shop_web_0a1b2c3d-box1.qcow2', capacityBytes: 64n * 1024n ** 2n, format: 'qcow2', backingStore: { path: disks[1]!.path, format: 'qcow2' } },
      },
    ]);
  });

  it('reads a raw box disk as raw: the backing store says so', () => {
    const [root] = boxOverlayVolumes('shop_web_0a1b2c3d', disks);
    const xml = volumeXml(root!.spec);
    expect(xml).toContain(`<backingStore>\n    <path>${disks[0]!.path}</path>\n    <format type='raw'/>\n  </backingStore>`);
    expect(xml).toContain("<target>\n    <format type='qcow2'/>");
    expect(xml).toContain(`<capacity unit='bytes'>${1024 ** 3}</capacity>`);
    validateXml(xml, 'storagevol');
  });
});
