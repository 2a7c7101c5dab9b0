/**
 * Choosing the management network's subnet so that it collides with nothing the host
 * already reaches: its interfaces' addresses, its routes (every table: VPNs and policy
 * routing put theirs outside `main`), and other libvirt networks. And, when a subnet is
 * taken, saying by what ("192.168.122.0/24 is used by virbr0 (route …)").
 *
 * The pure part (CIDR arithmetic, parsers of `ip -j route`, `ip -j addr`,
 * /proc/net/route and /proc/net/ipv6_route, picking, explaining) is separate from the
 * one function that runs `ip` (`hostRoutesAndAddresses`).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6, procHexWord, type IpFamily } from '../util/ip.js';

/** A network prefix: `address` is any address inside it (normalized by `normalizeCidr`). */
export interface Cidr {
  address: string;
  prefix: number;
}

/** What on the host uses a prefix. */
export type UsedKind = 'route' | 'address' | 'network';

/** A prefix the host uses, with what uses it, for explanations. */
export interface UsedPrefix extends Cidr {
  kind: UsedKind;
  /** The interface (route `dev`, address owner, or a libvirt network's bridge). */
  dev?: string;
  /** Routes: the routing table when not `main`. */
  table?: string;
  /** Routes: `unicast` (left out), `local`, `blackhole`, `unreachable`, … */
  type?: string;
  /** Routes: the gateway. */
  via?: string;
  /** libvirt networks: the network's name. */
  name?: string;
  /** How to show it: "route 10.8.0.0/16 via 10.8.0.1 dev tun0", "address 192.168.1.20/24 on eth0", "192.168.122.1/24 on virbr0" (a network). */
  text: string;
}

/** One reason a subnet is taken. */
export interface SubnetConflict {
  cidr: Cidr;
  used: UsedPrefix;
}

// --- CIDR arithmetic -----------------------------------------------------------------

interface Span {
  family: IpFamily;
  /** First address of the prefix. */
  start: bigint;
  /** Last address of the prefix. */
  end: bigint;
}

function bitsOf(family: IpFamily): number {
  return family === 'ipv4' ? 32 : 128;
}

function addressValue(text: string): { family: IpFamily; value: bigint } | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 'ipv4', value: BigInt(v4) };
  const v6 = parseIpv6(text);
  if (v6 !== undefined) return { family: 'ipv6', value: v6 };
  return undefined;
}

function spanOf(c: Cidr): Span | undefined {
  const a = addressValue(c.address);
  if (a === undefined) return undefined;
  const bits = bitsOf(a.family);
  if (!Number.isInteger(c.prefix) || c.prefix < 0 || c.prefix > bits) return undefined;
  const hostBits = BigInt(bits - c.prefix);
  const size = 1n << hostBits;
  const start = (a.value >> hostBits) << hostBits;
  return { family: a.family, start, end: start + size - 1n };
}

function formatValue(family: IpFamily, v: bigint): string {
  return family === 'ipv4' ? formatIpv4(Number(v)) : formatIpv6(v);
}

/** The family of a CIDR, or undefined when its address is not an IP address. */
export function cidrFamily(c: Cidr): IpFamily | undefined {
  return addressValue(c.address)?.family;
}

/**
 * `"192.168.1.0/24"`, `"10.0.0.1"` (a host: /32), `"fd00::/64"`, `"default"` (0.0.0.0/0;
 * `"default"` with `family: 'ipv6'` is ::/0). Undefined when it is none of these.
 */
export function parseCidr(text: string, family: IpFamily = 'ipv4'): Cidr | undefined {
  const t = text.trim();
  if (t === 'default') return family === 'ipv4' ? { address: '0.0.0.0', prefix: 0 } : { address: '::', prefix: 0 };
  const slash = t.indexOf('/');
  const addr = slash < 0 ? t : t.slice(0, slash);
  const a = addressValue(addr);
  if (a === undefined) return undefined;
  let prefix = bitsOf(a.family);
  if (slash >= 0) {
    const p = t.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > bitsOf(a.family)) return undefined;
  }
  return { address: formatValue(a.family, a.value), prefix };
}

