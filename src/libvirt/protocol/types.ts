import { LibvirtError } from '../errors.js';
import type { XdrReader, XdrWriter } from './xdr.js';

export const UUID_LENGTH = 16;

/** A handle to a domain as libvirt's remote protocol carries it (remote_nonnull_domain). */
export interface DomainRef {
  name: string;
  uuid: Buffer;
  /** The running instance's id, -1 when the domain is not running. */
  id: number;
}

export interface NetworkRef {
  name: string;
  uuid: Buffer;
}

export interface StoragePoolRef {
  name: string;
  uuid: Buffer;
}

export interface StorageVolRef {
  pool: string;
  name: string;
  key: string;
}

export interface SnapshotRef {
  name: string;
  domain: DomainRef;
}

export const writeDomain = (w: XdrWriter, d: DomainRef): void => {
  w.string(d.name).fixedOpaque(d.uuid, UUID_LENGTH).int(d.id);
};
export const readDomain = (r: XdrReader): DomainRef => ({
  name: r.string(),
  uuid: r.fixedOpaque(UUID_LENGTH),
  id: r.int(),
});

const writeNamedUuid = (w: XdrWriter, n: { name: string; uuid: Buffer }): void => {
  w.string(n.name).fixedOpaque(n.uuid, UUID_LENGTH);
};
const readNamedUuid = (r: XdrReader): { name: string; uuid: Buffer } => ({
  name: r.string(),
  uuid: r.fixedOpaque(UUID_LENGTH),
});
export const writeNetwork: (w: XdrWriter, n: NetworkRef) => void = writeNamedUuid;
export const readNetwork: (r: XdrReader) => NetworkRef = readNamedUuid;
export const writePool: (w: XdrWriter, p: StoragePoolRef) => void = writeNamedUuid;
export const readPool: (r: XdrReader) => StoragePoolRef = readNamedUuid;

export const writeVolume = (w: XdrWriter, v: StorageVolRef): void => {
  w.string(v.pool).string(v.name).string(v.key);
};
export const readVolume = (r: XdrReader): StorageVolRef => ({
  pool: r.string(),
  name: r.string(),
  key: r.string(),
});

export const writeSnapshot = (w: XdrWriter, s: SnapshotRef): void => {
  w.string(s.name);
  writeDomain(w, s.domain);
};
export const readSnapshot = (r: XdrReader): SnapshotRef => ({
  name: r.string(),
  domain: readDomain(r),
});

/** UUID bytes as libvirt prints them: 8-4-4-4-12 lowercase hex. */
export function formatUuid(uuid: Buffer): string {
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function parseUuid(s: string): Buffer {
  const hex = s.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a UUID: '${s}'`);
  return Buffer.from(hex, 'hex');
}

/** Decodes virNetMessageError (the payload of every error reply). */
export function readError(r: XdrReader, procedure?: string): LibvirtError {
  const code = r.int();
  const domain = r.int();
  const message = r.optionalString();
  const level = r.int();
  r.optional(readDomain);
  const str1 = r.optionalString();
  const str2 = r.optionalString();
  const str3 = r.optionalString();
  const int1 = r.int();
  const int2 = r.int();
  r.optional(readNamedUuid);
  return new LibvirtError({
    code,
    domain,
    level,
    message: message ?? `libvirt error code ${code}`,
    ...(procedure === undefined ? {} : { procedure }),
    str1,
    str2,
    str3,
    int1,
    int2,
  });
}

/** Encodes virNetMessageError; used by in-memory test servers. */
export function writeError(
  w: XdrWriter,
  e: { code: number; domain: number; message: string | null; level?: number },
): void {
  w.int(e.code).int(e.domain).optionalString(e.message).int(e.level ?? 2);
  w.uint(0); // dom
  w.uint(0).uint(0).uint(0); // str1..3
  w.int(0).int(0);
  w.uint(0); // net
}
