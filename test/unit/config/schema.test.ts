/**
 * The JSON Schema and the validator agree: every key the schema lists is accepted by the
 * validator, the validator accepts no key the schema does not list, and both list the
 * same keys as the descriptors they are generated from.
 */
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { type Field, rootField } from '../../../src/config/fields.js';
import { configJsonSchema, type JsonSchema } from '../../../src/config/json-schema.js';
import { checkConfigText } from '../../../src/config/load.js';
import { FILE } from './helpers.js';

/**
 * A place in the file: keys, `[]` (an item of a list), `*` (an entry of a map), and
 * `=shell` (an object whose `type` is shell).
 */
type Segments = string[];

const schema = configJsonSchema();
const defs = schema['$defs'] as Record<string, JsonSchema>;

function deref(s: JsonSchema): JsonSchema {
  const ref = s['$ref'];
  if (typeof ref !== 'string') return s;
  const name = ref.replace('#/$defs/', '');
  const target = defs[name];
  if (target === undefined) throw new Error(`dangling $ref ${ref}`);
  return target;
}

/** Every key path in the schema, and every place that is an object with fixed keys. */
function schemaPaths(): { keys: Set<string>; objects: Segments[] } {
  const keys = new Set<string>();
  const objects: Segments[] = [];
  const seen = new Set<string>();
  const walk = (raw: JsonSchema, segs: Segments): void => {
    const s = deref(raw);
    const id = `${segs.join('.')}|${JSON.stringify(raw).slice(0, 200)}`;
    if (seen.has(id)) return;
    seen.add(id);
    for (const sub of (s['anyOf'] as JsonSchema[] | undefined) ?? []) walk(sub, segs);
    for (const variant of (s['oneOf'] as JsonSchema[] | undefined) ?? []) {
      const tag = ((variant['properties'] as Record<string, JsonSchema>)['type']!['const'] as string) ?? '';
      walk(variant, [...segs, `=${tag}`]);
    }
    if (s['items'] !== undefined) walk(s['items'] as JsonSchema, [...segs, '[]']);
    if (s['properties'] !== undefined && s['oneOf'] === undefined) {
      objects.push(segs);
      for (const [key, sub] of Object.entries(s['properties'] as Record<string, JsonSchema>)) {
        keys.add([...segs, key].join('.'));
        walk(sub, [...segs, key]);
      }
    }
    if (typeof s['additionalProperties'] === 'object') walk(s['additionalProperties'] as JsonSchema, [...segs, '*']);
  };
  walk(schema, []);
  return { keys, objects };
}

/** Every key path the descriptors (which drive the validator) define. */
function descriptorPaths(): Set<string> {
  const keys = new Set<string>();
  const walk = (f: Field, segs: Segments): void => {
    switch (f.kind) {
      case 'object':
        for (const [k, sub] of Object.entries(f.fields)) {
          keys.add([...segs, k].join('.'));
          walk(sub, [...segs, k]);
        }
        return;
      case 'list':
        walk(f.item, [...segs, '[]']);
        return;
      case 'map':
        walk(f.value, [...segs, '*']);
        return;
      case 'union':
        for (const o of f.options) walk(o, segs);
        return;
      case 'tagged':
        for (const [tag, variant] of Object.entries(f.variants)) {
          const vs = [...segs, `=${tag}`];
          keys.add([...vs, f.tag].join('.'));
          for (const [k, sub] of Object.entries({ ...f.common, ...variant.fields })) {
            keys.add([...vs, k].join('.'));
            walk(sub, [...vs, k]);
          }
        }
        return;
      default:
        return;
    }
  };
  walk(rootField, []);
  return keys;
}

/** A document with `leaf` at the place `segs` (map entries are named m1, tags set). */
function docAt(segs: Segments, leaf: Record<string, unknown> | null): unknown {
  const [s, ...rest] = segs;
  if (s === undefined) return leaf;
  if (s === '[]') return [docAt(rest, leaf)];
  if (s === '*') return { m1: docAt(rest, leaf) };
  if (s.startsWith('=')) return { type: s.slice(1), ...(docAt(rest, leaf) as object | null) };
  return { [s]: docAt(rest, leaf) };
}

