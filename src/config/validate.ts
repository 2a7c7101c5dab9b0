/**
 * Checking the YAML tree of vmenv.yaml against the descriptors of fields.ts, node by
 * node, so that every problem carries its key path and line. Nothing stops at the first
 * problem: a bad value is reported and left out, and the walk goes on.
 *
 * The result is, for each level (the top level and each machine), a plain object with
 * only the keys that were written and valid; defaults come later (normalize.ts).
 */
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import { didYouMean } from './did-you-mean.js';
import { EXTENSION_PREFIX, type Field, type MapField, MISPLACED_KEYS, type ObjectCheck, type ObjectField, type SizeField, type StringField, type TaggedField } from './fields.js';
import type { ConfigProblem } from './types.js';
import { formatSize, MiB, parseSize } from './units.js';

/** A value that was reported as wrong (and is left out of the result). */
export const INVALID: unique symbol = Symbol('invalid');

export interface Pos {
  line: number;
  column: number;
}

interface Entry {
  key: string;
  keyNode: Node;
  value: unknown;
}

/** `a.b`, `a[0]`. */
export function joinPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

function quote(text: string): string {
  const short = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  return `'${short.replaceAll('\n', '\\n')}'`;
}

export class Checker {
  readonly problems: ConfigProblem[] = [];
  readonly warnings: ConfigProblem[] = [];
  /** Where each key path was written: its value, or its key when the value is empty. */
  readonly positions = new Map<string, Pos>();
  /** The key path each checked object came from (list items keep it through merging). */
  readonly origins = new WeakMap<object, string>();
  /** Key paths whose value was reported as wrong (so they are not also "required"). */
  readonly invalidPaths = new Set<string>();
  /** Objects with a key that was reported as wrong (their cross-key checks are skipped). */
  private readonly incomplete = new WeakSet<object>();

  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
  ) {}

  pos(node: unknown): Pos | undefined {
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range === undefined) return undefined;
    const { line, col } = this.lineCounter.linePos(range[0]);
    return { line, column: col };
  }

  private add(list: ConfigProblem[], path: string, message: string, at: Pos | undefined): void {
    const p: ConfigProblem = { path, message };
    if (at !== undefined) p.line = at.line;
    if (list.some((q) => q.path === path && q.message === message && q.line === p.line)) return;
    list.push(p);
  }

  problem(path: string, message: string, at?: Pos | Node | null): void {
    this.add(this.problems, path, message, at === null || at === undefined || 'line' in at ? (at ?? undefined) : this.pos(at));
  }

  warn(path: string, message: string, at?: Pos | Node | null): void {
    this.add(this.warnings, path, message, at === null || at === undefined || 'line' in at ? (at ?? undefined) : this.pos(at));
  }

  /** A problem at the place a key path was written (as recorded while checking). */
  problemAt(path: string, message: string, fallback?: string): void {
    this.problem(path, message, this.positions.get(path) ?? (fallback === undefined ? undefined : this.positions.get(fallback)));
  }

  private describe(node: unknown): string {
    if (isMap(node)) return 'a map';
    if (isSeq(node)) return 'a list';
    if (isScalar(node)) {
      const v = node.value;
      if (v === null) return 'nothing';
      if (typeof v === 'string') return quote(v);
      if (typeof v === 'number') return node.source ?? String(v);
      return String(v);
    }
    return 'something else';
  }

  /** Follows an alias (`*name`) to its anchor. */
  private resolve(node: unknown, path: string): unknown {
    if (!isAlias(node)) return node;
    const target = node.resolve(this.doc);
    if (target === undefined) {
      this.problem(path, `refers to an unknown anchor '*${node.source}'`, node);
      return INVALID;
    }
    return target;
  }

  private isNull(node: unknown): boolean {
    return node === null || node === undefined || (isScalar(node) && node.value === null);
  }

  /**
   * The entries of a map, with YAML merge keys (`<<: *defaults`) expanded: keys written
   * in the map win over merged ones, and among merged maps the first wins.
   */
  entries(node: unknown, path: string): Entry[] {
    if (!isMap(node)) return [];
    const own: Entry[] = [];
    const merged: Entry[] = [];
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const k = pair.key;
      if (isScalar(k) && (typeof k.value === 'symbol' || (k.value === '<<' && k.type === 'PLAIN'))) {
        const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
        for (const source of sources) {
          const target = this.resolve(source, path);
          if (target === INVALID) continue;
          if (!isMap(target)) {
            this.problem(path, `'<<' merges maps only, got ${this.describe(target)}`, (source as Node | null) ?? k);
            continue;
          }
          merged.push(...this.entries(target, path));
        }
        continue;
      }
      if (!isScalar(k) || k.value === null || typeof k.value === 'object') {
        this.problem(path, 'keys must be plain names', (k as Node | null) ?? node);
        continue;
      }
      const key = typeof k.value === 'string' ? k.value : (k.source ?? String(k.value));
      own.push({ key, keyNode: k, value: pair.value });
    }
    const seen = new Set(own.map((e) => e.key));
    const result = [...own];
    for (const e of merged) {
      if (seen.has(e.key)) continue;
      seen.add(e.key);
      result.push(e);
    }
    return result;
  }

  /**
   * The checked value of `node` as `field` says, undefined when it is empty (a key with
   * no value counts as not written), or INVALID when it was reported.
   */
  check(field: Field, rawNode: unknown, path: string): unknown {
    const node = this.resolve(rawNode, path);
    if (node === INVALID) return INVALID;
    if (this.isNull(node)) return undefined;
    const value = this.checkKind(field, node, path);
    if (value === INVALID || value === undefined || field.normalize === undefined) return value;
    return (field.normalize as (v: unknown) => unknown)(value);
  }

  private checkKind(field: Field, node: unknown, path: string): unknown {
    switch (field.kind) {
      case 'string':
        return this.checkString(field, node, path);
      case 'int': {
        const v = isScalar(node) ? node.value : undefined;
        const what =
          field.what ??
          (field.max !== undefined
            ? `a whole number from ${field.min ?? 0} to ${field.max}`
            : field.min !== undefined
              ? `a whole number of at least ${field.min}`
              : 'a whole number');
        if (typeof v !== 'number' || !Number.isInteger(v) || (field.min !== undefined && v < field.min) || (field.max !== undefined && v > field.max)) {
          this.problem(path, `must be ${what}, got ${this.describe(node)}`, node as Node);
          return INVALID;
        }
        return v;
      }
      case 'bool': {
        const v = isScalar(node) ? node.value : undefined;
        if (typeof v !== 'boolean') {
          this.problem(path, `must be true or false, got ${this.describe(node)}`, node as Node);
          return INVALID;
        }
        return v;
      }
      case 'enum': {
        const v = isScalar(node) ? node.value : undefined;
        if (typeof v !== 'string' || !field.values.includes(v)) {
          const guess = typeof v === 'string' ? didYouMean(v, field.values) : undefined;
          const hint = guess === undefined ? '' : ` (did you mean '${guess}'?)`;
          this.problem(path, `must be one of ${field.values.join(', ')}; got ${this.describe(node)}${hint}`, node as Node);
          return INVALID;
        }
        return v;
      }
      case 'size':
        return this.checkSize(field, node, path);
      case 'object':
        return this.checkObject(field, node, path);
      case 'tagged':
        return this.checkTagged(field, node, path);
      case 'map':
        return this.checkMap(field, node, path);
      case 'list': {
        if (!isSeq(node)) {
          if (field.acceptSingle === true && isScalar(node)) {
            const one = this.check(field.item, node, path);
            return one === INVALID ? INVALID : [one];
          }
          this.problem(path, `must be a list, got ${this.describe(node)}`, node as Node);
          return INVALID;
        }
        const out: unknown[] = [];
        node.items.forEach((item, i) => {
          const itemPath = joinPath(path, i);
          const at = this.pos(item);
          if (at !== undefined) this.positions.set(itemPath, at);
          if (this.isNull(item) && !isAlias(item)) {
            this.problem(itemPath, 'is empty', (item as Node | null) ?? node);
            return;
          }
          const v = this.check(field.item, item, itemPath);
          // An item with a wrong key is left out whole, so that its defaults do not
          // stand in for what was wrong (and cause problems of their own).
          if (v === INVALID || v === undefined) return;
          if (typeof v === 'object' && v !== null && this.incomplete.has(v)) return;
          out.push(v);
        });
        return out;
      }
      case 'any':
        return (node as Node).toJS(this.doc);
      case 'union': {
        const option = field.options.find((o) =>
          isMap(node) ? o.kind === 'object' || o.kind === 'map' : isSeq(node) ? o.kind === 'list' : o.kind !== 'object' && o.kind !== 'map' && o.kind !== 'list',
        );
        if (option === undefined) {
          this.problem(path, `must be ${field.what}, got ${this.describe(node)}`, node as Node);
          return INVALID;
        }
        return this.check(option, node, path);
      }
    }
  }

  private checkString(field: StringField, node: unknown, path: string): unknown {
    let text: string | undefined;
    if (isScalar(node)) {
      if (typeof node.value === 'string') text = node.value;
      else if (typeof node.value === 'number' && field.numeric === true) text = node.source ?? String(node.value);
    }
    if (text === undefined) {
      this.problem(path, `must be a string, got ${this.describe(node)}`, node as Node);
      return INVALID;
    }
    if (text.trim() === '' && field.allowEmpty !== true) {
      this.problem(path, 'must not be empty', node as Node);
      return INVALID;
    }
    const wrong = field.check?.(text);
    if (wrong !== undefined) {
      this.problem(path, wrong, node as Node);
      return INVALID;
    }
    return text;
  }

  private checkSize(field: SizeField, node: unknown, path: string): unknown {
    const raw = isScalar(node) && (typeof node.value === 'number' || typeof node.value === 'string') ? node.value : undefined;
    const bytes = raw === undefined ? undefined : parseSize(raw, field.bare);
    const got = this.describe(node);
    if (bytes === undefined) {
      this.problem(path, `must be ${field.what}, got ${got}`, node as Node);
      return INVALID;
    }
    if (bytes < field.min) {
      let hint = '';
      if (typeof raw === 'number' && field.bare === 'MiB' && raw > 0 && raw * 1024 * MiB >= field.min) {
        hint = ` (a bare number is MiB: did you mean '${raw}G'?)`;
      }
      this.problem(path, `must be at least ${formatSize(field.min)}, got ${got}${hint}`, node as Node);
      return INVALID;
    }
    if (field.to === 'MiB') {
      const mib = bytes / MiB;
      if (!Number.isInteger(mib)) {
        this.problem(path, `must be a whole number of MiB, got ${got} (${Number(mib.toFixed(3))} MiB)`, node as Node);
        return INVALID;
      }
      return mib;
    }
    if (!Number.isInteger(bytes)) {
      this.problem(path, `must be a whole number of bytes, got ${got} (${bytes} bytes)`, node as Node);
      return INVALID;
    }
    if (!Number.isSafeInteger(bytes)) {
      this.problem(path, `is too large, got ${got}`, node as Node);
      return INVALID;
    }
    return bytes;
  }

  /** Records where each entry was written and reports keys that are not in `known`. */
  private unknownKey(key: string, known: string[], path: string, keyNode: Node, foreign?: string): void {
    const keyPath = joinPath(path, key);
    if (foreign !== undefined) {
      this.problem(keyPath, foreign, keyNode);
      return;
    }
    const guess = didYouMean(key, known);
    let hint = guess === undefined ? '' : `; did you mean '${guess}'?`;
    if (guess === undefined) {
      const place = MISPLACED_KEYS[key];
      if (place !== undefined && known.includes(place.split(/[.:]/)[0]!.trim())) hint = `; did you mean '${place}'?`;
    }
    this.problem(keyPath, `unknown key '${key}'${hint}`, keyNode);
  }

  /** Checks each entry against `fields` into `out`; returns the keys reported as wrong. */
  private checkFields(
    fields: Record<string, Field>,
    entries: Entry[],
    path: string,
    out: Record<string, unknown>,
    foreign: (key: string) => string | undefined = () => undefined,
  ): Set<string> {
    const known = Object.keys(fields);
    const wrong = new Set<string>();
    for (const { key, keyNode, value } of entries) {
      const keyPath = joinPath(path, key);
      const at = this.pos(this.isNull(value) ? keyNode : value) ?? this.pos(keyNode);
      if (at !== undefined && !this.positions.has(keyPath)) this.positions.set(keyPath, at);
      const field = fields[key];
      if (field === undefined) {
        this.unknownKey(key, known, path, keyNode, foreign(key));
        wrong.add(key);
        continue;
      }
      const v = this.check(field, value, keyPath);
      if (v === INVALID) {
        wrong.add(key);
        this.invalidPaths.add(keyPath);
      }
      else if (v !== undefined) out[key] = v;
    }
    return wrong;
  }

  private finishObject(
    out: Record<string, unknown>,
    wrong: Set<string>,
    node: unknown,
    path: string,
    required: readonly string[],
    check: ObjectCheck | undefined,
  ): Record<string, unknown> {
    for (const key of required) {
      // A key whose value was reported as wrong is not also "required".
      if (out[key] === undefined && !wrong.has(key)) this.problem(joinPath(path, key), 'is required', node as Node);
    }
    if (wrong.size > 0) this.incomplete.add(out);
    else if (check !== undefined) {
      check(out, (key, message) => {
        const at = key === undefined ? path : joinPath(path, key);
        this.problem(at, message, this.positions.get(at) ?? this.pos(node));
      });
    }
    this.origins.set(out, path);
    return out;
  }

  private checkObject(field: ObjectField, node: unknown, path: string): unknown {
    if (!isMap(node)) {
      this.problem(path, `must be a map of settings, got ${this.describe(node)}`, node as Node);
      return INVALID;
    }
    const out: Record<string, unknown> = {};
    const entries = this.entries(node, path).filter((e) => field.extensions !== true || !e.key.startsWith(EXTENSION_PREFIX));
    const wrong = this.checkFields(field.fields, entries, path, out);
    return this.finishObject(out, wrong, node, path, field.required ?? [], field.check);
  }

  private checkTagged(field: TaggedField, node: unknown, path: string): unknown {
    if (!isMap(node)) {
      this.problem(path, `must be a map of settings, got ${this.describe(node)}`, node as Node);
      return INVALID;
    }
    const entries = this.entries(node, path);
    const tags = Object.keys(field.variants);
    const tagEntry = entries.find((e) => e.key === field.tag);
    const tagPath = joinPath(path, field.tag);
    const tag = tagEntry === undefined ? undefined : this.check({ kind: 'enum', description: '', values: tags }, tagEntry.value, tagPath);
    if (tagEntry !== undefined) {
      const at = this.pos(tagEntry.value) ?? this.pos(tagEntry.keyNode);
      if (at !== undefined) this.positions.set(tagPath, at);
    }
    const rest = entries.filter((e) => e.key !== field.tag);
    const allKeys = new Set<string>([field.tag, ...Object.keys(field.common)]);
    for (const v of Object.values(field.variants)) for (const k of Object.keys(v.fields)) allKeys.add(k);

    if (typeof tag !== 'string') {
      if (tag === undefined) this.problem(tagPath, `is required (${tags.join(', ')})`, node);
      // Without a kind, only keys that no kind has can be judged.
      for (const e of rest) if (!allKeys.has(e.key)) this.unknownKey(e.key, [...allKeys], path, e.keyNode);
      return INVALID;
    }
    const variant = field.variants[tag]!;
    const fields = { ...field.common, ...variant.fields };
    const out: Record<string, unknown> = { [field.tag]: tag };
    const wrong = this.checkFields(fields, rest, path, out, (key) => {
      const owners = tags.filter((t) => key in field.variants[t]!.fields);
      return owners.length === 0 ? undefined : `applies only to ${owners.join(' and ')} ${field.noun}, not '${tag}'`;
    });
    return this.finishObject(out, wrong, node, path, variant.required ?? [], variant.check);
  }

  private checkMap(field: MapField, node: unknown, path: string): unknown {
    if (!isMap(node)) {
      this.problem(path, `must be a map, got ${this.describe(node)}`, node as Node);
      return INVALID;
    }
    const out: Record<string, unknown> = {};
    for (const { key, keyNode, value } of this.entries(node, path)) {
      const keyPath = joinPath(path, key);
      const at = this.pos(this.isNull(value) ? keyNode : value) ?? this.pos(keyNode);
      if (at !== undefined) this.positions.set(keyPath, at);
      const wrongKey = field.key?.check(key);
      if (wrongKey !== undefined) {
        this.problem(keyPath, wrongKey, keyNode);
        continue;
      }
      const v = this.check(field.value, value, keyPath);
      if (v === INVALID) continue;
      if (v === undefined) {
        // `web:` with nothing under it is a machine with no settings of its own; `debug:`
        // in extra_vars is a null; anywhere else an empty value is a mistake.
        if (field.emptyValues === true) out[key] = undefined;
        else if (field.value.kind === 'any') out[key] = null;
        else this.problem(keyPath, 'is empty', (value as Node | null) ?? keyNode);
        continue;
      }
      out[key] = v;
    }
    this.origins.set(out, path);
    return out;
  }

  /** Whether an object had a key reported as wrong. */
  isIncomplete(value: object): boolean {
    return this.incomplete.has(value);
  }
}
