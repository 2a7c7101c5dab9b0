/**
 * Domain XML: `domainXml(spec)` turns a typed DomainSpec into a libvirt `<domain>`
 * document, valid for libvirt 9.0's domain schema. Pure: no I/O, same spec → same text.
 */
import { XmlSpecError } from './errors.js';
import { normalizePortForward, USER_NIC_TOP_SLOT, userNetQemuArgs } from './qemu-args.js';
import type { NicModel, PortForward } from './qemu-args.js';
import {
  checkAbsPath,
  checkDeviceName,
  checkMac,
  checkObjectName,
  checkPositiveInt,
  checkString,
  checkUnique,
  checkUuid,
  formatIpv4,
  parseIpv4,
  checkIntRange,
} from './validate.js';
import { el, renderXml } from './writer.js';
import type { XmlElement } from './writer.js';

export type { NicModel, PortForward } from './qemu-args.js';

/** Namespace of vmenv's element inside a domain's `<metadata>`. */
export const VMENV_DOMAIN_XMLNS = 'https://vmenv.dev/xmlns/domain/1';
/** Prefix and local name of that element: `<vmenv:machine>`. */
export const VMENV_METADATA_PREFIX = 'vmenv';
export const VMENV_METADATA_ELEMENT = 'machine';
/** Namespace of libvirt's QEMU extensions (`<qemu:commandline>`). */
export const QEMU_XMLNS = 'http://libvirt.org/schemas/domain/qemu/1.0';

/** `kvm` (hardware virtualization) or `qemu` (software emulation, TCG). */
export type DomainType = 'kvm' | 'qemu';
export type Arch = 'x86_64';

/**
 * Firmware. `bios` (SeaBIOS) is the default.
 *
 * `uefi` without `loader` lets libvirt pick an OVMF build from QEMU's firmware
 * descriptors (`<os firmware='efi'>`); with `loader` (e.g.
 * `/usr/share/OVMF/OVMF_CODE_4M.fd`) that file is used as a read-only pflash, and
 * `nvramTemplate` (e.g. `/usr/share/OVMF/OVMF_VARS_4M.fd`) seeds the per-domain
 * variable store at `nvram` (libvirt chooses the path when `nvram` is left out).
 * `secureBoot: true` needs a q35 machine (SMM is turned on); `false` asks for a
 * firmware without Secure Boot; left out, libvirt's choice.
 */
export type FirmwareSpec =
  | { type: 'bios' }
  | { type: 'uefi'; loader?: string; nvram?: string; nvramTemplate?: string; secureBoot?: boolean };

/**
 * The guest CPU. Default: `host-passthrough` for `kvm`; for `qemu` no `<cpu>` element
 * (QEMU's default model). `host-passthrough` needs KVM and is rejected for `qemu`.
 * `maximum` gives TCG every feature it can emulate. `custom` names a QEMU model
 * (e.g. `qemu64`, `Haswell-noTSX`); `fallback` defaults to `allow`.
 */
export type CpuSpec =
  | { mode: 'default' }
  | { mode: 'host-passthrough' }
  | { mode: 'host-model' }
  | { mode: 'maximum' }
  | { mode: 'custom'; model: string; fallback?: 'allow' | 'forbid' };

/** A file on the host, or a volume in a libvirt storage pool. */
export type DiskSource =
  | { kind: 'file'; path: string }
  | { kind: 'volume'; pool: string; volume: string };

export type DiskBus = 'virtio' | 'sata' | 'scsi' | 'ide';
export type DiskFormat = 'qcow2' | 'raw';
export type DiskCache = 'default' | 'none' | 'writethrough' | 'writeback' | 'directsync' | 'unsafe';

