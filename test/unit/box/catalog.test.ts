import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifySource, parseCatalog, resolveCatalog, type Catalog } from '../../../src/box/catalog.js';
import { parseChecksum } from '../../../src/box/download.js';
import { UserError } from '../../../src/errors.js';
import { tempDir } from './helpers.js';

const sha = (c: string): string => c.repeat(64);
const catalog: Catalog = parseCatalog(
  JSON.stringify({
    name: 'vmenv/debian-12',
    versions: [
      { version: '1.0', providers: [{ name: 'libvirt', url: 'debian-1.0.box', checksum: sha('a'), checksum_type: 'sha256' }] },
      { version: '1.2', providers: [{ name: 'virtualbox', url: 'vb-1.2.box' }, { name: 'libvirt', url: 'https://cdn.example/debian-1.2.box', checksum: sha('b'), checksum_type: 'sha256' }] },
      { version: '1.10', providers: [{ name: 'libvirt', url: '/abs/debian-1.10.box', checksum: 'c'.repeat(128), checksum_type: 'sha512' }] },
      { version: '1.11', providers: [{ name: 'virtualbox', url: 'vb-1.11.box' }] },
      { version: '1.12', providers: [{ name: 'libvirt', url: 'arm.box', architecture: 'arm64' }, { name: 'libvirt', url: 'amd.box', architecture: 'amd64' }] },
      { version: '2.0', status: 'revoked', providers: [{ name: 'libvirt', url: 'revoked.box' }] },
      { version: 3, providers: [{ name: 'libvirt', url: 'three.box', checksum: 'sha1:' + 'd'.repeat(40) }] },
    ],
  }),
  'test catalog',
);
const base = 'https://boxes.example/catalogs/debian.json';

describe('resolveCatalog', () => {
  it('picks the newest libvirt version', () => {
    const r = resolveCatalog(catalog, { baseUrl: base, source: 'x', hostArch: 'amd64' });
    expect(r).toMatchObject({ name: 'vmenv/debian-12', version: '3', url: 'https://boxes.example/catalogs/three.box', checksum: { algorithm: 'sha1', hex: 'd'.repeat(40) } });
    expect(r.available).toEqual(['3', '1.12', '1.10', '1.2', '1.0']);
  });

  it('honours a constraint, ordering 1.10 above 1.9, skipping versions without libvirt', () => {
    expect(resolveCatalog(catalog, { constraint: '>= 1.2, < 2', baseUrl: base, source: 'x', hostArch: 'amd64' }).version).toBe('1.12');
    expect(resolveCatalog(catalog, { constraint: '< 1.11', baseUrl: base, source: 'x', hostArch: 'amd64' })).toMatchObject({
      version: '1.10',
      url: 'https://boxes.example/abs/debian-1.10.box',
      checksum: { algorithm: 'sha512' },
    });
    expect(resolveCatalog(catalog, { constraint: '~> 1.2.0', baseUrl: base, source: 'x', hostArch: 'amd64' })).toMatchObject({
      version: '1.2',
      url: 'https://cdn.example/debian-1.2.box',
      checksum: { algorithm: 'sha256', hex: sha('b') },
    });
    expect(resolveCatalog(catalog, { constraint: '= 1.0', baseUrl: base, source: 'x', hostArch: 'amd64' }).url).toBe('https://boxes.example/catalogs/debian-1.0.box');
  });

  it("picks the host's architecture", () => {
    expect(resolveCatalog(catalog, { constraint: '= 1.12', baseUrl: base, source: 'x', hostArch: 'amd64' }).url).toMatch(/amd\.box$/);
    expect(resolveCatalog(catalog, { constraint: '= 1.12', baseUrl: base, source: 'x', hostArch: 'arm64' }).url).toMatch(/arm\.box$/);
  });

  it('never picks a revoked version', () => {
    expect(() => resolveCatalog(catalog, { constraint: '= 2.0', baseUrl: base, source: 'x', hostArch: 'amd64' })).toThrow(/No version/);
  });

  it('no match: a clear error listing the available versions', () => {
    let err: UserError | undefined;
    try {
      resolveCatalog(catalog, { constraint: '>= 4', baseUrl: base, source: 'x', hostArch: 'amd64' });
    } catch (e) {
      err = e as UserError;
    }
    expect(err).toBeInstanceOf(UserError);
    expect(err!.message).toBe("No version of 'vmenv/debian-12' matches '>= 4'.");
    expect(err!.hint).toBe('Versions with a libvirt box: 3, 1.12, 1.10, 1.2, 1.0.');
  });

  it('no libvirt provider at all: says what there is', () => {
    const vb = parseCatalog(JSON.stringify({ name: 'x', versions: [{ version: '1', providers: [{ name: 'virtualbox', url: 'a' }] }] }), 's');
    expect(() => resolveCatalog(vb, { baseUrl: base, source: 's', hostArch: 'amd64' })).toThrow(/no libvirt box/);
    try {
      resolveCatalog(vb, { baseUrl: base, source: 's', hostArch: 'amd64' });
    } catch (e) {
      expect((e as UserError).hint).toMatch(/virtualbox/);
    }
  });

  it('a bad checksum in the catalog is the catalog’s fault', () => {
    const bad = parseCatalog(JSON.stringify({ name: 'x', versions: [{ version: '1', providers: [{ name: 'libvirt', url: 'a', checksum: 'abc', checksum_type: 'sha256' }] }] }), 's');
    expect(() => resolveCatalog(bad, { baseUrl: base, source: 's', hostArch: 'amd64' })).toThrow(/catalog s is not valid: version 1: a sha256 checksum has 64 hex digits/);
  });
});

