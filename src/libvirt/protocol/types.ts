import { LibvirtError } from '../errors.js';
import { int, mapped, optional, str, struct, uuid, type Codec } from './codec.js';
import type { XdrReader, XdrWriter } from './xdr.js';

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

/** remote_nonnull_domain */
export const domain: Codec<DomainRef> = struct({ name: str, uuid, id: int });
/** remote_nonnull_network */
export const network: Codec<NetworkRef> = struct({ name: str, uuid });
/** remote_nonnull_storage_pool */
export const pool: Codec<StoragePoolRef> = struct({ name: str, uuid });
/** remote_nonnull_storage_vol */
export const volume: Codec<StorageVolRef> = struct({ pool: str, name: str, key: str });
/** remote_nonnull_domain_snapshot, whose `dom` vmenv calls `domain`. */
export const snapshot: Codec<SnapshotRef> = mapped(
  struct({ name: str, dom: domain }),
  (s) => ({ name: s.name, domain: s.dom }),
  (s) => ({ name: s.name, dom: s.domain }),
);

export const writeDomain = (w: XdrWriter, d: DomainRef): void => domain.write(w, d);
export const readDomain = (r: XdrReader): DomainRef => domain.read(r);
export const writeVolume = (w: XdrWriter, v: StorageVolRef): void => volume.write(w, v);
export const readVolume = (r: XdrReader): StorageVolRef => volume.read(r);

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

/** virNetMessageError (virnetprotocol.x), the payload of every error reply. */
export const messageError = struct({
  code: int,
  domain: int,
  message: optional(str),
  level: int,
  dom: optional(domain),
  str1: optional(str),
  str2: optional(str),
  str3: optional(str),
  int1: int,
  int2: int,
  net: optional(network),
});

export function readError(r: XdrReader, procedure?: string): LibvirtError {
  const e = messageError.read(r);
  return new LibvirtError({
    code: e.code,
    domain: e.domain,
    level: e.level,
    message: e.message ?? `libvirt error code ${e.code}`,
    ...(procedure === undefined ? {} : { procedure }),
    str1: e.str1,
    str2: e.str2,
    str3: e.str3,
    int1: e.int1,
    int2: e.int2,
  });
}

/** Encodes virNetMessageError; used by in-memory test servers. */
export function writeError(
  w: XdrWriter,
  e: { code: number; domain: number; message: string | null; level?: number },
): void {
  messageError.write(w, {
    code: e.code,
    domain: e.domain,
    message: e.message,
    level: e.level ?? 2,
    dom: null,
    str1: null,
    str2: null,
    str3: null,
    int1: 0,
    int2: 0,
    net: null,
  });
}
