/**
 * Network XML: `networkXml(spec)` turns a typed NetworkSpec into a libvirt `<network>`
 * document (a virtual network with a bridge, optional NAT/routing, dnsmasq DHCP).
 * Pure: no I/O.
 */
import { XmlSpecError } from './errors.js';
import {
  checkDeviceName,
  checkIntRange,
  checkMac,
  checkObjectName,
  checkUnique,
  checkUuid,
  formatIpv4,
  parseIpv4,
} from './validate.js';
import { el, renderXml } from './writer.js';
import type { XmlElement } from './writer.js';

/**
 * How guests reach beyond the host: `nat` (masquerade, the default), `route` (plain
 * routing, the outside needs a route back), `open` (routing without any firewall rules
 * from libvirt), `none` (isolated: guests and host only; no `<forward>` element).
 * `dev` restricts forwarding to one host interface (nat and route only).
 */
export interface NetworkForward {
  mode: 'nat' | 'route' | 'open' | 'none';
  dev?: string;
}

/** The host bridge. Left out, libvirt names it `virbrN`; `stp` default true, `delay` default 0 s. */
export interface NetworkBridge {
  name?: string;
  stp?: boolean;
  delay?: number;
}

/** A fixed DHCP lease: the guest with this MAC always gets this IP (and DNS name). */
export interface DhcpHost {
  mac: string;
  ip: string;
  /** Host name (starts with a letter; letters, digits, `-`, `.`). */
  name?: string;
}

export interface NetworkIpv4 {
  /** The host's address on the network, which is also the guests' gateway. */
  address: string;
  /** Prefix length, 8-30. */
  prefix: number;
  /**
   * dnsmasq DHCP. `range` is the dynamic pool (both ends inside the subnet, not the
   * host's address, at most 65535 addresses); `hosts` are fixed leases, also inside the subnet. Left out: no DHCP.
   */
  dhcp?: {
    range?: { start: string; end: string };
    hosts?: readonly DhcpHost[];
  };
}

export interface NetworkSpec {
  name: string;
  /** Left out, libvirt generates one. */
  uuid?: string;
  /** Default `{ mode: 'nat' }`. Every mode but `none` needs `ipv4`. */
  forward?: NetworkForward;
  bridge?: NetworkBridge;
  /** MAC of the bridge itself; left out, libvirt generates one. */
  mac?: string;
  /** DNS domain served by the network's dnsmasq; `localOnly` (default true) keeps its queries local. */
  domain?: { name: string; localOnly?: boolean };
  /** MTU of the bridge (68-65535); left out, 1500. */
  mtu?: number;
  ipv4?: NetworkIpv4;
  /**
   * Options passed to the network's dnsmasq as they are (`no-ping`), through libvirt's
   * dnsmasq namespace.
   */
  dnsmasqOptions?: readonly string[];
}

/** Namespace of libvirt's dnsmasq pass-through (`<dnsmasq:options>`). */
export const DNSMASQ_XMLNS = 'http://libvirt.org/schemas/network/dnsmasq/1.0';

function ipv4Xml(ip: NetworkIpv4): XmlElement {
  const address = parseIpv4('ipv4.address', ip.address);
  const prefix = checkIntRange('ipv4.prefix', ip.prefix, 8, 30);
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const network = (address & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  const cidr = `${formatIpv4(network)}/${prefix}`;
  if (address === network || address === broadcast) {
    throw new XmlSpecError('ipv4.address', `${ip.address} is the ${address === network ? 'network' : 'broadcast'} address of ${cidr}`);
  }
  const inside = (field: string, value: string): number => {
    const n = parseIpv4(field, value);
    if (((n & mask) >>> 0) !== network || n === network || n === broadcast) {
      throw new XmlSpecError(field, `${value} is not a host address in ${cidr}`);
    }
    if (n === address) throw new XmlSpecError(field, `${value} is the host's own address on the network`);
    return n;
  };

  let dhcp: XmlElement | undefined;
  if (ip.dhcp !== undefined) {
    const range = ip.dhcp.range;
    let rangeEl: XmlElement | undefined;
    if (range !== undefined) {
      const start = inside('ipv4.dhcp.range.start', range.start);
      const end = inside('ipv4.dhcp.range.end', range.end);
      if (start > end) throw new XmlSpecError('ipv4.dhcp.range', `starts (${range.start}) after it ends (${range.end})`);
      if (end - start + 1 > 65535) {
        throw new XmlSpecError('ipv4.dhcp.range', `${range.start}-${range.end} holds more than 65535 addresses, libvirt's limit`);
      }
      if (start <= address && address <= end) {
        throw new XmlSpecError('ipv4.dhcp.range', `${range.start}-${range.end} includes the host's own address ${ip.address}`);
      }
      rangeEl = el('range', { start: formatIpv4(start), end: formatIpv4(end) });
    }
    const hosts = ip.dhcp.hosts ?? [];
    const hostEls = hosts.map((h, i) => {
      const f = `ipv4.dhcp.hosts[${i}]`;
      const mac = checkMac(`${f}.mac`, h.mac);
      const addr = formatIpv4(inside(`${f}.ip`, h.ip));
      if (h.name !== undefined && !/^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)*$/.test(h.name)) {
        throw new XmlSpecError(`${f}.name`, `'${h.name}' is not a host name (starts with a letter; letters, digits, '-', '.')`);
      }
      return el('host', { mac, name: h.name, ip: addr });
    });
    checkUnique(hosts, (h) => h.mac.toLowerCase(), (i) => `ipv4.dhcp.hosts[${i}].mac`, 'MAC address');
    checkUnique(hosts, (h) => formatIpv4(parseIpv4('ip', h.ip)), (i) => `ipv4.dhcp.hosts[${i}].ip`, 'IP address');
    checkUnique(hosts, (h) => h.name?.toLowerCase(), (i) => `ipv4.dhcp.hosts[${i}].name`, 'host name');
    dhcp = el('dhcp', {}, rangeEl, hostEls);
  }
  return el('ip', { address: formatIpv4(address), prefix }, dhcp);
}