export interface DiskSpec {
  /** Required for `disk`; left out, a `cdrom` is an empty drive. */
  source?: DiskSource;
  /** Default `disk`. */
  device?: 'disk' | 'cdrom';
  /** Default `virtio` for a disk, `sata` for a cdrom. `ide` does not exist on q35. */
  bus?: DiskBus;
  /** Guest device name, matching the bus: `vdX` (virtio), `sdX` (sata, scsi), `hdX` (ide). */
  target: string;
  /** Image format. Default `qcow2` for a disk, `raw` for a cdrom. */
  format?: DiskFormat;
  /** Default false; a cdrom is always read-only. */
  readonly?: boolean;
  /** Position in the boot order (1 first), shared with interfaces. */
  bootOrder?: number;
  /** QEMU cache mode; left out, libvirt's default. `unsafe` suits throw-away builds. */
  cache?: DiskCache;
  /** Pass guest TRIM to the image (`unmap`) or not (`ignore`); left out, libvirt's default. */
  discard?: 'unmap' | 'ignore';
  /** Serial number shown to the guest (letters, digits, space, `_ . + -`). */
  serial?: string;
}

interface InterfaceCommon {
  /** Guest MAC. Left out, libvirt generates one under 52:54:00. */
  mac?: string;
  /** Default `virtio`. */
  model?: NicModel;
  /** Position in the boot order (1 first), shared with disks. */
  bootOrder?: number;
  /** MTU in bytes (68-65535); left out, the network's. */
  mtu?: number;
}

/** A NIC on a libvirt virtual network (e.g. vmenv's NAT network with DHCP). */
export interface NetworkInterfaceSpec extends InterfaceCommon {
  type: 'network';
  network: string;
}

/** A NIC on an existing host bridge (public network). */
export interface BridgeInterfaceSpec extends InterfaceCommon {
  type: 'bridge';
  bridge: string;
}

/** A macvtap NIC on a host device (public network without a bridge). Mode default `bridge`. */
export interface DirectInterfaceSpec extends InterfaceCommon {
  type: 'direct';
  dev: string;
  mode?: 'bridge' | 'vepa' | 'private' | 'passthrough';
}

/**
 * QEMU user-mode networking (slirp): no privileges, no bridge; the guest reaches out
 * through QEMU, the host reaches in through port forwards (default host address
 * 127.0.0.1).
 *
 * Without forwards this is a plain `<interface type='user'>`. With forwards, libvirt
 * 9.0 cannot express them (its `<portForward>` needs the passt backend, whose
 * `<backend type='passt'/>` libvirt 9.0.0 fails to parse), so the NIC is given to QEMU
 * directly through `<qemu:commandline>` as `-netdev user,id=vmenv-user<N>,hostfwd=…`
 * plus a `-device`; it then does not appear among the domain's `<interface>`s (nor in
 * libvirt's interface APIs), and `mtu` is not available.
 */
export interface UserInterfaceSpec extends InterfaceCommon {
  type: 'user';
  portForwards?: readonly PortForward[];
}

export type InterfaceSpec =
  | NetworkInterfaceSpec
  | BridgeInterfaceSpec
  | DirectInterfaceSpec
  | UserInterfaceSpec;

/**
 * A 9p share. `accessMode` default `mapped` (guest ownership and modes kept in
 * extended attributes on the host; safe with an unprivileged QEMU); `passthrough` uses
 * the host's ownership as is; `squash` is passthrough ignoring failed ownership changes.
 */
export interface NinePFilesystemSpec {
  driver: '9p';
  /** Host directory (absolute). */
  source: string;
  /** Mount tag the guest mounts (`mount -t 9p -o trans=virtio <tag> /dir`). */
  target: string;
  accessMode?: 'mapped' | 'passthrough' | 'squash';
  /** Default false. */
  readonly?: boolean;
}

/**
 * A virtiofs share (needs virtiofsd on the host). Adding one turns on shared memfd
 * memory backing, which virtiofs requires. libvirt 9.0 has no read-only virtiofs.
 */
export interface VirtiofsFilesystemSpec {
  driver: 'virtiofs';
  source: string;
  target: string;
}

export type FilesystemSpec = NinePFilesystemSpec | VirtiofsFilesystemSpec;

