/**
 * A parser for the part of the XDR language (RFC 4506 §6, with rpcgen's extensions)
 * that libvirt's .x files use: const, enum, struct, typedef and union definitions;
 * fixed and variable arrays, optional `*`, opaque and bounded strings; `%` lines and
 * comments are skipped. Test code: it reads the vendored fixture, nothing else.
 */

/** A length or bound: a number, or the name of a constant (possibly a C macro). */
export type Bound = number | string;

export type Primitive =
  | 'int'
  | 'uint'
  | 'hyper'
  | 'uhyper'
  | 'char'
  | 'uchar'
  | 'short'
  | 'ushort'
  | 'float'
  | 'double'
  | 'bool';

export type XdrType =
  | { kind: 'primitive'; name: Primitive }
  | { kind: 'ref'; name: string }
  | { kind: 'string'; max: Bound | null }
  | { kind: 'opaque'; length: Bound }
  | { kind: 'varopaque'; max: Bound | null }
  | { kind: 'optional'; of: XdrType }
  | { kind: 'fixedarray'; of: XdrType; length: Bound }
  | { kind: 'array'; of: XdrType; max: Bound | null };

export interface Declaration {
  name: string;
  type: XdrType;
}

export interface UnionArm {
  /** The case labels; `default` for the default arm. */
  cases: (Bound | 'default')[];
  /** null for `void`. */
  decl: Declaration | null;
}

export interface XdrSpec {
  consts: Map<string, Bound>;
  enums: Map<string, Map<string, number>>;
  structs: Map<string, Declaration[]>;
  typedefs: Map<string, XdrType>;
  unions: Map<string, { discriminant: Declaration; arms: UnionArm[] }>;
}

export class XdrSyntaxError extends Error {}

type Token = { text: string; line: number };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  const re = /\/\*[\s\S]*?\*\/|\/\/[^\n]*|^[ \t]*%[^\n]*|\s+|-?0[xX][0-9a-fA-F]+|-?\d+|[A-Za-z_][A-Za-z0-9_]*|[{}[\]<>();,=*:]|./gmy;
  let line = 1;
  for (let m = re.exec(source); m !== null; m = re.exec(source)) {
    const text = m[0];
    const start = line;
    line += text.split('\n').length - 1;
    if (/^\s/.test(text) || text.startsWith('/*') || text.startsWith('//') || /^[ \t]*%/.test(text)) continue;
    if (!/^(-?0[xX][0-9a-fA-F]+|-?\d+|[A-Za-z_]\w*|[{}[\]<>();,=*:])$/.test(text)) {
      throw new XdrSyntaxError(`line ${start}: unexpected character '${text}'`);
    }
    tokens.push({ text, line: start });
  }
  return tokens;
}

const isNumber = (t: string): boolean => /^-?(0[xX][0-9a-fA-F]+|\d+)$/.test(t);
const isIdent = (t: string): boolean => /^[A-Za-z_]\w*$/.test(t);

class Parser {
  private pos = 0;
  readonly spec: XdrSpec = { consts: new Map(), enums: new Map(), structs: new Map(), typedefs: new Map(), unions: new Map() };

  constructor(private readonly tokens: Token[]) {}

  private peek(): string | undefined {
    return this.tokens[this.pos]?.text;
  }

  private fail(message: string): never {
    const t = this.tokens[this.pos] ?? this.tokens[this.tokens.length - 1];
    throw new XdrSyntaxError(`line ${t?.line ?? 0}: ${message}, found '${this.peek() ?? 'end of file'}'`);
  }

  private next(): string {
    const t = this.peek();
    if (t === undefined) this.fail('unexpected end of file');
    this.pos++;
    return t;
  }

  private accept(text: string): boolean {
    if (this.peek() !== text) return false;
    this.pos++;
    return true;
  }

  private expect(text: string): void {
    if (!this.accept(text)) this.fail(`expected '${text}'`);
  }

  private ident(): string {
    const t = this.peek();
    if (t === undefined || !isIdent(t)) this.fail('expected an identifier');
    this.pos++;
    return t;
  }

  private value(): Bound {
    const t = this.next();
    if (isNumber(t)) return Number(t);
    if (isIdent(t)) return t;
    this.pos--;
    this.fail('expected a number or a constant');
  }

  private define<T>(map: Map<string, T>, name: string, v: T): void {
    if (this.defined(name)) this.fail(`'${name}' is defined twice`);
    map.set(name, v);
  }

  private defined(name: string): boolean {
    const s = this.spec;
    return s.consts.has(name) || s.enums.has(name) || s.structs.has(name) || s.typedefs.has(name) || s.unions.has(name);
  }

