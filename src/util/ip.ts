/**
 * Addresses as numbers: IPv4 as an unsigned 32-bit number, IPv6 as a 128-bit bigint,
 * MAC addresses in libvirt's lower-case colon form; `host:port` text. Pure; no I/O.
 */

export type IpFamily = 'ipv4' | 'ipv6';

const IPV4_PART = /^(?:0|[1-9][0-9]{0,2})$/;

/** `a.b.c.d` as an unsigned 32-bit number, or undefined when it is not a dotted quad. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!IPV4_PART.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The byte order of the machine whose /proc is read. */
export type Endianness = 'LE' | 'BE';

/**
 * One 32-bit word of an address as /proc/net prints it (`%08X` of the word as the host
 * holds it) → the unsigned number in network order: on a little-endian host the bytes
 * come out reversed (`0100007F` → 127.0.0.1). Undefined when not 8 hex digits.
 */
export function procHexWord(hex: string, endianness: Endianness): number | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const n = parseInt(hex, 16);
  if (endianness === 'BE') return n >>> 0;
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | (n >>> 24)) >>> 0;
}

/**
 * An IPv6 address (with `::` compression, an embedded dotted quad, no zone id) as a
 * 128-bit bigint, or undefined when it is not one.
 */
export function parseIpv6(text: string): bigint | undefined {
  if (text.length === 0 || text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  let groups: number[] = [];
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseHalf = (half: string, last: boolean): number[] | undefined => {
    if (half === '') return [];
    const out: number[] = [];
    const parts = half.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] as string;
      if (last && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  if (halves.length === 2) {
    const head = parseHalf(halves[0] as string, false);
    const tail = parseHalf(halves[1] as string, true);
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseHalf(text, true);
    if (all === undefined || all.length !== 8) return undefined;
    groups = all;
  }
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(g);
  return n;
}

/** RFC 5952 text: lower case, the longest run of two or more zero groups as `::`. */
export function formatIpv6(n: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** The family of an address in text form, or undefined when it is neither. */
export function ipFamily(text: string): IpFamily | undefined {
  if (parseIpv4(text) !== undefined) return 'ipv4';
  if (parseIpv6(text) !== undefined) return 'ipv6';
  return undefined;
}

/** The canonical text of an IPv4 or IPv6 address, or undefined when it is neither. */
export function normalizeIp(text: string): string | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return formatIpv4(v4);
  const v6 = parseIpv6(text);
  return v6 === undefined ? undefined : formatIpv6(v6);
}

/** `10.0.0.1:22`, `[::1]:22`: an IPv6 address bracketed so that its port stays readable. */
export function hostPortText(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const MAC = /^[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}$/;

/** `52:54:00:AB:CD:EF` / `52-54-00-ab-cd-ef` → `52:54:00:ab:cd:ef`; undefined when not a 48-bit MAC. */
export function normalizeMac(text: string): string | undefined {
  if (!MAC.test(text)) return undefined;
  return text.toLowerCase().replaceAll('-', ':');
}
