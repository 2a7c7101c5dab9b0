/**
 * The kernel's socket tables, /proc/net/{tcp,tcp6,udp,udp6}, as text in and typed
 * values out. Pure: no I/O.
 *
 *     sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode …
 *      0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 …
 *
 * An address is the raw 32-bit words of the address as the kernel holds them, each
 * printed as a host-order number (`%08X`): on a little-endian machine the bytes of each
 * word come out reversed (127.0.0.1 reads `0100007F`). IPv6 has four such words. The
 * port is a plain hexadecimal number. Lines that cannot be read are skipped.
 */
import { formatIpv4, formatIpv6, procHexWord, type Endianness } from '../../util/ip.js';

/** TCP_LISTEN in the `st` column. */
export const TCP_LISTEN = 0x0a;

export interface ProcNetSocket {
  family: 4 | 6;
  /** Canonical text; an IPv4-mapped IPv6 address as `::ffff:a.b.c.d`. */
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
  /** The kernel's TCP state number (UDP: 7 unconnected, 1 connected). */
  state: number;
  uid: number;
  /** The socket's inode, as in a `socket:[inode]` link under /proc/<pid>/fd; 0 when it has none (TIME_WAIT). */
  inode: number;
}

/** `0100007F` → 127.0.0.1; 32 hex digits → an IPv6 address. Undefined when neither. */
export function procHexAddress(hex: string, endianness: Endianness): { family: 4 | 6; ip: string } | undefined {
  if (hex.length === 8) {
    const v4 = procHexWord(hex, endianness);
    return v4 === undefined ? undefined : { family: 4, ip: formatIpv4(v4) };
  }
  if (hex.length !== 32) return undefined;
  let n = 0n;
  for (let i = 0; i < 4; i++) {
    const w = procHexWord(hex.slice(i * 8, i * 8 + 8), endianness);
    if (w === undefined) return undefined;
    n = (n << 32n) | BigInt(w);
  }
  if (n >> 32n === 0xffffn) return { family: 6, ip: `::ffff:${formatIpv4(Number(n & 0xffffffffn))}` };
  return { family: 6, ip: formatIpv6(n) };
}

function endpoint(text: string, endianness: Endianness): { family: 4 | 6; ip: string; port: number } | undefined {
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const addr = procHexAddress(text.slice(0, colon), endianness);
  const portHex = text.slice(colon + 1);
  if (addr === undefined || !/^[0-9A-Fa-f]{4}$/.test(portHex)) return undefined;
  return { ...addr, port: parseInt(portHex, 16) };
}

/** Every socket line of one of the four files (the header line and unreadable lines are skipped). */
export function parseProcNet(text: string, endianness: Endianness): ProcNetSocket[] {
  const out: ProcNetSocket[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (!/^[0-9]+:$/.test(f[0] ?? '')) continue; // header, blank
    const local = endpoint(f[1] ?? '', endianness);
    const remote = endpoint(f[2] ?? '', endianness);
    const state = /^[0-9A-Fa-f]{2}$/.test(f[3] ?? '') ? parseInt(f[3] as string, 16) : NaN;
    const uid = Number(f[7]);
    const inode = Number(f[9]);
    if (local === undefined || remote === undefined || Number.isNaN(state) || !Number.isInteger(uid) || !Number.isInteger(inode)) continue;
    out.push({ family: local.family, localIp: local.ip, localPort: local.port, remoteIp: remote.ip, remotePort: remote.port, state, uid, inode });
  }
  return out;
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/**
 * Whether a socket bound to `socketIp` keeps a listener on `wantedIp` (same port and
 * protocol) from binding: either is a wildcard, or they are the same address (an
 * IPv4-mapped IPv6 address counts as its IPv4 one). A wildcard `::` socket may be
 * IPv6-only, which this cannot see: it is counted as holding IPv4 too, as it does by default.
 */
export function addressesClash(socketIp: string, wantedIp: string): boolean {
  const a = unmapped(socketIp);
  const b = unmapped(wantedIp);
  if (a === b) return true;
  const aWild = WILDCARDS.has(a);
  const bWild = WILDCARDS.has(b);
  if (!aWild && !bWild) return false;
  // 0.0.0.0 only clashes with IPv4 addresses and `::` (dual stack); `::` with everything.
  if (a === '::' || b === '::') return true;
  return !a.includes(':') && !b.includes(':');
}

/** The sockets that hold `port` against a listener on `hostIp` (any address when undefined). */
export function socketsHoldingPort(sockets: readonly ProcNetSocket[], port: number, protocol: 'tcp' | 'udp', hostIp?: string): ProcNetSocket[] {
  return sockets.filter(
    (s) =>
      s.localPort === port &&
      (protocol === 'udp' || s.state === TCP_LISTEN) &&
      (hostIp === undefined || addressesClash(s.localIp, hostIp)),
  );
}