/**
 * The serial port, always a pty (`virsh console`). With `logFile`, everything the guest
 * writes to it is also copied to that host file (through virtlogd), so vmenv can show
 * the tail of the boot log; `append` (default true) keeps earlier boots.
 */
export interface SerialSpec {
  logFile?: string;
  append?: boolean;
}

/** No graphics (the default), or a VNC server on a loopback address. */
export type GraphicsSpec =
  | { type: 'none' }
  | {
      type: 'vnc';
      /** Default `127.0.0.1`. */
      listen?: string;
      /** Default `auto` (libvirt picks a free port from 5900). */
      port?: number | 'auto';
    };

export type LifecycleAction = 'destroy' | 'restart' | 'preserve' | 'rename-restart';
export type CrashAction = LifecycleAction | 'coredump-destroy' | 'coredump-restart';

/** What vmenv records in the domain's `<metadata>` to recognise its own domains. */
export interface VmenvMetadata {
  /** Absolute path of the project directory (where vmenv.yaml is). */
  projectPath: string;
  /** Machine name inside the project. */
  machine: string;
  /** Box the machine was created from, if any. */
  box?: string;
}

export interface DomainSpec {
  /** libvirt domain name (unique per host; vmenv derives it from the project path). */
  name: string;
  /** Left out, libvirt generates one. */
  uuid?: string;
  /** Free text shown by `virsh desc`. */
  description?: string;
  type: DomainType;
  /** Memory in MiB. */
  memoryMiB: number;
  vcpus: number;
  /** Default `x86_64`. */
  arch?: Arch;
  /** QEMU machine type: `pc` (i440fx, the default), `q35`, or a versioned `pc-q35-7.2`. */
  machine?: string;
  /** Default `{ type: 'bios' }`. */
  firmware?: FirmwareSpec;
  /** See CpuSpec for the default. */
  cpu?: CpuSpec;
  disks?: readonly DiskSpec[];
  interfaces?: readonly InterfaceSpec[];
  filesystems?: readonly FilesystemSpec[];
  /** Default `{}`: a pty serial port without a log file. */
  serial?: SerialSpec;
  /** Default `{ type: 'none' }`. */
  graphics?: GraphicsSpec;
  /** A virtio RNG fed from `/dev/urandom`. Default true. */
  rng?: boolean;
  /**
   * The QEMU guest agent channel (`org.qemu.guest_agent.0`, a unix socket whose path
   * libvirt chooses). Default true.
   */
  guestAgent?: boolean;
  /** The agent socket's path; default: libvirt's choice (which can exceed the 108 bytes of a unix socket path under a long home). */
  guestAgentSocket?: string;
  /** Shared memfd memory. Default: on exactly when a virtiofs share is present. */
  sharedMemory?: boolean;
  /** Default `destroy`. */
  onPoweroff?: LifecycleAction;
  /** Default `restart`. */
  onReboot?: LifecycleAction;
  /** Default `destroy`. */
  onCrash?: CrashAction;
  metadata?: VmenvMetadata;
  /** Extra QEMU arguments, after those vmenv generates for user-mode port forwards. */
  qemuArgs?: readonly string[];
}

const LIFECYCLE: readonly string[] = ['destroy', 'restart', 'preserve', 'rename-restart'];
const CRASH: readonly string[] = [...LIFECYCLE, 'coredump-destroy', 'coredump-restart'];
const NIC_MODELS: readonly string[] = ['virtio', 'e1000', 'e1000e', 'rtl8139'];
const TARGET_PREFIX: Readonly<Record<DiskBus, string>> = { virtio: 'vd', sata: 'sd', scsi: 'sd', ide: 'hd' };

function oneOf<T extends string>(field: string, value: T, allowed: readonly string[]): T {
  if (!allowed.includes(value)) {
    throw new XmlSpecError(field, `'${String(value)}' is not one of ${allowed.join(', ')}`);
  }
  return value;
}

function isQ35(machine: string): boolean {
  return /^(pc-)?q35(\b|-|$)/.test(machine);
}

