/**
 * Resolves the types of a parsed .x file to what they put on the wire, in the terms of
 * src/libvirt/protocol/codec.ts's Shape (plus kinds vmenv does not use), so the two
 * can be compared. Member names are kept as written.
 */
import type { Bound, XdrSpec, XdrType } from './xdr-spec.js';

export type WireShape =
  | { kind: 'void' | 'int' | 'uint' | 'hyper' | 'uhyper' | 'string' | 'float' | 'double' | 'varopaque' }
  | { kind: 'opaque'; length: number }
  | { kind: 'optional' | 'array'; of: WireShape }
  | { kind: 'fixedarray'; of: WireShape; length: number }
  | { kind: 'struct'; fields: readonly { name: string; shape: WireShape }[] }
  | { kind: 'union'; name: string };

export class ShapeResolver {
  /**
   * `externals`: constants the .x file takes from C headers through `%#include`
   * (VIR_UUID_BUFLEN and the like).
   */
  constructor(
    private readonly spec: XdrSpec,
    private readonly externals: ReadonlyMap<string, number> = new Map(),
  ) {}

  /** The members of struct `name`, or null when the file has no such struct. */
  structFields(name: string): { name: string; shape: WireShape }[] | null {
    const fields = this.spec.structs.get(name);
    if (!fields) return null;
    return fields.map((f) => ({ name: f.name, shape: this.resolve(f.type, [name]) }));
  }

  resolve(t: XdrType, path: readonly string[] = []): WireShape {
    switch (t.kind) {
      case 'primitive':
        switch (t.name) {
          case 'int':
          case 'char':
          case 'short':
          case 'bool':
            return { kind: 'int' };
          case 'uint':
          case 'uchar':
          case 'ushort':
            return { kind: 'uint' };
          default:
            return { kind: t.name };
        }
      case 'string':
        return { kind: 'string' };
      case 'opaque':
        return { kind: 'opaque', length: this.number(t.length) };
      case 'varopaque':
        return { kind: 'varopaque' };
      case 'optional':
        return { kind: 'optional', of: this.resolve(t.of, path) };
      case 'array':
        return { kind: 'array', of: this.resolve(t.of, path) };
      case 'fixedarray':
        return { kind: 'fixedarray', of: this.resolve(t.of, path), length: this.number(t.length) };
      case 'ref':
        return this.resolveName(t.name, path);
    }
  }

  private resolveName(name: string, path: readonly string[]): WireShape {
    if (path.includes(name)) throw new Error(`recursive type: ${[...path, name].join(' -> ')}`);
    const inner = [...path, name];
    const typedef = this.spec.typedefs.get(name);
    if (typedef) return this.resolve(typedef, inner);
    const fields = this.spec.structs.get(name);
    if (fields) return { kind: 'struct', fields: fields.map((f) => ({ name: f.name, shape: this.resolve(f.type, inner) })) };
    if (this.spec.enums.has(name)) return { kind: 'int' };
    if (this.spec.unions.has(name)) return { kind: 'union', name };
    throw new Error(`unknown type '${name}'${path.length > 0 ? ` in ${path.join(' -> ')}` : ''}`);
  }

  number(b: Bound, seen: readonly string[] = []): number {
    if (typeof b === 'number') return b;
    if (seen.includes(b)) throw new Error(`recursive constant '${b}'`);
    const v = this.spec.consts.get(b);
    if (v !== undefined) return this.number(v, [...seen, b]);
    const external = this.externals.get(b);
    if (external !== undefined) return external;
    throw new Error(`unknown constant '${b}'`);
  }
}

/** Member names compared loosely: libvirt's `need_results`, `callbackID` and `maxMem` match our camelCase. */
export const looseName = (name: string): string => name.replace(/_/g, '').toLowerCase();

/** A shape as one line of text, names loosened, so that test failures read as a diff. */
export function renderShape(s: WireShape): string {
  switch (s.kind) {
    case 'opaque':
      return `opaque[${s.length}]`;
    case 'varopaque':
      return 'opaque<>';
    case 'optional':
      return `optional<${renderShape(s.of)}>`;
    case 'array':
      return `array<${renderShape(s.of)}>`;
    case 'fixedarray':
      return `${renderShape(s.of)}[${s.length}]`;
    case 'struct':
      return `{ ${s.fields.map(renderField).join('; ')} }`;
    case 'union':
      return `union ${s.name}`;
    default:
      return s.kind;
  }
}

export const renderField = (f: { name: string; shape: WireShape }): string => `${looseName(f.name)}: ${renderShape(f.shape)}`;
