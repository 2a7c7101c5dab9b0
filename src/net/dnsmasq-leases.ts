/**
 * The two files in which a libvirt network's DHCP leases live, as bytes or text in and
 * typed values out. Pure: no I/O.
 *
 * 1. dnsmasq's own lease file (`dhcp-leasefile`, e.g. `/var/lib/libvirt/dnsmasq/<bridge>.leases`
 *    on old libvirt, or any dnsmasq): one lease a line,
 *
 *        <expiry> <hwaddr> <ipv4> <hostname|*> <client-id|*>
 *
 *    where `<expiry>` is seconds since the epoch (0: an infinite lease) and `<hwaddr>` is
 *    the MAC, colon-separated hex, prefixed with `<hwtype>-` when it is not Ethernet (or
 *    empty). Once DHCPv6 is on, a `duid <server duid>` line follows, then the IPv6 leases:
 *
 *        <expiry> [T]<iaid> <ipv6> <hostname|*> <client duid|*>
 *
 *    (`T`: a temporary address). dnsmasq ends every line with a newline; a last line
 *    without one is a file caught while being rewritten, and is skipped (a cut-off
 *    `192.168.1.10` would read as a valid but wrong `192.168.1.1`).
 *
 * 2. libvirt's status file (`/var/lib/libvirt/dnsmasq/<bridge>.status`), written by its
 *    leases helper: a JSON array of `{ "ip-address", "mac-address", "hostname"?,
 *    "client-id"?, "expiry-time"?, "iaid"?, "server-duid"? }`. Empty while no lease has
 *    been given; possibly caught half-written.
 *
 * Nothing here throws on bad input: junk lines and entries are skipped and reported.
 */
import { ipFamily, normalizeIp, normalizeMac, type IpFamily } from '../util/ip.js';

/** One lease, from either file. */
export interface Lease {
  family: IpFamily;
  /** The leased address (canonical text). */
  ip: string;
  /**
   * The client's MAC (lower case). IPv4: its hardware address when that is Ethernet.
   * IPv6 in a dnsmasq file: taken from the client's DUID when that is a DUID-LL or
   * DUID-LLT of an Ethernet address. Else null.
   */
  mac: string | null;
  hostname: string | null;
  /** IPv4: the DHCP client identifier; IPv6: the client's DUID (hex, colon-separated). */
  clientId: string | null;
  /** Seconds since the epoch when the lease ends; 0 when it never does. */
  expiry: number;
}

/** A lease line of a dnsmasq lease file. */
export interface DnsmasqLease extends Lease {
  /** 1-based line number. */
  line: number;
  /** IPv4 leases of a non-Ethernet (or empty) hardware address: the field as written (`<hwtype>-<hex>`). */
  hwaddr?: string;
  /** IPv6: the identity association id. */
  iaid?: number;
  /** IPv6: a temporary address (IA_TA). */
  temporary?: boolean;
}

/** A line or entry that was skipped, and why. */
export interface LeaseProblem {
  /** dnsmasq files: 1-based line number; status files: 0-based array index. */
  at: number;
  /** The offending text (cut to 200 characters). */
  text: string;
  reason: string;
}

export interface DnsmasqLeaseFile {
  leases: DnsmasqLease[];
  /** The server's DUID from the `duid` line, or null (no DHCPv6). */
  serverDuid: string | null;
  problems: LeaseProblem[];
  /** The input ended inside a line (the file was being rewritten); that line is among the problems. */
  incomplete: boolean;
}

