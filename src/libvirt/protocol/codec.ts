import type { XdrReader, XdrWriter } from './xdr.js';

/**
 * What a codec puts on the wire, in the terms of remote_protocol.x once typedefs are
 * resolved: enums, `char` and `short` travel as `int`, their unsigned forms as `uint`.
 * Unit tests compare it with libvirt's definitions; bounds are not part of it.
 */
export type Shape =
  | { readonly kind: 'void' | 'int' | 'uint' | 'hyper' | 'uhyper' | 'string' }
  | { readonly kind: 'opaque'; readonly length: number }
  | { readonly kind: 'optional' | 'array'; readonly of: Shape }
  | { readonly kind: 'struct'; readonly fields: readonly Field[] };

export interface Field {
  readonly name: string;
  readonly shape: Shape;
}

/** Encodes and decodes one XDR type, and says which one it is. */
export interface Codec<T> {
  readonly shape: Shape;
  write(w: XdrWriter, v: T): void;
  read(r: XdrReader): T;
}

export type ValueOf<C> = C extends Codec<infer T> ? T : never;

const primitive = <T>(kind: 'int' | 'uint' | 'hyper' | 'uhyper' | 'string', write: (w: XdrWriter, v: T) => void, read: (r: XdrReader) => T): Codec<T> => ({
  shape: { kind },
  write,
  read,
});

export const int = primitive<number>('int', (w, v) => w.int(v), (r) => r.int());
export const uint = primitive<number>('uint', (w, v) => w.uint(v), (r) => r.uint());
export const hyper = primitive<bigint>('hyper', (w, v) => w.hyper(v), (r) => r.hyper());
export const uhyper = primitive<bigint>('uhyper', (w, v) => w.uhyper(v), (r) => r.uhyper());
/** remote_nonnull_string; `optional(str)` is remote_string. */
export const str = primitive<string>('string', (w, v) => w.string(v), (r) => r.string());

/** Nothing at all: a procedure without arguments or without a return value. */
export const none: Codec<void> = { shape: { kind: 'void' }, write: () => undefined, read: () => undefined };

export const UUID_LENGTH = 16;

/** remote_uuid: 16 bytes of fixed-length opaque data. */
export const uuid: Codec<Buffer> = {
  shape: { kind: 'opaque', length: UUID_LENGTH },
  write: (w, v) => w.fixedOpaque(v, UUID_LENGTH),
  read: (r) => r.fixedOpaque(UUID_LENGTH),
};

/** An XDR optional (`T *`); absent is null. */
export function optional<T>(of: Codec<T>): Codec<T | null> {
  return {
    shape: { kind: 'optional', of: of.shape },
    write: (w, v) => w.optional(v, (x, item) => of.write(x, item)),
    read: (r) => r.optional((x) => of.read(x)),
  };
}

/** A variable-length array (`T name<MAX>`). libvirt's bounds are left to the daemon. */
export function array<T>(of: Codec<T>): Codec<T[]> {
  return {
    shape: { kind: 'array', of: of.shape },
    write: (w, v) => w.array(v, (x, item) => of.write(x, item)),
    read: (r) => r.array((x) => of.read(x)),
  };
}

export type Fields = Readonly<Record<string, Codec<unknown>>>;
export type StructOf<F extends Fields> = { [K in keyof F]: ValueOf<F[K]> };

/** A struct whose members are the properties of `fields`, in their order. */
export function struct<F extends Fields>(fields: F): Codec<StructOf<F>> {
  const members = Object.entries(fields);
  return {
    shape: { kind: 'struct', fields: members.map(([name, c]) => ({ name, shape: c.shape })) },
    write: (w, v) => {
      for (const [name, c] of members) c.write(w, (v as Record<string, unknown>)[name]);
    },
    read: (r) => {
      const out: Record<string, unknown> = {};
      for (const [name, c] of members) out[name] = c.read(r);
      return out as StructOf<F>;
    },
  };
}

/** The same wire type seen as another TypeScript value (e.g. libvirt's names → ours). */
export function mapped<A, B>(of: Codec<A>, decode: (a: A) => B, encode: (b: B) => A): Codec<B> {
  return {
    shape: of.shape,
    write: (w, v) => of.write(w, encode(v)),
    read: (r) => decode(of.read(r)),
  };
}
