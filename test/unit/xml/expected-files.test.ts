/**
 * The expected files are the contract: each representative spec must produce exactly
 * its file, and every file must pass libvirt's own schema.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { domainXml, networkXml, poolXml, volumeXml } from '../../../src/libvirt/xml/index.js';
import { expectedDir, readExpected, validateXml } from './helpers.js';
import type { Schema } from './helpers.js';
import * as specs from './specs.js';

const cases: readonly (readonly [file: string, render: () => string])[] = [
  ['domain-session.xml', () => domainXml(specs.sessionDomain)],
  ['domain-kvm-q35.xml', () => domainXml(specs.kvmQ35Domain)],
  ['domain-uefi-auto.xml', () => domainXml(specs.uefiAutoDomain)],
  ['network-nat.xml', () => networkXml(specs.natNetwork)],
  ['network-isolated.xml', () => networkXml(specs.isolatedNetwork)],
  ['network-routed.xml', () => networkXml(specs.routedNetwork)],
  ['volume-overlay.xml', () => volumeXml(specs.overlayVolume)],
  ['volume-raw.xml', () => volumeXml(specs.rawVolume)],
  ['pool-dir.xml', () => poolXml(specs.dirPool)],
  ['pool-dir-permissions.xml', () => poolXml(specs.dirPoolWithPermissions)],
];

const SCHEMA_BY_PREFIX: Record<string, Schema> = {
  domain: 'domain',
  network: 'network',
  volume: 'storagevol',
  pool: 'storagepool',
};

function schemaFor(file: string): Schema {
  const schema = SCHEMA_BY_PREFIX[file.split('-')[0] ?? ''];
  if (schema === undefined) throw new Error(`expected file ${file} has no known prefix`);
  return schema;
}

describe('builders produce the expected files', () => {
  it.each(cases)('%s', (file, render) => {
    expect(render()).toBe(readExpected(file));
  });

  it('every expected file has a case', () => {
    const files = readdirSync(expectedDir).filter((f) => f.endsWith('.xml')).sort();
    expect(files).toEqual(cases.map(([f]) => f).sort());
  });

  it('output is deterministic', () => {
    for (const [, render] of cases) expect(render()).toBe(render());
  });
});

describe("expected files pass libvirt's schemas (virt-xml-validate)", () => {
  it.each(readdirSync(expectedDir).filter((f) => f.endsWith('.xml')).sort())('%s', (file) => {
    expect(validateXml(readExpected(file), schemaFor(file))).toContain('validates');
  });
});