  parse(): XdrSpec {
    while (this.peek() !== undefined) this.definition();
    return this.spec;
  }

  private definition(): void {
    const keyword = this.next();
    switch (keyword) {
      case 'const': {
        const name = this.ident();
        this.expect('=');
        this.define(this.spec.consts, name, this.value());
        break;
      }
      case 'enum':
        this.define(this.spec.enums, this.ident(), this.enumBody());
        break;
      case 'struct': {
        const name = this.ident();
        this.define(this.spec.structs, name, this.structBody());
        break;
      }
      case 'union': {
        const name = this.ident();
        this.define(this.spec.unions, name, this.unionBody());
        break;
      }
      case 'typedef': {
        const d = this.declaration();
        if (d === null) this.fail('typedef of void');
        this.define(this.spec.typedefs, d.name, d.type);
        break;
      }
      default:
        this.pos--;
        this.fail('expected const, enum, struct, union or typedef');
    }
    this.expect(';');
  }

  private enumBody(): Map<string, number> {
    const members = new Map<string, number>();
    this.expect('{');
    do {
      const name = this.ident();
      this.expect('=');
      const v = this.value();
      const n = typeof v === 'number' ? v : (members.get(v) ?? this.constNumber(v));
      members.set(name, n);
    } while (this.accept(','));
    this.expect('}');
    return members;
  }

  private constNumber(name: string): number {
    const v = this.spec.consts.get(name);
    if (typeof v !== 'number') this.fail(`'${name}' is not a numeric constant`);
    return v;
  }

  private structBody(): Declaration[] {
    const fields: Declaration[] = [];
    this.expect('{');
    do {
      const d = this.declaration();
      if (d === null) this.fail('void member in a struct');
      fields.push(d);
      this.expect(';');
    } while (!this.accept('}'));
    return fields;
  }

  private unionBody(): { discriminant: Declaration; arms: UnionArm[] } {
    this.expect('switch');
    this.expect('(');
    const discriminant = this.declaration();
    if (discriminant === null) this.fail('void discriminant');
    this.expect(')');
    this.expect('{');
    const arms: UnionArm[] = [];
    while (!this.accept('}')) {
      const cases: (Bound | 'default')[] = [];
      for (;;) {
        if (this.accept('case')) cases.push(this.value());
        else if (this.accept('default')) cases.push('default');
        else break;
        this.expect(':');
      }
      if (cases.length === 0) this.fail("expected 'case' or 'default'");
      arms.push({ cases, decl: this.declaration() });
      this.expect(';');
    }
    return { discriminant, arms };
  }

  /** One declaration; null for `void`. */
  private declaration(): Declaration | null {
    if (this.accept('void')) return null;
    if (this.accept('string')) {
      const name = this.ident();
      return { name, type: { kind: 'string', max: this.varBound() } };
    }
    if (this.accept('opaque')) {
      const name = this.ident();
      if (this.accept('[')) {
        const length = this.value();
        this.expect(']');
        return { name, type: { kind: 'opaque', length } };
      }
      return { name, type: { kind: 'varopaque', max: this.varBound() } };
    }
    const base = this.typeSpecifier();
    if (this.accept('*')) return { name: this.ident(), type: { kind: 'optional', of: base } };
    const name = this.ident();
    if (this.accept('[')) {
      const length = this.value();
      this.expect(']');
      return { name, type: { kind: 'fixedarray', of: base, length } };
    }
    if (this.peek() === '<') return { name, type: { kind: 'array', of: base, max: this.varBound() } };
    return { name, type: base };
  }

  /** `<>` or `<bound>`; a string or opaque must have one. */
  private varBound(): Bound | null {
    this.expect('<');
    if (this.accept('>')) return null;
    const v = this.value();
    this.expect('>');
    return v;
  }

  private typeSpecifier(): XdrType {
    const prim = (name: Primitive): XdrType => ({ kind: 'primitive', name });
    if (this.accept('unsigned')) {
      if (this.accept('int')) return prim('uint');
      if (this.accept('hyper')) return prim('uhyper');
      if (this.accept('char')) return prim('uchar');
      if (this.accept('short')) return prim('ushort');
      return prim('uint'); // rpcgen: a bare `unsigned` is `unsigned int`
    }
    const t = this.peek();
    if (t === 'int' || t === 'hyper' || t === 'char' || t === 'short' || t === 'float' || t === 'double' || t === 'bool') {
      this.pos++;
      return prim(t);
    }
    if (t === 'struct' || t === 'enum' || t === 'union') this.fail('inline type definitions are not supported');
    return { kind: 'ref', name: this.ident() };
  }
}

export function parseXdr(source: string): XdrSpec {
  return new Parser(tokenize(source)).parse();
}