/** The key path the validator names for the place `segs`. */
function validatorPath(segs: Segments): string {
  let path = '';
  for (const s of segs) {
    if (s === '[]') path += '[0]';
    else if (s === '*') path += path === '' ? 'm1' : '.m1';
    else if (s.startsWith('=')) continue;
    else path += path === '' ? s : `.${s}`;
  }
  return path;
}

function keyProblems(doc: unknown): string[] {
  return checkConfigText(stringify(doc), FILE)
    .problems.filter((p) => /unknown key|applies only to/.test(p.message))
    .map((p) => `${p.path}: ${p.message}`);
}

describe('JSON Schema', () => {
  it('is a draft 2020-12 object schema whose properties include machines, with descriptions', () => {
    expect(schema['$schema']).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema['type']).toBe('object');
    expect(schema['additionalProperties']).toBe(false);
    const props = schema['properties'] as Record<string, JsonSchema>;
    expect(Object.keys(props)).toContain('machines');
    for (const [key, prop] of Object.entries(props)) {
      expect(typeof prop['description'], key).toBe('string');
    }
    expect(() => JSON.parse(JSON.stringify(schema))).not.toThrow();
  });

  it('lists exactly the keys the descriptors define (which the validator checks against)', () => {
    const fromSchema = [...schemaPaths().keys].sort();
    const fromDescriptors = [...descriptorPaths()].sort();
    expect(fromSchema).toEqual(fromDescriptors);
    expect(fromSchema.length).toBeGreaterThan(100);
  });

  it('every key in the schema is accepted by the validator, wherever the schema puts it', () => {
    const rejected: string[] = [];
    for (const path of schemaPaths().keys) {
      const segs = path.split('.');
      const key = segs.pop()!;
      rejected.push(...keyProblems(docAt(segs, { [key]: null })));
    }
    expect(rejected).toEqual([]);
  });

  it('the validator accepts no key the schema does not list, at every level', () => {
    const { objects } = schemaPaths();
    expect(objects.length).toBeGreaterThan(15);
    for (const segs of objects) {
      const where = validatorPath(segs);
      const expected = where === '' ? 'zz_not_a_key' : `${where}.zz_not_a_key`;
      expect(keyProblems(docAt(segs, { zz_not_a_key: null })), segs.join('.')).toEqual([`${expected}: unknown key 'zz_not_a_key'`]);
    }
  });

  it('keys of one provisioner type are not in the schema of another, and the validator rejects them', () => {
    const { keys } = schemaPaths();
    const variantKeys = (tag: string): string[] =>
      [...keys].filter((k) => k.startsWith(`provision.[].=${tag}.`)).map((k) => k.split('.').pop()!);
    const shell = variantKeys('shell');
    const file = variantKeys('file');
    expect(shell).toContain('inline');
    expect(file).not.toContain('inline');
    expect(keyProblems({ provision: [{ type: 'file', inline: 'x' }] })).toEqual(["provision[0].inline: applies only to shell provisioners, not 'file'"]);
  });

  it('x- keys: allowed at the top level by both, nowhere else', () => {
    expect(Object.keys(schema['patternProperties'] as object)).toEqual(['^x-']);
    expect(keyProblems({ 'x-anything': { cpus: 2 } })).toEqual([]);
    expect(keyProblems({ ssh: { 'x-anything': 1 } })).toEqual(["ssh.x-anything: unknown key 'x-anything'"]);
    expect(JSON.stringify(schema).match(/patternProperties/g)).toHaveLength(1);
  });

  it('defaults in the schema are the defaults loadConfig fills', () => {
    const props = schema['properties'] as Record<string, JsonSchema>;
    const machine = checkConfigText('box: tiny\n', FILE).config!.machines[0]!;
    expect(props['cpus']!['default']).toBe(machine.cpus);
    expect(props['memory']!['default']).toBe(machine.memory);
    expect(props['suspend_mode']!['default']).toBe(machine.suspend_mode);
    const ssh = defs['ssh']!['properties'] as Record<string, JsonSchema>;
    expect(ssh['username']!['default']).toBe(machine.ssh.username);
    expect(ssh['port']!['default']).toBe(machine.ssh.port);
  });
});