/** Build the network's element tree (see networkXml). */
export function networkElement(spec: NetworkSpec): XmlElement {
  const name = checkObjectName('name', spec.name);
  const uuid = spec.uuid === undefined ? undefined : checkUuid('uuid', spec.uuid);
  const fwd = spec.forward ?? { mode: 'nat' };
  const modes = ['nat', 'route', 'open', 'none'];
  if (!modes.includes(fwd.mode)) {
    throw new XmlSpecError('forward.mode', `'${String(fwd.mode)}' is not one of ${modes.join(', ')}`);
  }
  if (fwd.dev !== undefined && fwd.mode !== 'nat' && fwd.mode !== 'route') {
    throw new XmlSpecError('forward.dev', `only applies to nat and route networks, not ${fwd.mode}`);
  }
  const dev = fwd.dev === undefined ? undefined : checkDeviceName('forward.dev', fwd.dev);
  const forward = fwd.mode === 'none' ? undefined : el('forward', { mode: fwd.mode, dev });
  if (fwd.mode !== 'none' && spec.ipv4 === undefined) {
    throw new XmlSpecError('ipv4', `${fwd.mode} forwarding needs an IPv4 address for the host on the network`, "Give ipv4, or use forward mode 'none' for a network without addresses.");
  }

  const b = spec.bridge;
  const bridge =
    b === undefined
      ? undefined
      : el('bridge', {
          name: b.name === undefined ? undefined : checkDeviceName('bridge.name', b.name),
          stp: b.stp === false ? 'off' : 'on',
          delay: b.delay === undefined ? 0 : checkIntRange('bridge.delay', b.delay, 0, 3600),
        });
  const mac = spec.mac === undefined ? undefined : el('mac', { address: checkMac('mac', spec.mac) });
  const mtu = spec.mtu === undefined ? undefined : el('mtu', { size: checkIntRange('mtu', spec.mtu, 68, 65535) });
  let domain: XmlElement | undefined;
  if (spec.domain !== undefined) {
    const d = spec.domain.name;
    if (typeof d !== 'string' || !/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(d)) {
      throw new XmlSpecError('domain.name', `'${String(d)}' is not a DNS domain name`);
    }
    domain = el('domain', { name: d, localOnly: spec.domain.localOnly === false ? 'no' : 'yes' });
  }
  const options = (spec.dnsmasqOptions ?? []).map((o, i) => {
    if (typeof o !== 'string' || !/^[a-z][a-z0-9-]*(=[^\s]+)?$/.test(o)) {
      throw new XmlSpecError(`dnsmasqOptions[${i}]`, `'${String(o)}' is not a dnsmasq option (name or name=value)`);
    }
    return el('dnsmasq:option', { value: o });
  });
  return el(
    'network',
    { 'xmlns:dnsmasq': options.length > 0 ? DNSMASQ_XMLNS : undefined },
    el('name', {}, name),
    uuid !== undefined && el('uuid', {}, uuid),
    forward,
    bridge,
    mac,
    mtu,
    domain,
    spec.ipv4 !== undefined && ipv4Xml(spec.ipv4),
    options.length > 0 && el('dnsmasq:options', {}, options),
  );
}

/**
 * A libvirt `<network>` document for the spec. Throws XmlSpecError naming the field
 * when a value is invalid (addresses outside the subnet, duplicate leases, …).
 */
export function networkXml(spec: NetworkSpec): string {
  return renderXml(networkElement(spec));
}