/** Collected while building devices, checked across all of them. */
interface BootEntry {
  field: string;
  order: number;
}

function diskXml(d: DiskSpec, i: number, q35: boolean, boots: BootEntry[]): XmlElement {
  const f = `disks[${i}]`;
  const device = oneOf(`${f}.device`, d.device ?? 'disk', ['disk', 'cdrom']);
  const cdrom = device === 'cdrom';
  const bus = oneOf(`${f}.bus`, d.bus ?? (cdrom ? 'sata' : 'virtio'), ['virtio', 'sata', 'scsi', 'ide']);
  if (bus === 'ide' && q35) {
    throw new XmlSpecError(`${f}.bus`, 'a q35 machine has no IDE bus', "Use 'sata' (or 'virtio') instead.");
  }
  if (cdrom && bus === 'virtio') {
    throw new XmlSpecError(`${f}.bus`, 'a cdrom cannot be on the virtio bus', "Use 'sata' or 'scsi'.");
  }
  const prefix = TARGET_PREFIX[bus];
  if (typeof d.target !== 'string' || !new RegExp(`^${prefix}[a-z]{1,3}$`).test(d.target)) {
    throw new XmlSpecError(`${f}.target`, `'${String(d.target)}' does not name a ${bus} device (expected ${prefix}a, ${prefix}b, …)`);
  }
  const format = oneOf(`${f}.format`, d.format ?? (cdrom ? 'raw' : 'qcow2'), ['qcow2', 'raw']);
  const source = d.source;
  if (source === undefined && !cdrom) throw new XmlSpecError(`${f}.source`, 'a disk needs a source');
  let type: 'file' | 'volume' = 'file';
  let sourceEl: XmlElement | undefined;
  if (source !== undefined) {
    if (source.kind === 'file') {
      sourceEl = el('source', { file: checkAbsPath(`${f}.source.path`, source.path) });
    } else if (source.kind === 'volume') {
      type = 'volume';
      sourceEl = el('source', {
        pool: checkObjectName(`${f}.source.pool`, source.pool),
        volume: checkString(`${f}.source.volume`, source.volume),
      });
    } else {
      throw new XmlSpecError(`${f}.source.kind`, `'${String((source as { kind: unknown }).kind)}' is not file or volume`);
    }
  }
  if (d.cache !== undefined) oneOf(`${f}.cache`, d.cache, ['default', 'none', 'writethrough', 'writeback', 'directsync', 'unsafe']);
  if (d.discard !== undefined) oneOf(`${f}.discard`, d.discard, ['unmap', 'ignore']);
  if (d.serial !== undefined && !/^[A-Za-z0-9_.+ -]{1,20}$/.test(d.serial)) {
    throw new XmlSpecError(`${f}.serial`, `'${d.serial}' is not a disk serial (1-20 of A-Z a-z 0-9 space _ . + -)`);
  }
  if (d.bootOrder !== undefined) boots.push({ field: `${f}.bootOrder`, order: checkPositiveInt(`${f}.bootOrder`, d.bootOrder) });
  return el(
    'disk',
    { type, device },
    el('driver', { name: 'qemu', type: format, cache: d.cache, discard: d.discard }),
    sourceEl,
    el('target', { dev: d.target, bus }),
    d.serial !== undefined && el('serial', {}, d.serial),
    (cdrom || d.readonly === true) && el('readonly'),
    d.bootOrder !== undefined && el('boot', { order: d.bootOrder }),
  );
}

interface NicCommon {
  mac: XmlElement | undefined;
  model: XmlElement;
  boot: XmlElement | undefined;
  mtu: XmlElement | undefined;
  rom: XmlElement | undefined;
}

