/**
 * src/libvirt/protocol/procedures.ts against libvirt's own definitions
 * (test/fixtures/libvirt): each procedure's number, and its argument, return and
 * message structs member by member, in order.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Codec } from '../../../src/libvirt/protocol/codec.js';
import { calls, messages, Proc } from '../../../src/libvirt/protocol/procedures.js';
import { messageError } from '../../../src/libvirt/protocol/types.js';
import { ShapeResolver, renderField } from '../support/xdr-shape.js';
import { parseXdr } from '../support/xdr-spec.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'libvirt');
/** Constants the .x files take from libvirt's C headers. */
const EXTERNALS = new Map([['VIR_UUID_BUFLEN', 16]]);

const load = (file: string): ShapeResolver =>
  new ShapeResolver(parseXdr(readFileSync(join(FIXTURES, file), 'utf8')), EXTERNALS);
const remoteSpec = parseXdr(readFileSync(join(FIXTURES, 'remote_protocol.x'), 'utf8'));
const remote = new ShapeResolver(remoteSpec, EXTERNALS);
const procedureNumbers = remoteSpec.enums.get('remote_procedure')!;

/** Our table's names as libvirt spells them: DomainDefineXMLFlags → domain_define_xml_flags. */
const snakeCase = (name: string): string =>
  name
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();

/** Our layout as one line per member; null for `void`. */
function ourFields(c: Codec<unknown>): string[] | null {
  if (c.shape.kind === 'void') return null;
  if (c.shape.kind !== 'struct') throw new Error(`a layout must be a struct or void, not ${c.shape.kind}`);
  return c.shape.fields.map(renderField);
}

/** libvirt's struct as one line per member; null when there is none (libvirt's `void`). */
const theirFields = (resolver: ShapeResolver, struct: string): string[] | null =>
  resolver.structFields(struct)?.map(renderField) ?? null;

describe('procedure table against remote_protocol.x', () => {
  it('names procedures as the test expects', () => {
    expect(snakeCase('DomainDefineXMLFlags')).toBe('domain_define_xml_flags');
    expect(snakeCase('DomainLookupByUUID')).toBe('domain_lookup_by_uuid');
    expect(snakeCase('ConnectGetUri')).toBe('connect_get_uri');
    expect(procedureNumbers.get('REMOTE_PROC_CONNECT_OPEN')).toBe(1);
  });

  it.each(Object.entries(calls))('%s', (name, p) => {
    const snake = snakeCase(name);
    const proc = `REMOTE_PROC_${snake.toUpperCase()}`;
    expect(procedureNumbers.has(proc), `${proc} in remote_protocol.x`).toBe(true);
    expect(p.number, proc).toBe(procedureNumbers.get(proc));
    expect(ourFields(p.args), `remote_${snake}_args`).toEqual(theirFields(remote, `remote_${snake}_args`));
    expect(ourFields(p.ret), `remote_${snake}_ret`).toEqual(theirFields(remote, `remote_${snake}_ret`));
  });

  it.each(Object.entries(messages))('%s (message)', (name, p) => {
    const snake = snakeCase(name);
    const proc = `REMOTE_PROC_${snake.toUpperCase()}`;
    expect(procedureNumbers.has(proc), `${proc} in remote_protocol.x`).toBe(true);
    expect(p.number, proc).toBe(procedureNumbers.get(proc));
    expect(ourFields(p.msg), `remote_${snake}_msg`).toEqual(theirFields(remote, `remote_${snake}_msg`));
  });

  it('gives every procedure its own number', () => {
    const numbers = Object.values(Proc);
    expect(new Set(numbers).size).toBe(numbers.length);
  });
});

describe('error payload against virnetprotocol.x', () => {
  it('decodes virNetMessageError as libvirt lays it out', () => {
    expect(ourFields(messageError)).toEqual(theirFields(load('virnetprotocol.x'), 'virNetMessageError'));
  });
});
