/**
 * Checks shared by the XML builders. Each takes the spec field's path (for the message)
 * and the value, and throws an XmlSpecError when libvirt would reject the value or it
 * would not mean what was asked.
 */
import { XmlSpecError } from './errors.js';
import { assertXmlChars } from './writer.js';

/** A non-empty string that XML can carry. */
export function checkString(field: string, value: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new XmlSpecError(field, 'must be a non-empty string');
  }
  assertXmlChars(value, field);
  return value;
}

/**
 * A libvirt object name (domain, network, pool): non-empty, no `/` (the QEMU driver
 * and the storage drivers use names as file names), no newline, no leading or trailing
 * whitespace.
 */
export function checkObjectName(field: string, value: string): string {
  checkString(field, value);
  if (value.includes('/')) throw new XmlSpecError(field, `'${value}' must not contain '/'`);
  if (/[\r\n]/.test(value)) throw new XmlSpecError(field, 'must not contain a line break');
  if (value.trim() !== value) {
    throw new XmlSpecError(field, `'${value}' must not start or end with whitespace`);
  }
  return value;
}

/** A positive safe integer (1, 2, …). */
export function checkPositiveInt(field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new XmlSpecError(field, `${String(value)} is not a positive integer`);
  }
  return value;
}

/** An integer in [min, max]. */
export function checkIntRange(field: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new XmlSpecError(field, `${String(value)} is not an integer from ${min} to ${max}`);
  }
  return value;
}

/** A byte count: a non-negative integer as a safe number or a bigint (positive when `positive`). */
export function checkBytes(field: string, value: number | bigint, positive: boolean): bigint {
  const min = positive ? 1n : 0n;
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (Number.isSafeInteger(value)) n = BigInt(value);
  else throw new XmlSpecError(field, `${String(value)} is not a whole number of bytes`);
  // libvirt keeps sizes in an unsigned long long.
  if (n < min || n > 0xffff_ffff_ffff_ffffn) {
    throw new XmlSpecError(field, `${String(value)} bytes is out of range`);
  }
  return n;
}

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** An RFC 4122 textual UUID; returned in lower case. */
export function checkUuid(field: string, value: string): string {
  if (!UUID.test(value)) {
    throw new XmlSpecError(field, `'${value}' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
  }
  return value.toLowerCase();
}

const MAC = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;

/**
 * A unicast MAC address in colon form (`52:54:00:12:34:56`); returned in lower case.
 * Multicast (lowest bit of the first octet set) and all-zero addresses are rejected.
 * vmenv generates addresses under QEMU's prefix 52:54:00; user-given addresses for
 * public networks may use any unicast prefix.
 */
export function checkMac(field: string, value: string): string {
  if (!MAC.test(value)) {
    throw new XmlSpecError(field, `'${value}' is not a MAC address (like 52:54:00:12:34:56)`);
  }
  const first = Number.parseInt(value.slice(0, 2), 16);
  if ((first & 1) === 1) throw new XmlSpecError(field, `'${value}' is a multicast MAC address`);
  if (value === '00:00:00:00:00:00') throw new XmlSpecError(field, 'the all-zero MAC address is not usable');
  return value.toLowerCase();
}

/** An absolute path (starts with `/`), XML-safe. */
export function checkAbsPath(field: string, value: string): string {
  checkString(field, value);
  if (!value.startsWith('/')) throw new XmlSpecError(field, `'${value}' is not an absolute path`);
  if (value.length < 2) throw new XmlSpecError(field, `'/' is not usable here`);
  return value;
}

/** A host network device name (bridge, NIC): at most 15 characters of [A-Za-z0-9_.:-]. */
export function checkDeviceName(field: string, value: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.:-]{1,15}$/.test(value)) {
    throw new XmlSpecError(field, `'${String(value)}' is not a network device name (1-15 of A-Z a-z 0-9 _ . : -)`);
  }
  return value;
}

/** A file mode: an integer from 0 to 0o7777, returned as libvirt's octal text (`0755`). */
export function checkMode(field: string, value: number): string {
  checkIntRange(field, value, 0, 0o7777);
  return value.toString(8).padStart(4, '0');
}

/** Parse a dotted-quad IPv4 address to a 32-bit unsigned number. */
export function parseIpv4(field: string, value: string): number {
  const parts = typeof value === 'string' ? value.split('.') : [];
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
    throw new XmlSpecError(field, `'${String(value)}' is not an IPv4 address (like 192.168.121.1)`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** Format a 32-bit unsigned number as a dotted-quad IPv4 address. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Throw when the same key appears twice in a list (targets, MACs, tags, …). */
export function checkUnique<T>(items: readonly T[], key: (item: T) => string | undefined, field: (i: number) => string, what: string): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const k = key(item);
    if (k === undefined) return;
    const prev = seen.get(k);
    if (prev !== undefined) {
      throw new XmlSpecError(field(i), `${what} '${k}' is already used by ${field(prev)}`);
    }
    seen.set(k, i);
  });
}