/** The prefix with its address set to the network address (192.168.1.77/24 → 192.168.1.0/24). */
export function normalizeCidr(c: Cidr): Cidr {
  const s = spanOf(c);
  if (s === undefined) throw new Error(`not a CIDR: ${c.address}/${c.prefix}`);
  return { address: formatValue(s.family, s.start), prefix: c.prefix };
}

/** `192.168.1.0/24` (network address first). */
export function formatCidr(c: Cidr): string {
  const s = spanOf(c);
  return s === undefined ? `${c.address}/${c.prefix}` : `${formatValue(s.family, s.start)}/${c.prefix}`;
}

/** Whether two prefixes share any address (same family only). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const x = spanOf(a);
  const y = spanOf(b);
  if (x === undefined || y === undefined || x.family !== y.family) return false;
  return x.start <= y.end && y.start <= x.end;
}

/** Whether `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  const x = spanOf(outer);
  const y = spanOf(inner);
  if (x === undefined || y === undefined || x.family !== y.family) return false;
  return x.start <= y.start && y.end <= x.end;
}

/** Whether `ip` lies inside `c`. */
export function cidrIncludes(c: Cidr, ip: string): boolean {
  const a = addressValue(ip);
  return a !== undefined && cidrContains(c, { address: ip, prefix: bitsOf(a.family) });
}

/**
 * The addresses a libvirt NAT network on `c` (an IPv4 prefix of /8 to /30) uses: the
 * host's address on the bridge (the first host address, the guests' gateway) and a DHCP
 * range of everything after it up to the last host address (at most 65535 addresses).
 */
export function networkAddresses(c: Cidr): { gateway: string; prefix: number; dhcpStart: string; dhcpEnd: string } {
  const s = spanOf(c);
  if (s === undefined || s.family !== 'ipv4' || c.prefix < 8 || c.prefix > 30) {
    throw new Error(`not an IPv4 prefix of /8 to /30: ${c.address}/${c.prefix}`);
  }
  const gateway = s.start + 1n;
  const dhcpStart = gateway + 1n;
  let dhcpEnd = s.end - 1n;
  if (dhcpEnd - dhcpStart + 1n > 65535n) dhcpEnd = dhcpStart + 65534n;
  return {
    gateway: formatValue('ipv4', gateway),
    prefix: c.prefix,
    dhcpStart: formatValue('ipv4', dhcpStart),
    dhcpEnd: formatValue('ipv4', dhcpEnd),
  };
}

// --- What counts as a conflict ---------------------------------------------------------

/**
 * Default routes (0.0.0.0/0, ::/0) do not make a subnet taken: everything "overlaps"
 * them, and a more specific route to the new bridge wins anyway. The same goes for the
 * halves that VPN clients install instead of replacing the default route (0.0.0.0/1 +
 * 128.0.0.0/1, OpenVPN's def1) and for 2000::/3 (all global unicast).
 */
export function isDefaultLike(c: Cidr): boolean {
  const family = cidrFamily(c);
  if (family === 'ipv4') return c.prefix <= 1;
  if (family === 'ipv6') return c.prefix <= 3;
  return false;
}

/** Route types that say nothing about a subnet being in use. */
const IGNORED_ROUTE_TYPES = new Set(['broadcast', 'multicast', 'anycast']);

function counts(u: UsedPrefix): boolean {
  if (isDefaultLike(u)) return false;
  if (u.kind === 'route' && u.type !== undefined && IGNORED_ROUTE_TYPES.has(u.type)) return false;
  return spanOf(u) !== undefined;
}

/** The used prefixes that overlap `cidr`, in the order given (defaults and broadcast routes never do). */
export function subnetConflicts(cidr: Cidr, used: readonly UsedPrefix[]): SubnetConflict[] {
  return used.filter((u) => counts(u) && cidrsOverlap(cidr, u)).map((u) => ({ cidr, used: u }));
}