const EXPIRY = /^[0-9]{1,15}$/;
const HEX_BYTES = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*$/;
const HWADDR = /^(?:([0-9A-Fa-f]{2})-)?([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*)?$/;
const IAID = /^(T?)([0-9]{1,10})$/;

function cut(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * The MAC inside a DUID when it is a DUID-LLT (type 1) or DUID-LL (type 3) of an
 * Ethernet (hardware type 1) address; else null. `duid` is colon-separated hex.
 */
export function macFromDuid(duid: string): string | null {
  if (!HEX_BYTES.test(duid)) return null;
  const bytes = duid.split(':').map((b) => parseInt(b, 16));
  const word = (i: number): number => ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0);
  const type = word(0);
  const hwtype = word(2);
  const start = type === 1 ? 8 : type === 3 ? 4 : -1;
  if (start < 0 || hwtype !== 1 || bytes.length !== start + 6) return null;
  return bytes
    .slice(start)
    .map((b) => b.toString(16).padStart(2, '0'))
    .join(':');
}

/**
 * A streaming parser of dnsmasq lease files: `push` chunks as they arrive (split
 * anywhere, even inside a UTF-8 sequence), then `end`. The result does not depend on
 * how the input was split.
 */
export class DnsmasqLeaseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private pending = '';
  private lineNo = 0;
  private ended = false;
  private readonly result: DnsmasqLeaseFile = { leases: [], serverDuid: null, problems: [], incomplete: false };

  push(chunk: Uint8Array | string): void {
    if (this.ended) throw new Error('DnsmasqLeaseParser: push after end');
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = this.pending.indexOf('\n'); nl >= 0; nl = this.pending.indexOf('\n', start)) {
      this.line(this.pending.slice(start, nl));
      start = nl + 1;
    }
    if (start > 0) this.pending = this.pending.slice(start);
  }

  end(): DnsmasqLeaseFile {
    if (!this.ended) {
      this.ended = true;
      this.pending += this.decoder.decode();
      if (this.pending.trim() !== '') {
        this.lineNo++;
        this.result.incomplete = true;
        this.result.problems.push({
          at: this.lineNo,
          text: cut(this.pending),
          reason: 'the last line has no newline: the file was being rewritten',
        });
      }
      this.pending = '';
    }
    return this.result;
  }

  private problem(text: string, reason: string): void {
    this.result.problems.push({ at: this.lineNo, text: cut(text), reason });
  }

  private line(raw: string): void {
    this.lineNo++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') return;
    const f = text.trim().split(/[ \t]+/);
    if (f[0] === 'duid') {
      if (f.length === 2 && HEX_BYTES.test(f[1] as string)) this.result.serverDuid = (f[1] as string).toLowerCase();
      else this.problem(text, 'a duid line is `duid <hex bytes>`');
      return;
    }
    if (f.length !== 5) {
      this.problem(text, `expected 5 fields (expiry, hardware address or IAID, address, hostname, client id), found ${f.length}`);
      return;
    }
    const [expiryText, idText, ipText, hostText, clientText] = f as [string, string, string, string, string];
    if (!EXPIRY.test(expiryText)) {
      this.problem(text, `the expiry time ${JSON.stringify(expiryText)} is not a number of seconds`);
      return;
    }
    const family = ipFamily(ipText);
    if (family === undefined) {
      this.problem(text, `${JSON.stringify(ipText)} is not an IP address`);
      return;
    }
    let clientId: string | null = null;
    if (clientText !== '*') {
      if (!HEX_BYTES.test(clientText)) {
        this.problem(text, `the client id ${JSON.stringify(clientText)} is not colon-separated hex`);
        return;
      }
      clientId = clientText.toLowerCase();
    }
    const base = {
      ip: normalizeIp(ipText) as string,
      hostname: hostText === '*' ? null : hostText,
      clientId,
      expiry: Number(expiryText),
      line: this.lineNo,
    };

    if (family === 'ipv6') {
      const m = IAID.exec(idText);
      if (m === null || Number(m[2]) > 0xffffffff) {
        this.problem(text, `an IPv6 lease needs an IAID (a number, T-prefixed for temporary addresses), found ${JSON.stringify(idText)}`);
        return;
      }
      const lease: DnsmasqLease = {
        family,
        ...base,
        mac: clientId === null ? null : macFromDuid(clientId),
        iaid: Number(m[2]),
      };
      if (m[1] === 'T') lease.temporary = true;
      this.result.leases.push(lease);
      return;
    }

    const hw = HWADDR.exec(idText);
    if (hw === null || idText === '') {
      this.problem(text, `the hardware address ${JSON.stringify(idText)} is not colon-separated hex`);
      return;
    }
    const hwType = hw[1] === undefined ? 1 : parseInt(hw[1], 16);
    const bytes = hw[2] === undefined ? 0 : hw[2].split(':').length;
    const lease: DnsmasqLease = { family, ...base, mac: null };
    if (hwType === 1 && bytes === 6) lease.mac = (hw[2] as string).toLowerCase();
    else lease.hwaddr = idText.toLowerCase();
    this.result.leases.push(lease);
  }
}

/** A whole dnsmasq lease file at once. */
export function parseDnsmasqLeases(input: Uint8Array | string): DnsmasqLeaseFile {
  const p = new DnsmasqLeaseParser();
  p.push(input);
  return p.end();
}

// --- libvirt status files --------------------------------------------------------------

/** An entry of a libvirt status file. */
export interface StatusLease extends Lease {
  /** 0-based index in the array. */
  index: number;
  /** IPv6: the IAID, as written. */
  iaid?: string;
  /** IPv6: the server's DUID. */
  serverDuid?: string;
}