describe('parseCatalog', () => {
  for (const [text, what] of [
    ['nope', /not JSON/],
    ['[]', /not a JSON object/],
    ['{"versions":[]}', /no 'name'/],
    ['{"name":"x"}', /no 'versions' list/],
    ['{"name":"x","versions":[{"providers":[]}]}', /versions\[0\] has no 'version'/],
    ['{"name":"x","versions":[{"version":"1","providers":[{"name":"libvirt"}]}]}', /versions\[0\]\.providers\[0\] has no 'url'/],
  ] as const) {
    it(`rejects ${text}`, () => expect(() => parseCatalog(text, 'c.json')).toThrow(what));
  }
});

describe('parseChecksum', () => {
  it('reads algo:hex, algo=hex, a type given apart, and guesses by length', () => {
    expect(parseChecksum(`sha256:${sha('A')}`)).toEqual({ algorithm: 'sha256', hex: sha('a') });
    expect(parseChecksum(`SHA512=${'b'.repeat(128)}`)).toEqual({ algorithm: 'sha512', hex: 'b'.repeat(128) });
    expect(parseChecksum('c'.repeat(32), 'MD5')).toEqual({ algorithm: 'md5', hex: 'c'.repeat(32) });
    expect(parseChecksum('d'.repeat(40))).toEqual({ algorithm: 'sha1', hex: 'd'.repeat(40) });
  });
  it('rejects what it cannot use', () => {
    expect(() => parseChecksum('sha256:xyz')).toThrow(/not hexadecimal/);
    expect(() => parseChecksum('sha256:abcd')).toThrow(/64 hex digits/);
    expect(() => parseChecksum(`crc32:${'a'.repeat(8)}`)).toThrow(/unsupported algorithm 'crc32'/);
    expect(() => parseChecksum('abc')).toThrow(/cannot tell the algorithm/);
    expect(() => parseChecksum(`sha256:${sha('a')}`, 'sha512')).toThrow(/says sha256 but its type is sha512/);
  });
});

describe('classifySource', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir();
    writeFileSync(join(tmp.path, 'x.box'), Buffer.alloc(1024));
    writeFileSync(join(tmp.path, 'cat.json'), '  {"name":"c","versions":[]}');
    mkdirSync(join(tmp.path, 'dir'));
  });
  afterAll(() => tmp.cleanup());

  it('files, catalogs, URLs and names', async () => {
    expect(await classifySource('x.box', { cwd: tmp.path })).toEqual({ kind: 'file', path: join(tmp.path, 'x.box') });
    expect(await classifySource(`file://${join(tmp.path, 'x.box')}`)).toEqual({ kind: 'file', path: join(tmp.path, 'x.box') });
    const cat = await classifySource('cat.json', { cwd: tmp.path });
    expect(cat.kind).toBe('catalog');
    expect(cat.kind === 'catalog' && cat.baseUrl).toBe(`file://${join(tmp.path, 'cat.json')}`);
    expect(await classifySource('https://example.org/a.box')).toEqual({ kind: 'url', url: 'https://example.org/a.box' });
    expect(await classifySource('vmenv/tiny', { cwd: tmp.path })).toEqual({ kind: 'name', name: 'vmenv/tiny' });
    expect(await classifySource('debian-12', { cwd: tmp.path })).toEqual({ kind: 'name', name: 'debian-12' });
  });

  it('a path that does not exist is an error, not a name', async () => {
    await expect(classifySource('./missing.box', { cwd: tmp.path })).rejects.toThrow(/does not exist/);
    await expect(classifySource('missing.json', { cwd: tmp.path })).rejects.toThrow(/does not exist/);
    await expect(classifySource('dir', { cwd: tmp.path })).rejects.toThrow(/is a directory/);
    await expect(classifySource('ftp://x/y.box')).rejects.toThrow(/Unsupported URL scheme/);
  });
});