function nicCommon(n: InterfaceSpec, f: string, boots: BootEntry[]): NicCommon {
  const model = oneOf(`${f}.model`, n.model ?? 'virtio', NIC_MODELS);
  if (n.bootOrder !== undefined) boots.push({ field: `${f}.bootOrder`, order: checkPositiveInt(`${f}.bootOrder`, n.bootOrder) });
  return {
    mac: n.mac === undefined ? undefined : el('mac', { address: checkMac(`${f}.mac`, n.mac) }),
    model: el('model', { type: model }),
    boot: n.bootOrder === undefined ? undefined : el('boot', { order: n.bootOrder }),
    mtu: n.mtu === undefined ? undefined : el('mtu', { size: checkIntRange(`${f}.mtu`, n.mtu, 68, 65535) }),
    // A NIC that is not in the boot order never network-boots: without its option ROM
    // the firmware does not load and start iPXE for it (a noticeable part of the boot
    // under TCG).
    rom: n.bootOrder === undefined ? el('rom', { enabled: 'no' }) : undefined,
  };
}

/** Returns the `<interface>` element, or QEMU arguments for a slirp NIC with forwards. */
function interfaceXml(n: InterfaceSpec, i: number, userIndex: number, boots: BootEntry[]): XmlElement | string[] {
  const f = `interfaces[${i}]`;
  const c = nicCommon(n, f, boots);
  const tail = [c.model, c.mtu, c.boot, c.rom];
  switch (n.type) {
    case 'network':
      return el('interface', { type: 'network' }, c.mac, el('source', { network: checkObjectName(`${f}.network`, n.network) }), tail);
    case 'bridge':
      return el('interface', { type: 'bridge' }, c.mac, el('source', { bridge: checkDeviceName(`${f}.bridge`, n.bridge) }), tail);
    case 'direct': {
      const mode = oneOf(`${f}.mode`, n.mode ?? 'bridge', ['bridge', 'vepa', 'private', 'passthrough']);
      return el('interface', { type: 'direct' }, c.mac, el('source', { dev: checkDeviceName(`${f}.dev`, n.dev), mode }), tail);
    }
    case 'user': {
      const forwards = n.portForwards ?? [];
      if (forwards.length === 0) return el('interface', { type: 'user' }, c.mac, tail);
      if (n.mtu !== undefined) {
        throw new XmlSpecError(`${f}.mtu`, 'cannot be set on a user-mode NIC with port forwards');
      }
      const spec = {
        id: `vmenv-user${userIndex}`,
        // A fixed slot libvirt leaves free, from the top down: libvirt numbers its own devices from slot 1 up.
        pciSlot: USER_NIC_TOP_SLOT - userIndex,
        portForwards: forwards,
        ...(n.mac === undefined ? {} : { mac: n.mac }),
        ...(n.model === undefined ? {} : { model: n.model }),
        ...(n.bootOrder === undefined ? {} : { bootOrder: n.bootOrder }),
      };
      return userNetQemuArgs(spec, f);
    }
    default:
      throw new XmlSpecError(`${f}.type`, `'${String((n as { type: unknown }).type)}' is not network, bridge, direct or user`);
  }
}

function filesystemXml(fs: FilesystemSpec, i: number): XmlElement {
  const f = `filesystems[${i}]`;
  const source = el('source', { dir: checkAbsPath(`${f}.source`, fs.source) });
  const target = el('target', { dir: checkString(`${f}.target`, fs.target) });
  if (!/^[A-Za-z0-9_.:-]{1,31}$/.test(fs.target)) {
    throw new XmlSpecError(`${f}.target`, `'${fs.target}' is not a mount tag (1-31 of A-Z a-z 0-9 _ . : -)`);
  }
  if (fs.driver === '9p') {
    const accessmode = oneOf(`${f}.accessMode`, fs.accessMode ?? 'mapped', ['mapped', 'passthrough', 'squash']);
    return el('filesystem', { type: 'mount', accessmode }, source, target, fs.readonly === true && el('readonly'));
  }
  if (fs.driver === 'virtiofs') {
    if ((fs as { readonly?: unknown }).readonly === true) {
      throw new XmlSpecError(`${f}.readonly`, 'libvirt 9.0 cannot share a virtiofs folder read-only', 'Use 9p for a read-only share.');
    }
    return el('filesystem', { type: 'mount', accessmode: 'passthrough' }, el('driver', { type: 'virtiofs' }), source, target);
  }
  throw new XmlSpecError(`${f}.driver`, `'${String((fs as { driver: unknown }).driver)}' is not 9p or virtiofs`);
}