/**
 * One sentence: "192.168.122.0/24 is used by virbr0 (route 192.168.122.0/24 dev virbr0
 * proto kernel; address 192.168.122.1/24 on virbr0)". Grouped by interface or network;
 * empty string when there is no conflict.
 */
export function describeConflicts(cidr: Cidr, conflicts: readonly SubnetConflict[]): string {
  if (conflicts.length === 0) return '';
  const groups = new Map<string, string[]>();
  for (const { used } of conflicts) {
    const who =
      used.kind === 'network'
        ? `libvirt network '${used.name ?? '?'}'`
        : used.dev !== undefined
          ? used.dev
          : used.kind === 'route'
            ? `${/^[aeiou]/.test(used.type ?? 'unicast') ? 'an' : 'a'} ${used.type ?? 'unicast'} route${used.table !== undefined ? ` in table ${used.table}` : ''}`
            : 'an address';
    const list = groups.get(who) ?? [];
    if (!list.includes(used.text)) list.push(used.text);
    groups.set(who, list);
  }
  const parts = [...groups].map(([who, texts]) => `${who} (${texts.join('; ')})`);
  return `${formatCidr(cidr)} is used by ${parts.join(' and ')}`;
}

/** A configured subnet is taken by something else on the host. */
export class SubnetInUseError extends UserError {
  readonly cidr: Cidr;
  readonly conflicts: SubnetConflict[];

  constructor(cidr: Cidr, conflicts: SubnetConflict[], suggestion: Cidr | undefined, field: string) {
    super(`${describeConflicts(cidr, conflicts)}.`, {
      hint:
        `Set ${field} to a free subnet` +
        (suggestion !== undefined ? ` (${formatCidr(suggestion)} is free)` : '') +
        ', or leave it out and vmenv picks a free one.',
    });
    this.name = 'SubnetInUseError';
    this.cidr = cidr;
    this.conflicts = conflicts;
  }
}

/**
 * Throws a SubnetInUseError ("192.168.122.0/24 is used by virbr0 (route …)", with a free
 * subnet as hint) when something in `used` overlaps `cidr`. The network's own bridge or
 * libvirt network (when it already exists: a second `up`) is not a conflict.
 */
export function assertSubnetFree(
  cidr: Cidr,
  used: readonly UsedPrefix[],
  options: { ownBridge?: string; ownNetwork?: string; field?: string } = {},
): void {
  const others = used.filter(
    (u) =>
      !(options.ownBridge !== undefined && u.dev === options.ownBridge) &&
      !(options.ownNetwork !== undefined && u.kind === 'network' && u.name === options.ownNetwork),
  );
  const conflicts = subnetConflicts(cidr, others);
  if (conflicts.length === 0) return;
  throw new SubnetInUseError(cidr, conflicts, pickFreeSubnet(others), options.field ?? 'network.subnet');
}

// --- Picking ---------------------------------------------------------------------------

/**
 * The default candidates, in order: the /24s 192.168.121.0 … 192.168.254.0 (the first
 * is vagrant-libvirt's management network, so machines move over unchanged), then the
 * /24s of 10.100.0.0 … 10.254.255.0 and 10.0.0.0 … 10.99.255.0. Lazy.
 */
