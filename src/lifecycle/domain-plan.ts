import { createHash } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import type { MachineConfig } from '../config/types.js';
import type { MachineNic } from '../project/state.js';
import { accessModeOf, machineShares } from '../sync/shares.js';
import type { DiskSpec, DomainSpec, FilesystemSpec, InterfaceSpec, VolumeFormat, VolumeSpec } from '../libvirt/xml/index.js';
import { machineVolumeNames } from '../project/names.js';

/** Where a machine's disks are, once the pipeline has made them. */
export interface MachineVolumes {
  pool: string;
  root: string;
  seed: string;
  /** Extra disks, in the order of `disks:` in vmenv.yaml. */
  extra: string[];
  /** Overlays on the box's other disks (its second, third, …), in the box's order: attached before `extra`. */
  boxDisks?: string[];
}

/** One disk of the box, uploaded into the pool. */
export interface BoxDiskVolume {
  /** The volume's path on the libvirt host. */
  path: string;
  /** Its format: the box image's own (qcow2 or raw). */
  format: VolumeFormat;
  /** Its virtual size in bytes. */
  capacity: bigint;
}

/**
 * The machine's copy-on-write overlays on the box's disks, in the box's order: the root
 * disk on the first (grown to `rootSize` when given), then one on each other disk. Each
 * overlay is qcow2; its backing store keeps the box disk's format, so a raw box disk is
 * read as raw (`<backingStore><format type='raw'/>`). Pure.
 */
export function boxOverlayVolumes(resourceName: string, disks: readonly BoxDiskVolume[], rootSize?: bigint): { spec: VolumeSpec; role: 'root' | 'box-disk' }[] {
  const names = machineVolumeNames(resourceName);
  return disks.map((d, i) => ({
    spec: {
      name: i === 0 ? names.root : names.boxDisk(i),
      capacityBytes: i === 0 && rootSize !== undefined ? rootSize : d.capacity,
      format: 'qcow2',
      backingStore: { path: d.path, format: d.format },
    },
    role: i === 0 ? 'root' : 'box-disk',
  }));
}

export interface DomainPlan {
  /** The libvirt domain name (see machineResourceName). */
  name: string;
  type: 'kvm' | 'qemu';
  projectDir: string;
  machine: MachineConfig;
  volumes: MachineVolumes;
  /** The NICs in order; the first is the management NIC. */
  nics: readonly MachineNic[];
  /** A file on the libvirt host receiving the guest's serial console. */
  serialLog?: string;
  /** The stored box's name, for the domain's metadata (default: `box:` as written, which may be a path or a URL). */
  boxName?: string;
}

/**
 * A stable MAC under QEMU's 52:54:00 prefix for a machine: the same machine gets the
 * same address (and so its DHCP lease back) when it is recreated.
 */
export function machineMac(resourceName: string, nic = 0): string {
  const h = createHash('sha256').update(`${resourceName}\0${nic}`).digest();
  return ['52', '54', '00', h[0]!, h[1]!, h[2]!].map((b) => (typeof b === 'string' ? b : b.toString(16).padStart(2, '0'))).join(':');
}

/**
 * Where the NoCloud seed CD-ROM goes: the IDE controller that a `pc` machine always
 * has, so no extra controller is added and probed at boot (an AHCI controller costs
 * the tiny box ~0.5 s under TCG); `q35` has no IDE, but a SATA (AHCI) controller built in.
 */
export function seedDrive(machineType: string): { bus: 'ide' | 'sata'; target: string } {
  return /^(pc-)?q35(\b|-|$)/.test(machineType) ? { bus: 'sata', target: 'sda' } : { bus: 'ide', target: 'hdc' };
}

/** The letters after a disk name's prefix: 0 → a, 25 → z, 26 → aa (as the kernel names them). */
function diskLetters(n: number): string {
  return n < 26 ? String.fromCharCode(97 + n) : diskLetters(Math.floor(n / 26) - 1) + String.fromCharCode(97 + (n % 26));
}