function osXml(spec: DomainSpec, arch: Arch, machine: string, q35: boolean): { os: XmlElement; smm: boolean } {
  const type = el('type', { arch, machine }, 'hvm');
  const fw = spec.firmware ?? { type: 'bios' };
  if (fw.type === 'bios') return { os: el('os', {}, type), smm: false };
  if (fw.type !== 'uefi') {
    throw new XmlSpecError('firmware.type', `'${String((fw as { type: unknown }).type)}' is not bios or uefi`);
  }
  if (fw.secureBoot === true && !q35) {
    throw new XmlSpecError('firmware.secureBoot', `Secure Boot needs a q35 machine, not '${machine}'`, "Set machine to 'q35'.");
  }
  const nvramPath = fw.nvram === undefined ? undefined : checkAbsPath('firmware.nvram', fw.nvram);
  if (fw.loader === undefined) {
    if (fw.nvramTemplate !== undefined) {
      throw new XmlSpecError('firmware.nvramTemplate', 'needs firmware.loader (with automatic firmware selection libvirt picks the template)');
    }
    const features =
      fw.secureBoot === undefined
        ? undefined
        : el(
            'firmware',
            {},
            fw.secureBoot && el('feature', { enabled: 'yes', name: 'enrolled-keys' }),
            el('feature', { enabled: fw.secureBoot ? 'yes' : 'no', name: 'secure-boot' }),
          );
    return {
      os: el('os', { firmware: 'efi' }, type, features, nvramPath !== undefined && el('nvram', {}, nvramPath)),
      smm: fw.secureBoot === true,
    };
  }
  const loader = el(
    'loader',
    { readonly: 'yes', secure: fw.secureBoot === undefined ? undefined : fw.secureBoot ? 'yes' : 'no', type: 'pflash' },
    checkAbsPath('firmware.loader', fw.loader),
  );
  const template = fw.nvramTemplate === undefined ? undefined : checkAbsPath('firmware.nvramTemplate', fw.nvramTemplate);
  const nvram =
    nvramPath === undefined && template === undefined ? undefined : el('nvram', { template }, nvramPath);
  return { os: el('os', {}, type, loader, nvram), smm: fw.secureBoot === true };
}

function cpuXml(spec: DomainSpec): XmlElement | undefined {
  const cpu: CpuSpec = spec.cpu ?? (spec.type === 'kvm' ? { mode: 'host-passthrough' } : { mode: 'default' });
  switch (cpu.mode) {
    case 'default':
      return undefined;
    case 'host-passthrough':
      if (spec.type !== 'kvm') {
        throw new XmlSpecError('cpu.mode', 'host-passthrough needs KVM (domain type kvm)', "Use 'maximum', 'custom' or the default for type qemu.");
      }
      return el('cpu', { mode: 'host-passthrough', check: 'none', migratable: 'on' });
    case 'host-model':
      return el('cpu', { mode: 'host-model', check: 'partial' });
    case 'maximum':
      return el('cpu', { mode: 'maximum', check: 'none' });
    case 'custom': {
      if (typeof cpu.model !== 'string' || !/^[A-Za-z0-9_.+-]+$/.test(cpu.model)) {
        throw new XmlSpecError('cpu.model', `'${String(cpu.model)}' is not a CPU model name`);
      }
      const fallback = oneOf('cpu.fallback', cpu.fallback ?? 'allow', ['allow', 'forbid']);
      return el('cpu', { mode: 'custom', match: 'exact', check: 'none' }, el('model', { fallback }, cpu.model));
    }
    default:
      throw new XmlSpecError('cpu.mode', `'${String((cpu as { mode: unknown }).mode)}' is not a CPU mode`);
  }
}

