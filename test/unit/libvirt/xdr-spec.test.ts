import { describe, expect, it } from 'vitest';
import { ShapeResolver, renderField } from '../support/xdr-shape.js';
import { XdrSyntaxError, parseXdr } from '../support/xdr-spec.js';

const SAMPLE = `
/* A comment, with struct and ; inside. */
%#include "internal.h"
const NAME_MAX = 64;
const ALIAS = NAME_MAX;
typedef string nonnull_string<NAME_MAX>;
typedef nonnull_string *maybe_string;
typedef opaque uuid[UUID_BUFLEN];
enum colour { RED = 0, GREEN = 0x2, BLUE = -1 };
struct point {
    unsigned int x;
    unsigned y;
    hyper z;
    unsigned hyper w;
    unsigned char c;
    short s;
};
struct shape {
    nonnull_string name;
    maybe_string label;
    uuid id;
    colour colour;
    point corners<ALIAS>;
    point *centre;
    int matrix[4];
    opaque blob<>;
    string text<>;
};
union value switch (int type) {
 case 1:
 case 2:
    int i;
 case RED:
    void;
 default:
    double d;
};
enum procedure {
    PROC_OPEN = 1, /* with a comment */
    PROC_CLOSE = 2
};
`;

describe('parseXdr', () => {
  const spec = parseXdr(SAMPLE);

  it('reads constants, typedefs and enums', () => {
    expect([...spec.consts]).toEqual([
      ['NAME_MAX', 64],
      ['ALIAS', 'NAME_MAX'],
    ]);
    expect(spec.typedefs.get('nonnull_string')).toEqual({ kind: 'string', max: 'NAME_MAX' });
    expect(spec.typedefs.get('maybe_string')).toEqual({ kind: 'optional', of: { kind: 'ref', name: 'nonnull_string' } });
    expect(spec.typedefs.get('uuid')).toEqual({ kind: 'opaque', length: 'UUID_BUFLEN' });
    expect([...spec.enums.get('colour')!]).toEqual([
      ['RED', 0],
      ['GREEN', 2],
      ['BLUE', -1],
    ]);
    expect([...spec.enums.get('procedure')!]).toEqual([
      ['PROC_OPEN', 1],
      ['PROC_CLOSE', 2],
    ]);
  });

  it('reads struct members in order, with every kind of declaration', () => {
    expect(spec.structs.get('point')!.map((d) => [d.name, d.type])).toEqual([
      ['x', { kind: 'primitive', name: 'uint' }],
      ['y', { kind: 'primitive', name: 'uint' }],
      ['z', { kind: 'primitive', name: 'hyper' }],
      ['w', { kind: 'primitive', name: 'uhyper' }],
      ['c', { kind: 'primitive', name: 'uchar' }],
      ['s', { kind: 'primitive', name: 'short' }],
    ]);
    expect(spec.structs.get('shape')!.map((d) => d.type.kind)).toEqual([
      'ref',
      'ref',
      'ref',
      'ref',
      'array',
      'optional',
      'fixedarray',
      'varopaque',
      'string',
    ]);
  });

  it('reads unions with stacked and default cases', () => {
    const u = spec.unions.get('value')!;
    expect(u.discriminant).toEqual({ name: 'type', type: { kind: 'primitive', name: 'int' } });
    expect(u.arms.map((a) => [a.cases, a.decl?.name ?? null])).toEqual([
      [[1, 2], 'i'],
      [['RED'], null],
      [['default'], 'd'],
    ]);
  });

  it('says where the syntax is wrong', () => {
    expect(() => parseXdr('const A = 1;\nstruct s {\n  int a\n};')).toThrow(new XdrSyntaxError("line 4: expected ';', found '}'"));
    expect(() => parseXdr('const A = 1; const A = 2;')).toThrow(/'A' is defined twice/);
    expect(() => parseXdr('struct s { int a; } @')).toThrow(/unexpected character '@'/);
  });
});

describe('ShapeResolver', () => {
  const resolver = new ShapeResolver(parseXdr(SAMPLE), new Map([['UUID_BUFLEN', 16]]));

  it('resolves typedefs, enums and nested structs to wire types', () => {
    expect(resolver.structFields('shape')!.map(renderField)).toEqual([
      'name: string',
      'label: optional<string>',
      'id: opaque[16]',
      'colour: int',
      'corners: array<{ x: uint; y: uint; z: hyper; w: uhyper; c: uint; s: int }>',
      'centre: optional<{ x: uint; y: uint; z: hyper; w: uhyper; c: uint; s: int }>',
      'matrix: int[4]',
      'blob: opaque<>',
      'text: string',
    ]);
    expect(resolver.structFields('missing')).toBeNull();
  });

  it('refuses constants and types it cannot resolve', () => {
    const bare = new ShapeResolver(parseXdr('typedef opaque u[LEN]; struct s { u a; t b; };'));
    expect(() => bare.structFields('s')).toThrow("unknown constant 'LEN'");
    expect(() => bare.resolve({ kind: 'ref', name: 't' })).toThrow("unknown type 't'");
  });
});