/**
 * The disks after the root one: first the box's other disks (virtio, in the box's
 * order: vdb, vdc, …, as vagrant-libvirt attaches them), then the `disks:` of vmenv.yaml:
 * virtio ones go on (vdd, …); SATA and SCSI share sdb, sdc, … (sda: the seed on q35).
 */
function extraDisks(plan: DomainPlan): DiskSpec[] {
  const next: Record<'vd' | 'sd', number> = { vd: 1, sd: 1 };
  const fromBox = (plan.volumes.boxDisks ?? []).map(
    (volume): DiskSpec => ({ source: { kind: 'volume', pool: plan.volumes.pool, volume }, bus: 'virtio', target: `vd${diskLetters(next.vd++)}`, format: 'qcow2' }),
  );
  const configured = plan.machine.disks.map((d, i): DiskSpec => {
    const prefix = d.bus === 'virtio' ? 'vd' : 'sd';
    const target = `${prefix}${diskLetters(next[prefix]++)}`;
    return { source: { kind: 'volume', pool: plan.volumes.pool, volume: plan.volumes.extra[i]! }, bus: d.bus, target, format: d.format };
  });
  return [...fromBox, ...configured];
}

/** 9p and virtiofs folders as filesystem devices; src/sync/mounts.ts mounts them by tag. */
function shares(plan: DomainPlan): FilesystemSpec[] {
  return machineShares(plan.machine).map(({ folder: f, driver, tag: target }): FilesystemSpec => {
    const source = isAbsolute(f.host) ? f.host : resolve(plan.projectDir, f.host);
    // A read-only virtiofs share is mounted read-only by the guest (libvirt 9.0 cannot make the device read-only).
    return driver === '9p' ? { driver, source, target, accessMode: accessModeOf(f), readonly: f.readonly } : { driver, source, target };
  });
}

function nicInterface(plan: DomainPlan, nic: MachineNic): InterfaceSpec {
  if (nic.mode === 'nat') return { type: 'network', network: nic.network, mac: nic.mac };
  const forwards = [
    { hostPort: nic.sshHostPort, guestPort: plan.machine.ssh.port, hostAddress: '127.0.0.1' },
    // The ports in effect (auto-corrected ones included), else as configured.
    ...(nic.forwards ?? plan.machine.forwarded_ports.map((p) => ({ host: p.host, guest: p.guest, hostIp: p.host_ip, protocol: p.protocol }))).map((p) => ({
      hostPort: p.host,
      guestPort: p.guest,
      hostAddress: p.hostIp,
      protocol: p.protocol,
    })),
  ];
  return { type: 'user', mac: nic.mac, portForwards: forwards };
}

/** The libvirt domain for a machine, as a pure function of its config and resources. */
export function machineDomainSpec(plan: DomainPlan): DomainSpec {
  const m = plan.machine;
  return {
    name: plan.name,
    description: `vmenv machine '${m.name}' of ${plan.projectDir}`,
    type: plan.type,
    memoryMiB: m.memory,
    vcpus: m.cpus,
    machine: m.boot.machine,
    firmware: m.boot.firmware === 'uefi' ? { type: 'uefi' } : { type: 'bios' },
    disks: [
      { source: { kind: 'volume', pool: plan.volumes.pool, volume: plan.volumes.root }, target: 'vda', format: 'qcow2', bootOrder: 1 },
      ...extraDisks(plan),
      // The NoCloud seed: a read-only cdrom labelled cidata.
      { source: { kind: 'volume', pool: plan.volumes.pool, volume: plan.volumes.seed }, device: 'cdrom', ...seedDrive(m.boot.machine), format: 'raw' },
    ],
    interfaces: plan.nics.map((nic) => nicInterface(plan, nic)),
    filesystems: shares(plan),
    serial: plan.serialLog === undefined ? {} : { logFile: plan.serialLog },
    metadata: { projectPath: plan.projectDir, machine: m.name, box: plan.boxName ?? m.box.name },
  };
}