function serialXml(spec: DomainSpec): XmlElement[] {
  const s = spec.serial ?? {};
  const log =
    s.logFile === undefined
      ? undefined
      : el('log', { file: checkAbsPath('serial.logFile', s.logFile), append: s.append === false ? 'off' : 'on' });
  return [
    el('serial', { type: 'pty' }, log, el('target', { port: 0 })),
    el('console', { type: 'pty' }, el('target', { type: 'serial', port: 0 })),
  ];
}

function graphicsXml(spec: DomainSpec): XmlElement | undefined {
  const g = spec.graphics ?? { type: 'none' };
  if (g.type === 'none') return undefined;
  if (g.type !== 'vnc') throw new XmlSpecError('graphics.type', `'${String((g as { type: unknown }).type)}' is not none or vnc`);
  const listen = formatIpv4(parseIpv4('graphics.listen', g.listen ?? '127.0.0.1'));
  const port = g.port ?? 'auto';
  const portAttrs =
    port === 'auto'
      ? { port: '-1', autoport: 'yes' }
      : { port: checkIntRange('graphics.port', port, 5900, 65535), autoport: 'no' };
  return el('graphics', { type: 'vnc', ...portAttrs, listen }, el('listen', { type: 'address', address: listen }));
}

function metadataXml(m: VmenvMetadata): XmlElement {
  const p = VMENV_METADATA_PREFIX;
  return el(
    'metadata',
    {},
    el(
      `${p}:${VMENV_METADATA_ELEMENT}`,
      { [`xmlns:${p}`]: VMENV_DOMAIN_XMLNS },
      el(`${p}:project`, {}, checkAbsPath('metadata.projectPath', m.projectPath)),
      el(`${p}:name`, {}, checkString('metadata.machine', m.machine)),
      m.box !== undefined && el(`${p}:box`, {}, checkString('metadata.box', m.box)),
    ),
  );
}