export type StatusFile =
  /** Zero bytes or only whitespace: libvirt has written no lease (yet). */
  | { state: 'empty' }
  /** A JSON array: its usable entries, and the ones skipped. */
  | { state: 'leases'; leases: StatusLease[]; problems: LeaseProblem[] }
  /** Not (yet) JSON: cut short or caught while being rewritten. No answer; read again later. */
  | { state: 'incomplete'; reason: string }
  /** JSON, but not an array: not a status file. */
  | { state: 'invalid'; reason: string };

function stringField(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** libvirt's `<bridge>.status` JSON, as bytes or text. Never throws. */
export function parseLibvirtStatus(input: Uint8Array | string): StatusFile {
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8').decode(input);
  if (text.trim() === '') return { state: 'empty' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      state: 'incomplete',
      reason: `not valid JSON (${(err as Error).message}; ${text.length} characters): cut short or being rewritten`,
    };
  }
  if (!Array.isArray(value)) {
    return { state: 'invalid', reason: `a JSON ${value === null ? 'null' : typeof value} where an array of leases belongs` };
  }
  const leases: StatusLease[] = [];
  const problems: LeaseProblem[] = [];
  value.forEach((entry: unknown, index) => {
    const show = (): string => cut(JSON.stringify(entry) ?? String(entry));
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push({ at: index, text: show(), reason: 'not an object' });
      return;
    }
    const o = entry as Record<string, unknown>;
    const ipText = stringField(o, 'ip-address');
    const ip = ipText === undefined ? undefined : normalizeIp(ipText);
    if (ip === undefined) {
      problems.push({ at: index, text: show(), reason: ipText === undefined ? 'no "ip-address"' : `"ip-address" ${JSON.stringify(ipText)} is not an IP address` });
      return;
    }
    const macText = stringField(o, 'mac-address');
    const mac = macText === undefined ? null : (normalizeMac(macText) ?? null);
    if (macText !== undefined && mac === null) {
      problems.push({ at: index, text: show(), reason: `"mac-address" ${JSON.stringify(macText)} is not a MAC address` });
      return;
    }
    // A number (libvirt writes one), a numeric string, or absent (older libvirt leaves out 0: never).
    const rawExpiry = o['expiry-time'];
    let expiry = 0;
    if (typeof rawExpiry === 'number' && Number.isSafeInteger(rawExpiry) && rawExpiry >= 0) expiry = rawExpiry;
    else if (typeof rawExpiry === 'string' && EXPIRY.test(rawExpiry)) expiry = Number(rawExpiry);
    else if (rawExpiry !== undefined) {
      problems.push({ at: index, text: show(), reason: `"expiry-time" ${JSON.stringify(rawExpiry)} is not a number of seconds` });
      return;
    }
    const lease: StatusLease = {
      family: ipFamily(ip) as IpFamily,
      ip,
      mac,
      hostname: stringField(o, 'hostname') ?? null,
      clientId: stringField(o, 'client-id')?.toLowerCase() ?? null,
      expiry,
      index,
    };
    const iaid = o['iaid'];
    if (typeof iaid === 'string' || typeof iaid === 'number') lease.iaid = String(iaid);
    const serverDuid = stringField(o, 'server-duid');
    if (serverDuid !== undefined) lease.serverDuid = serverDuid.toLowerCase();
    leases.push(lease);
  });
  return { state: 'leases', leases, problems };
}

// --- Choosing ------------------------------------------------------------------------

export interface LeaseMatch<T extends Lease> {
  /** Leases of the MAC still running, the one ending last first (never-ending first of all). */
  current: T[];
  /** Leases of the MAC that have ended. */
  expired: T[];
}

/**
 * The leases of one MAC (any spelling), in one family (default IPv4; `any`: IPv4 before
 * IPv6), split into current and expired as of `nowSeconds` (default: now).
 */
export function leasesForMac<T extends Lease>(
  leases: readonly T[],
  mac: string,
  options: { family?: IpFamily | 'any'; nowSeconds?: number } = {},
): LeaseMatch<T> {
  const want = normalizeMac(mac) ?? mac.toLowerCase();
  const family = options.family ?? 'ipv4';
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const mine = leases.filter((l) => l.mac === want && (family === 'any' || l.family === family));
  const rank = (l: T): number => (l.expiry === 0 ? Number.MAX_SAFE_INTEGER : l.expiry);
  const current = mine
    .filter((l) => l.expiry === 0 || l.expiry > now)
    .sort((a, b) => (a.family === b.family ? rank(b) - rank(a) : a.family === 'ipv4' ? -1 : 1));
  const expired = mine.filter((l) => !(l.expiry === 0 || l.expiry > now));
  return { current, expired };
}