export function* defaultCandidates(): Generator<Cidr> {
  for (let c = 121; c <= 254; c++) yield { address: `192.168.${c}.0`, prefix: 24 };
  const tens = [...range(100, 254), ...range(0, 99)];
  for (const b of tens) for (let c = 0; c <= 255; c++) yield { address: `10.${b}.${c}.0`, prefix: 24 };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * The first candidate (default: `defaultCandidates()`) that no used prefix overlaps,
 * normalized to its network address; undefined when every candidate is taken.
 * Default routes (see `isDefaultLike`) and broadcast/multicast routes never count.
 * Plain Cidrs in `used` count as taken; UsedPrefix entries say by what.
 */
export function pickFreeSubnet(used: readonly (Cidr | UsedPrefix)[], candidates?: Iterable<Cidr>): Cidr | undefined {
  const taken: Span[] = [];
  for (const u of used) {
    const full: UsedPrefix = 'kind' in u ? u : { ...u, kind: 'route', text: formatCidr(u) };
    if (!counts(full)) continue;
    const s = spanOf(full);
    if (s !== undefined) taken.push(s);
  }
  for (const c of candidates ?? defaultCandidates()) {
    const s = spanOf(c);
    if (s === undefined) continue;
    if (!taken.some((t) => t.family === s.family && t.start <= s.end && s.start <= t.end)) return normalizeCidr(c);
  }
  return undefined;
}

// --- Parsers of the host's view --------------------------------------------------------

/** A problem with the host's data: the line or entry skipped and why. */
export interface HostDataProblem {
  where: string;
  reason: string;
}

interface IpRouteJson {
  dst?: unknown;
  type?: unknown;
  table?: unknown;
  dev?: unknown;
  gateway?: unknown;
  protocol?: unknown;
  family?: unknown;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function parseJsonArray(text: string, what: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text.trim() === '' ? '[]' : text);
  } catch (err) {
    throw new Error(`${what}: not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(value)) throw new Error(`${what}: not a JSON array`);
  return value;
}

function routeText(r: { dst: string; type?: string; via?: string; dev?: string; table?: string; protocol?: string }): string {
  const words = ['route'];
  if (r.type !== undefined) words.push(r.type);
  words.push(r.dst);
  if (r.via !== undefined) words.push('via', r.via);
  if (r.dev !== undefined) words.push('dev', r.dev);
  if (r.table !== undefined) words.push('table', r.table);
  if (r.protocol !== undefined) words.push('proto', r.protocol);
  return words.join(' ');
}

/**
 * `ip -j route show table all` (and `ip -j -6 route …`): every route as a UsedPrefix
 * (`dst` "default" is 0.0.0.0/0 or ::/0 by its gateway's family; a bare address is a
 * host route). Entries without a usable `dst` are reported in `problems`.
 */
export function parseIpRouteJson(
  text: string,
  problems: HostDataProblem[] = [],
  /** The family asked for (`ip -4`/`ip -6`); left out, told from the entry. */
  family?: IpFamily,
): UsedPrefix[] {
  const out: UsedPrefix[] = [];
  parseJsonArray(text, 'ip -j route').forEach((entry, i) => {
    const r = (entry ?? {}) as IpRouteJson;
    const dst = str(r.dst);
    if (dst === undefined) {
      problems.push({ where: `ip route entry ${i}`, reason: 'no dst' });
      return;
    }
    const gateway = str(r.gateway);
    const entryFamily: IpFamily =
      family ?? (r.family === 'inet6' || (gateway?.includes(':') ?? false) || dst.includes(':') ? 'ipv6' : 'ipv4');
    const cidr = parseCidr(dst, entryFamily);
    if (cidr === undefined) {
      problems.push({ where: `ip route entry ${i}`, reason: `dst ${JSON.stringify(dst)} is not a prefix` });
      return;
    }
    const type = str(r.type);
    const table = str(r.table);
    const dev = str(r.dev);
    const protocol = str(r.protocol);
    const u: UsedPrefix = {
      ...cidr,
      kind: 'route',
      text: routeText({
        dst: dst === 'default' ? 'default' : formatCidr(cidr),
        ...(type !== undefined && type !== 'unicast' ? { type } : {}),
        ...(gateway !== undefined ? { via: gateway } : {}),
        ...(dev !== undefined ? { dev } : {}),
        ...(table !== undefined && table !== 'main' ? { table } : {}),
        ...(protocol !== undefined ? { protocol } : {}),
      }),
    };
    if (type !== undefined && type !== 'unicast') u.type = type;
    if (table !== undefined && table !== 'main') u.table = table;
    if (dev !== undefined) u.dev = dev;
    if (gateway !== undefined) u.via = gateway;
    out.push(u);
  });
  return out;
}

interface IpAddrJson {
  ifname?: unknown;
  addr_info?: unknown;
}
interface AddrInfoJson {
  family?: unknown;
  local?: unknown;
  address?: unknown;
  prefixlen?: unknown;
  label?: unknown;
}

/**
 * `ip -j addr`: every address with its prefix as a UsedPrefix (the subnet it sits in).
 * A point-to-point address with a peer (`address`) gives the peer's prefix too.
 */
export function parseIpAddrJson(text: string, problems: HostDataProblem[] = []): UsedPrefix[] {
  const out: UsedPrefix[] = [];
  parseJsonArray(text, 'ip -j addr').forEach((entry, i) => {
    const link = (entry ?? {}) as IpAddrJson;
    const dev = str(link.ifname);
    if (!Array.isArray(link.addr_info)) return;
    for (const raw of link.addr_info as unknown[]) {
      const a = (raw ?? {}) as AddrInfoJson;
      const local = str(a.local);
      const prefix = a.prefixlen;
      if (local === undefined || typeof prefix !== 'number') {
        // Link-level entries (e.g. an interface with no address) carry neither.
        if (local !== undefined || prefix !== undefined) {
          problems.push({ where: `ip addr ${dev ?? `entry ${i}`}`, reason: 'an address without local or prefixlen' });
        }
        continue;
      }
      for (const addr of [local, str(a.address)]) {
        if (addr === undefined) continue;
        const c = parseCidr(`${addr}/${prefix}`);
        if (c === undefined) {
          problems.push({ where: `ip addr ${dev ?? `entry ${i}`}`, reason: `${addr}/${prefix} is not a prefix` });
          continue;
        }
        const u: UsedPrefix = {
          ...c,
          kind: 'address',
          text: `address ${addr}/${prefix}${addr !== local ? ` (peer of ${local})` : ''}${dev !== undefined ? ` on ${dev}` : ''}`,
        };
        if (dev !== undefined) u.dev = dev;
        out.push(u);
      }
    }
  });
  return out;
}

function maskToPrefix(mask: number): number | undefined {
  let p = 0;
  while (p < 32 && ((mask >>> (31 - p)) & 1) === 1) p++;
  // A contiguous mask has nothing set after its ones.
  return p === 32 || (mask << p) >>> 0 === 0 ? p : undefined;
}

/** /proc/net/route (IPv4, main table only): Iface, Destination, Gateway, Flags, …, Mask; addresses as little-endian hex words ("0002A8C0" → 192.168.2.0). */
export function parseProcNetRoute(text: string, problems: HostDataProblem[] = []): UsedPrefix[] {
  const out: UsedPrefix[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (i === 0 || line.trim() === '') return; // header
    const f = line.trim().split(/\s+/);
    const [dev, dstHex, gwHex, flagsHex, , , , maskHex] = f;
    const dst = procHexWord(dstHex ?? '', 'LE');
    const mask = procHexWord(maskHex ?? '', 'LE');
    const prefix = mask === undefined ? undefined : maskToPrefix(mask);
    if (dev === undefined || dst === undefined || prefix === undefined) {
      problems.push({ where: `/proc/net/route line ${i + 1}`, reason: `cannot read ${JSON.stringify(line.trim())}` });
      return;
    }
    const flags = parseInt(flagsHex ?? '0', 16);
    const gw = procHexWord(gwHex ?? '', 'LE');
    const via = (flags & 0x2) !== 0 && gw !== undefined && gw !== 0 ? formatIpv4(gw) : undefined;
    const c: Cidr = { address: formatIpv4(dst), prefix };
    const u: UsedPrefix = {
      ...c,
      kind: 'route',
      dev,
      text: routeText({ dst: prefix === 0 ? 'default' : formatCidr(c), ...(via !== undefined ? { via } : {}), dev }),
    };
    if ((flags & 0x200) !== 0) u.type = 'unreachable'; // RTF_REJECT
    if (via !== undefined) u.via = via;
    out.push(u);
  });
  return out;
}

/** /proc/net/ipv6_route: dst (32 hex), dst prefix (hex), src, src prefix, next hop, metric, refcnt, use, flags, dev. */
export function parseProcNetIpv6Route(text: string, problems: HostDataProblem[] = []): UsedPrefix[] {
  const out: UsedPrefix[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const f = line.trim().split(/\s+/);
    const [dstHex, plenHex, , , hopHex, , , , flagsHex, dev] = f;
    if (dstHex === undefined || !/^[0-9a-fA-F]{32}$/.test(dstHex) || plenHex === undefined || !/^[0-9a-fA-F]{2}$/.test(plenHex) || dev === undefined) {
      problems.push({ where: `/proc/net/ipv6_route line ${i + 1}`, reason: `cannot read ${JSON.stringify(line.trim())}` });
      return;
    }
    const prefix = parseInt(plenHex, 16);
    if (prefix > 128) {
      problems.push({ where: `/proc/net/ipv6_route line ${i + 1}`, reason: `prefix length ${prefix}` });
      return;
    }
    const c: Cidr = { address: formatIpv6(BigInt(`0x${dstHex}`)), prefix };
    const flags = parseInt(flagsHex ?? '0', 16);
    const hop = hopHex !== undefined && /^[0-9a-fA-F]{32}$/.test(hopHex) ? BigInt(`0x${hopHex}`) : 0n;
    const via = (flags & 0x2) !== 0 && hop !== 0n ? formatIpv6(hop) : undefined;
    const u: UsedPrefix = {
      ...c,
      kind: 'route',
      dev,
      text: routeText({ dst: prefix === 0 ? 'default' : formatCidr(c), ...(via !== undefined ? { via } : {}), dev }),
    };
    if ((flags & 0x200) !== 0) u.type = 'unreachable'; // RTF_REJECT
    if ((flags & 0x80000000) !== 0) u.type = 'local'; // RTF_LOCAL
    if (dstHex.toLowerCase().startsWith('ff')) u.type = 'multicast';
    if (via !== undefined) u.via = via;
    out.push(u);
  });
  return out;
}

/**
 * The IPv4 `<ip address=… prefix=…|netmask=…>` elements of a libvirt network's XML
 * (`networkGetXmlDesc`), as prefixes used by that network. A defined but inactive
 * network has no route yet and would collide the moment it starts.
 */
export function networkXmlSubnets(xml: string, name?: string): UsedPrefix[] {
  const netName = name ?? /<name>([^<]*)<\/name>/.exec(xml)?.[1];
  const bridge = /<bridge\b[^>]*\bname=['"]([^'"]+)['"]/.exec(xml)?.[1];
  const out: UsedPrefix[] = [];
  for (const m of xml.matchAll(/<ip\b([^>]*)>/g)) {
    const attrs = new Map<string, string>();
    for (const a of (m[1] ?? '').matchAll(/([a-zA-Z]+)\s*=\s*(?:'([^']*)'|"([^"]*)")/g)) {
      attrs.set(a[1] as string, a[2] ?? a[3] ?? '');
    }
    const address = attrs.get('address');
    if (address === undefined) continue;
    const family = attrs.get('family') === 'ipv6' || address.includes(':') ? 'ipv6' : 'ipv4';
    let prefix: number | undefined;
    const p = attrs.get('prefix');
    const mask = attrs.get('netmask');
    if (p !== undefined && /^[0-9]{1,3}$/.test(p)) prefix = Number(p);
    else if (mask !== undefined) {
      const m4 = parseIpv4(mask);
      prefix = m4 === undefined ? undefined : maskToPrefix(m4);
    } else prefix = family === 'ipv4' ? 24 : 64;
    if (prefix === undefined) continue;
    const c = parseCidr(`${address}/${prefix}`);
    if (c === undefined) continue;
    const u: UsedPrefix = {
      ...normalizeCidr(c),
      kind: 'network',
      text: `${address}/${prefix}${bridge !== undefined ? ` on ${bridge}` : ''}`,
    };
    if (netName !== undefined) u.name = netName;
    if (bridge !== undefined) u.dev = bridge;
    out.push(u);
  }
  return out;
}

// --- Reading the host --------------------------------------------------------------------

/** Runs a command and resolves with its stdout; rejects with an error carrying `code` (ENOENT) or stderr. */
export type RunCommand = (argv: readonly string[]) => Promise<string>;

const defaultRun: RunCommand = (argv) =>
  new Promise((resolve, reject) => {
    execFile(argv[0] as string, argv.slice(1), { maxBuffer: 64 * 1024 * 1024, timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { stderr?: string };
        e.stderr = String(stderr);
        reject(e);
      } else resolve(String(stdout));
    });
  });

export interface HostNetworkOptions {
  /** Read inside this network namespace (`ip netns exec NAME …`). */
  netns?: string;
  /** How to run commands (tests). */
  run?: RunCommand;
}

export interface HostNetworkView {
  routes: UsedPrefix[];
  addresses: UsedPrefix[];
  /** All of them, routes first: what `pickFreeSubnet` and `subnetConflicts` take. */
  used: UsedPrefix[];
  /** `ip -j` (iproute2 with JSON output) or `/proc` (the fallback: main-table routes only). */
  via: 'ip -j' | '/proc';
  problems: HostDataProblem[];
}

function commandMissingOrNoJson(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException & { stderr?: string };
  if (e?.code === 'ENOENT') return true;
  // iproute2 before JSON support: 'Option "-j" is unknown, try "ip -help".'
  return typeof e?.stderr === 'string' && /-j.*unknown|unknown.*-j/i.test(e.stderr);
}

/**
 * The host's routes (all tables, IPv4 and IPv6) and interface addresses, from
 * `ip -j route show table all` and `ip -j addr`; where `ip` is missing or too old for
 * `-j`, the routes of /proc/net/route and /proc/net/ipv6_route (whose connected routes
 * stand in for the addresses). With `netns`, as seen inside that namespace.
 */
export async function hostRoutesAndAddresses(options: HostNetworkOptions = {}): Promise<HostNetworkView> {
  const run = options.run ?? defaultRun;
  const wrap = (argv: string[]): string[] =>
    options.netns === undefined ? argv : ['ip', 'netns', 'exec', options.netns, ...argv];
  const problems: HostDataProblem[] = [];
  try {
    const [r4, r6, addr] = await Promise.all([
      run(wrap(['ip', '-j', '-4', 'route', 'show', 'table', 'all'])),
      run(wrap(['ip', '-j', '-6', 'route', 'show', 'table', 'all'])),
      run(wrap(['ip', '-j', 'addr', 'show'])),
    ]);
    const routes = [...parseIpRouteJson(r4, problems, 'ipv4'), ...parseIpRouteJson(r6, problems, 'ipv6')];
    const addresses = parseIpAddrJson(addr, problems);
    return { routes, addresses, used: [...routes, ...addresses], via: 'ip -j', problems };
  } catch (err) {
    if (!commandMissingOrNoJson(err)) throw err;
  }
  const read = async (path: string): Promise<string> =>
    options.netns === undefined && options.run === undefined ? readFile(path, 'utf8') : run(wrap(['cat', path]));
  const v4 = await read('/proc/net/route');
  const v6 = await read('/proc/net/ipv6_route').catch(() => '');
  const routes = [...parseProcNetRoute(v4, problems), ...parseProcNetIpv6Route(v6, problems)];
  return { routes, addresses: [], used: routes, via: '/proc', problems };
}