/** Build the domain's element tree (see domainXml). */
export function domainElement(spec: DomainSpec): XmlElement {
  const type = oneOf('type', spec.type, ['kvm', 'qemu']);
  const name = checkObjectName('name', spec.name);
  const uuid = spec.uuid === undefined ? undefined : checkUuid('uuid', spec.uuid);
  const memory = checkPositiveInt('memoryMiB', spec.memoryMiB);
  const vcpus = checkIntRange('vcpus', spec.vcpus, 1, 4096);
  const arch = oneOf('arch', spec.arch ?? 'x86_64', ['x86_64']);
  const machine = spec.machine ?? 'pc';
  if (!/^[A-Za-z0-9_.-]+$/.test(machine)) throw new XmlSpecError('machine', `'${machine}' is not a machine type`);
  const q35 = isQ35(machine);

  const { os, smm } = osXml(spec, arch, machine, q35);
  const boots: BootEntry[] = [];

  const disks = spec.disks ?? [];
  const diskEls = disks.map((d, i) => diskXml(d, i, q35, boots));
  checkUnique(disks, (d) => d.target, (i) => `disks[${i}].target`, 'target');
  const scsi = disks.some((d) => d.bus === 'scsi');

  const interfaces = spec.interfaces ?? [];
  const nicEls: XmlElement[] = [];
  const generatedArgs: string[] = [];
  let userIndex = 0;
  interfaces.forEach((n, i) => {
    const out = interfaceXml(n, i, userIndex, boots);
    if (Array.isArray(out)) {
      generatedArgs.push(...out);
      userIndex += 1;
    } else nicEls.push(out as XmlElement);
  });
  checkUnique(interfaces, (n) => n.mac?.toLowerCase(), (i) => `interfaces[${i}].mac`, 'MAC address');
  const forwards = interfaces.flatMap((n, i) =>
    n.type === 'user'
      ? (n.portForwards ?? []).map((p, j) => ({ ...normalizePortForward(`interfaces[${i}].portForwards[${j}]`, p), field: `interfaces[${i}].portForwards[${j}].hostPort` }))
      : [],
  );
  checkUnique(forwards, (p) => `${p.protocol}:${p.hostAddress}:${p.hostPort}`, (k) => forwards[k]?.field ?? '', 'host port');
  checkUnique(boots, (b) => String(b.order), (k) => boots[k]?.field ?? '', 'boot order');

  const filesystems = spec.filesystems ?? [];
  const fsEls = filesystems.map((fs, i) => filesystemXml(fs, i));
  checkUnique(filesystems, (fs) => fs.target, (i) => `filesystems[${i}].target`, 'mount tag');
  const virtiofs = filesystems.some((fs) => fs.driver === 'virtiofs');
  if (virtiofs && spec.sharedMemory === false) {
    throw new XmlSpecError('sharedMemory', 'virtiofs needs shared memory', 'Leave sharedMemory out or set it to true.');
  }
  const shared = spec.sharedMemory ?? virtiofs;

  const qemuArgs = [...generatedArgs, ...(spec.qemuArgs ?? []).map((a, i) => checkString(`qemuArgs[${i}]`, a))];

  const onPoweroff = oneOf('onPoweroff', spec.onPoweroff ?? 'destroy', LIFECYCLE);
  const onReboot = oneOf('onReboot', spec.onReboot ?? 'restart', LIFECYCLE);
  const onCrash = oneOf('onCrash', spec.onCrash ?? 'destroy', CRASH);

  return el(
    'domain',
    { type, 'xmlns:qemu': qemuArgs.length > 0 ? QEMU_XMLNS : undefined },
    el('name', {}, name),
    uuid !== undefined && el('uuid', {}, uuid),
    spec.description !== undefined && el('description', {}, checkString('description', spec.description)),
    spec.metadata !== undefined && metadataXml(spec.metadata),
    el('memory', { unit: 'MiB' }, memory),
    el('vcpu', {}, vcpus),
    shared && el('memoryBacking', {}, el('source', { type: 'memfd' }), el('access', { mode: 'shared' })),
    os,
    el('features', {}, el('acpi'), el('apic'), smm && el('smm', { state: 'on' })),
    cpuXml(spec),
    el('clock', { offset: 'utc' }),
    el('on_poweroff', {}, onPoweroff),
    el('on_reboot', {}, onReboot),
    el('on_crash', {}, onCrash),
    el(
      'devices',
      {},
      diskEls,
      scsi && el('controller', { type: 'scsi', index: 0, model: 'virtio-scsi' }),
      // No USB controller and no memory balloon (libvirt adds both unless told not to):
      // vmenv attaches no USB device and never balloons, and each PCI device costs the
      // firmware and the guest kernel probing time at every boot.
      el('controller', { type: 'usb', model: 'none' }),
      fsEls,
      nicEls,
      serialXml(spec),
      spec.guestAgent !== false &&
        el('channel', { type: 'unix' }, el('source', { mode: 'bind', path: agentSocketPath(spec.guestAgentSocket) }), el('target', { type: 'virtio', name: 'org.qemu.guest_agent.0' })),
      graphicsXml(spec),
      el('memballoon', { model: 'none' }),
      spec.rng !== false && el('rng', { model: 'virtio' }, el('backend', { model: 'random' }, '/dev/urandom')),
    ),
    qemuArgs.length > 0 && el('qemu:commandline', {}, qemuArgs.map((value) => el('qemu:arg', { value }))),
  );
}

/**
 * A libvirt `<domain>` document for the spec. Throws XmlSpecError (a UserError) naming
 * the field when a value is invalid, XmlCharacterError when a string holds a character
 * XML cannot carry.
 */
function agentSocketPath(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  if (!path.startsWith('/')) throw new XmlSpecError('guestAgentSocket', `must be an absolute path, got '${path}'`);
  if (Buffer.byteLength(path) > 107) throw new XmlSpecError('guestAgentSocket', `is longer than a unix socket path may be (107 bytes): '${path}'`);
  return path;
}

export function domainXml(spec: DomainSpec): string {
  return renderXml(domainElement(spec));
}
