/**
 * What a forwarder process serves: a list of host → guest port mappings, and the
 * network namespace the guests live in when they are not reachable from the host's own.
 * Pure: text or values in, a checked spec (or every problem at once) out.
 */
import type { ForwardedPort, Protocol } from '../../config/types.js';
import { hostPortText, ipFamily, normalizeIp } from '../../util/ip.js';

export type ForwardProtocol = Protocol;

export interface ForwardMapping {
  protocol: ForwardProtocol;
  /** Where the forwarder listens, in the host's network namespace. */
  hostIp: string;
  /** 1–65535, or 0 for a port the kernel picks (reported back once bound). */
  hostPort: number;
  guestIp: string;
  guestPort: number;
}

export interface ForwardSpec {
  mappings: ForwardMapping[];
  /** Reach the guests from inside this network namespace (`ip netns exec`; needs root). */
  netns?: string;
  /** A UDP client's relay is dropped after this long without a datagram either way (default 60 s). */
  udpIdleMs?: number;
}

export const DEFAULT_UDP_IDLE_MS = 60_000;

export class ForwardSpecError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid forwarder spec: ${problems.join('; ')}`);
    this.name = 'ForwardSpecError';
    this.problems = problems;
  }
}

/** `tcp 127.0.0.1:8080` / `udp [::1]:53`: how a listener is named in messages. */
export function describeHostEnd(m: Pick<ForwardMapping, 'protocol' | 'hostIp' | 'hostPort'>): string {
  return `${m.protocol} ${hostPortText(m.hostIp, m.hostPort)}`;
}

// What `ip netns` accepts as a name, without path separators or option-like leads.
const NETNS_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;

function isPort(v: unknown, allowZero: boolean): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v <= 65535 && (v >= 1 || (allowZero && v === 0));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks an untyped value as a spec: an object `{mappings, netns?, udpIdleMs?}` or a
 * bare array of mappings. Addresses come back in canonical form. Throws
 * ForwardSpecError naming every problem.
 */
export function checkForwardSpec(value: unknown): ForwardSpec {
  const problems: string[] = [];
  const obj: Record<string, unknown> | undefined = Array.isArray(value) ? { mappings: value } : isRecord(value) ? value : undefined;
  if (obj === undefined) throw new ForwardSpecError(['expected an object with "mappings" or an array of mappings']);

  for (const key of Object.keys(obj)) {
    if (!['mappings', 'netns', 'udpIdleMs'].includes(key)) problems.push(`unknown key "${key}"`);
  }
  const spec: ForwardSpec = { mappings: [] };
  if (obj.netns !== undefined) {
    if (typeof obj.netns !== 'string' || !NETNS_NAME.test(obj.netns)) problems.push(`netns: ${JSON.stringify(obj.netns)} is not a network namespace name`);
    else spec.netns = obj.netns;
  }
  if (obj.udpIdleMs !== undefined) {
    if (typeof obj.udpIdleMs !== 'number' || !Number.isInteger(obj.udpIdleMs) || obj.udpIdleMs < 100) problems.push('udpIdleMs: expected an integer of at least 100 (ms)');
    else spec.udpIdleMs = obj.udpIdleMs;
  }
  if (!Array.isArray(obj.mappings)) {
    problems.push('mappings: expected an array');
  } else {
    if (obj.mappings.length === 0) problems.push('mappings: nothing to forward');
    const seen = new Map<string, number>();
    obj.mappings.forEach((raw: unknown, i: number) => {
      const at = `mappings[${i}]`;
      if (!isRecord(raw)) {
        problems.push(`${at}: expected an object`);
        return;
      }
      const before = problems.length;
      for (const key of Object.keys(raw)) {
        if (!['protocol', 'hostIp', 'hostPort', 'guestIp', 'guestPort'].includes(key)) problems.push(`${at}: unknown key "${key}"`);
      }
      if (raw.protocol !== 'tcp' && raw.protocol !== 'udp') problems.push(`${at}.protocol: expected "tcp" or "udp"`);
      const hostIp = typeof raw.hostIp === 'string' ? normalizeIp(raw.hostIp) : undefined;
      if (hostIp === undefined) problems.push(`${at}.hostIp: ${JSON.stringify(raw.hostIp)} is not an IPv4 or IPv6 address`);
      const guestIp = typeof raw.guestIp === 'string' ? normalizeIp(raw.guestIp) : undefined;
      if (guestIp === undefined) problems.push(`${at}.guestIp: ${JSON.stringify(raw.guestIp)} is not an IPv4 or IPv6 address`);
      if (!isPort(raw.hostPort, true)) problems.push(`${at}.hostPort: expected a port number (1-65535, or 0 for any free port)`);
      if (!isPort(raw.guestPort, false)) problems.push(`${at}.guestPort: expected a port number (1-65535)`);
      if (problems.length > before) return;
      const m: ForwardMapping = {
        protocol: raw.protocol as ForwardProtocol,
        hostIp: hostIp as string,
        hostPort: raw.hostPort as number,
        guestIp: guestIp as string,
        guestPort: raw.guestPort as number,
      };
      if (m.hostPort !== 0) {
        const key = `${m.protocol} ${m.hostIp} ${m.hostPort}`;
        const first = seen.get(key);
        if (first !== undefined) problems.push(`${at}: ${describeHostEnd(m)} is already forwarded by mappings[${first}]`);
        else seen.set(key, i);
      }
      spec.mappings.push(m);
    });
  }
  if (problems.length > 0) throw new ForwardSpecError(problems);
  return spec;
}

/**
 * The spec as main.js reads it from its command line: JSON text when it starts with
 * `{` or `[`, else the path of a file holding that JSON (read by the caller, given here
 * as `readFile`).
 */
export function parseForwardSpecArg(arg: string, readFile: (path: string) => string): ForwardSpec {
  const text = /^\s*[[{]/.test(arg) ? arg : readFile(arg);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ForwardSpecError([`not JSON: ${(err as Error).message}`]);
  }
  return checkForwardSpec(value);
}

/** The mappings for a machine's `forwarded_ports`, towards the guest at `guestIp`. */
export function mappingsFromConfig(ports: readonly ForwardedPort[], guestIp: string): ForwardMapping[] {
  return ports.map((p) => ({ protocol: p.protocol, hostIp: p.host_ip, hostPort: p.host, guestIp, guestPort: p.guest }));
}

/** The socket family for an address that checkForwardSpec accepted. */
export function socketFamily(ip: string): 4 | 6 {
  return ipFamily(ip) === 'ipv6' ? 6 : 4;
}
