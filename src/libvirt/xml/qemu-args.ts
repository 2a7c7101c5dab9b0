/**
 * QEMU command-line arguments for what libvirt 9.0 cannot express in domain XML:
 * a user-mode (slirp) NIC with host port forwards. libvirt only supports
 * `<portForward>` with the passt backend, so vmenv declares such a NIC directly to QEMU
 * through `<qemu:commandline>` (see domain.ts), as `-netdev user,…,hostfwd=…` plus a
 * `-device` for the NIC model.
 */
import { XmlSpecError } from './errors.js';
import { checkIntRange, checkMac, checkPositiveInt, formatIpv4, parseIpv4 } from './validate.js';

/** A NIC model QEMU and libvirt both know. */
export type NicModel = 'virtio' | 'e1000' | 'e1000e' | 'rtl8139';

/** A host port forwarded into the guest. */
export interface PortForward {
  /** Default `tcp`. */
  protocol?: 'tcp' | 'udp';
  /** The host address to listen on. Default `127.0.0.1` (loopback only). */
  hostAddress?: string;
  /** The host port, 1-65535. */
  hostPort: number;
  /** The guest port, 1-65535. */
  guestPort: number;
}

export interface UserNetArgsSpec {
  /** QEMU id for the netdev (letters, digits, `-`, `_`, `.`; starts with a letter). */
  id: string;
  /** Guest MAC. Default: QEMU picks 52:54:00:12:34:56 (+ index). */
  mac?: string;
  /** Default `virtio`. */
  model?: NicModel;
  /** QEMU bootindex for network boot (same meaning as libvirt's `<boot order>`). */
  bootOrder?: number;
  portForwards?: readonly PortForward[];
  /** PCI slot on the root bus (1-31), so the NIC never takes one libvirt assigns to its own devices. */
  pciSlot?: number;
}

/** The slot of the first user-mode NIC; more go downwards. */
export const USER_NIC_TOP_SLOT = 0x1e;

const QEMU_DEVICE: Readonly<Record<NicModel, string>> = {
  virtio: 'virtio-net-pci',
  e1000: 'e1000',
  e1000e: 'e1000e',
  rtl8139: 'rtl8139',
};

/** QEMU's option syntax: a comma inside a value is written twice. */
export function qemuOptValue(value: string): string {
  return value.replace(/,/g, ',,');
}

/** Check one forward and return it with its defaults filled in. */
export function normalizePortForward(field: string, fwd: PortForward): Required<PortForward> {
  const protocol = fwd.protocol ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') {
    throw new XmlSpecError(`${field}.protocol`, `'${String(protocol)}' is not tcp or udp`);
  }
  const hostAddress = formatIpv4(parseIpv4(`${field}.hostAddress`, fwd.hostAddress ?? '127.0.0.1'));
  return {
    protocol,
    hostAddress,
    hostPort: checkIntRange(`${field}.hostPort`, fwd.hostPort, 1, 65535),
    guestPort: checkIntRange(`${field}.guestPort`, fwd.guestPort, 1, 65535),
  };
}

/**
 * `['-netdev', 'user,id=…,hostfwd=tcp:127.0.0.1:2222-:22', '-device', 'virtio-net-pci,netdev=…,mac=…']`.
 * `field` prefixes error messages (the spec path of the NIC).
 */
export function userNetQemuArgs(spec: UserNetArgsSpec, field = 'interface'): string[] {
  if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(spec.id)) {
    throw new XmlSpecError(`${field}.id`, `'${spec.id}' is not a QEMU id`);
  }
  const model = spec.model ?? 'virtio';
  const device = QEMU_DEVICE[model];
  if (device === undefined) throw new XmlSpecError(`${field}.model`, `'${String(model)}' is not a known NIC model`);
  const netdev = [`user`, `id=${qemuOptValue(spec.id)}`];
  (spec.portForwards ?? []).forEach((f, i) => {
    const fwd = normalizePortForward(`${field}.portForwards[${i}]`, f);
    netdev.push(`hostfwd=${fwd.protocol}:${fwd.hostAddress}:${fwd.hostPort}-:${fwd.guestPort}`);
  });
  const dev = [device, `netdev=${qemuOptValue(spec.id)}`];
  if (spec.mac !== undefined) dev.push(`mac=${checkMac(`${field}.mac`, spec.mac)}`);
  if (spec.bootOrder !== undefined) dev.push(`bootindex=${checkPositiveInt(`${field}.bootOrder`, spec.bootOrder)}`);
  if (spec.pciSlot !== undefined) dev.push(`addr=0x${checkIntRange(`${field}.pciSlot`, spec.pciSlot, 1, 31).toString(16)}`);
  return ['-netdev', netdev.join(','), '-device', dev.join(',')];
}
