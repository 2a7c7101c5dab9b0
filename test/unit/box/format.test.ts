import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  detectCompression,
  parseQcow2Header,
  qcow2Problem,
  readBoxArchive,
  readBoxMetadata,
  writeBoxArchive,
} from '../../../src/box/format.js';
import { normalizeBoxPath, parseBoxMetadata, virtualSizeGiB } from '../../../src/box/metadata.js';
import { UserError } from '../../../src/errors.js';
import { headerOffsets, leftovers, libvirtMetadata, makeQcow2, makeTar, patchTarSize, tempDir } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let diskA: string;
let diskB: string;
let qcow: Buffer;

beforeAll(() => {
  tmp = tempDir();
  diskA = makeQcow2(join(tmp.path, 'a.qcow2'), '64M');
  diskB = makeQcow2(join(tmp.path, 'b.qcow2'), '3G');
  qcow = readFileSync(diskA);
});
afterAll(() => tmp.cleanup());

let n = 0;
const fresh = (): string => join(tmp.path, `case-${++n}`);

describe('writeBoxArchive / readBoxArchive round trip', () => {
  for (const gzip of [true, false]) {
    it(`v1 (one disk), ${gzip ? 'gzip' : 'plain tar'}`, async () => {
      const out = join(fresh(), 'one.box');
      const progress: number[] = [];
      await writeBoxArchive(
        out,
        { metadata: { provider: 'libvirt', vmenv: { name: 'vmenv/tiny', version: '1.0.0', default_user: 'vagrant', nocloud: true } }, disks: [{ path: diskA }], vagrantfile: '# vmenv\n' },
        { gzip, onProgress: (b) => progress.push(b) },
      );
      const head = readFileSync(out).subarray(0, 2);
      expect(head[0] === 0x1f && head[1] === 0x8b).toBe(gzip);
      expect(progress.at(-1)).toBe(statSync(diskA).size);
      expect(leftovers(join(out, '..'))).toEqual(['one.box']);

      const dest = fresh();
      const box = await readBoxArchive(out, dest);
      expect(box.layout).toBe('v1');
      expect(box.metadata).toEqual({
        provider: 'libvirt',
        format: 'qcow2',
        virtual_size: 1,
        vmenv: { name: 'vmenv/tiny', version: '1.0.0', default_user: 'vagrant', nocloud: true },
      });
      expect(box.disks).toHaveLength(1);
      expect(box.disks[0]).toMatchObject({ boxPath: 'box.img', format: 'qcow2', virtualSize: 64 * 1024 * 1024, size: qcow.length });
      expect(readFileSync(box.disks[0]!.path).equals(qcow)).toBe(true);
      expect(readFileSync(box.vagrantfile!, 'utf8')).toBe('# vmenv\n');
      expect(box.files.sort()).toEqual(['Vagrantfile', 'box.img', 'metadata.json']);
      expect(await readBoxMetadata(out)).toEqual(box.metadata);
    });

    it(`v2 (two disks), ${gzip ? 'gzip' : 'plain tar'}`, async () => {
      const out = join(fresh(), 'two.box');
      await writeBoxArchive(out, { metadata: { provider: 'libvirt' }, disks: [{ path: diskA }, { path: diskB, name: 'data' }] }, { gzip });
      const box = await readBoxArchive(out, fresh());
      expect(box.layout).toBe('v2');
      expect(box.metadata.disks).toEqual([{ path: 'box_1.img' }, { path: 'box_2.img', name: 'data' }]);
      expect(box.metadata['format']).toBeUndefined();
      expect(box.disks.map((d) => [d.boxPath, d.name, d.virtualSize])).toEqual([
        ['box_1.img', undefined, 64 * 1024 * 1024],
        ['box_2.img', 'data', 3 * 1024 ** 3],
      ]);
      expect(readFileSync(box.disks[1]!.path).equals(readFileSync(diskB))).toBe(true);
    });
  }

  it('v2 with a raw disk: written with "format": "raw", read back as raw, its size the file size', async () => {
    const raw = join(fresh(), 'data.raw');
    const bytes = Buffer.alloc(2 * 1024 * 1024);
    bytes.write('vmenv-data-disk');
    mkdirSync(dirname(raw), { recursive: true });
    writeFileSync(raw, bytes);
    const out = join(fresh(), 'raw2.box');
    await writeBoxArchive(out, { metadata: { provider: 'libvirt' }, disks: [{ path: diskA }, { path: raw }] });
    const box = await readBoxArchive(out, fresh());
    expect(box.metadata.disks).toEqual([{ path: 'box_1.img' }, { path: 'box_2.img', format: 'raw' }]);
    expect(box.disks.map((d) => [d.format, d.virtualSize])).toEqual([
      ['qcow2', 64 * 1024 * 1024],
      ['raw', bytes.length],
    ]);
  });

  it('v2: a disk that is not qcow2 must be declared raw; a declared format must match', async () => {
    const data = Buffer.alloc(4096, 1);
    const undeclared = await makeTar([
      { name: 'metadata.json', data: JSON.stringify({ provider: 'libvirt', disks: [{ path: 'a.img' }, { path: 'b.img' }] }) },
      { name: 'a.img', data: qcow },
      { name: 'b.img', data },
    ]);
    await expect(readBoxArchive(Readable.from([undeclared]), fresh())).rejects.toThrow(/'b\.img' is not a qcow2 image/);
    const byDefault = await makeTar([
      { name: 'metadata.json', data: JSON.stringify({ provider: 'libvirt', format: 'raw', disks: [{ path: 'b.img' }] }) },
      { name: 'b.img', data },
    ]);
    expect((await readBoxArchive(Readable.from([byDefault]), fresh())).disks[0]!.format).toBe('raw');
    const mismatch = await makeTar([
      { name: 'metadata.json', data: JSON.stringify({ provider: 'libvirt', disks: [{ path: 'a.img', format: 'raw' }] }) },
      { name: 'a.img', data: qcow },
    ]);
    await expect(readBoxArchive(Readable.from([mismatch]), fresh())).rejects.toThrow(/says format 'raw' but 'a\.img' is qcow2/);
  });

  it('v1 raw: "format": "raw" reads box.img as raw', async () => {
    const tarball = await makeTar([
      { name: 'metadata.json', data: JSON.stringify({ provider: 'libvirt', format: 'raw', virtual_size: 1 }) },
      { name: 'box.img', data: Buffer.alloc(8192, 2) },
    ]);
    expect((await readBoxArchive(Readable.from([tarball]), fresh())).disks[0]).toMatchObject({ format: 'raw', virtualSize: 8192 });
  });

  it('reads from a stream as well as from a path', async () => {
    const out = join(fresh(), 's.box');
    await writeBoxArchive(out, { metadata: { provider: 'libvirt' }, disks: [{ path: diskA }] });
    const box = await readBoxArchive(createReadStream(out), fresh());
    expect(box.disks[0]!.size).toBe(qcow.length);
  });

  it('reads a vagrant-libvirt v2 box with disks in a subfolder and a "./" prefix', async () => {
    const tarball = await makeTar([
      { name: './', type: 'directory' },
      { name: './metadata.json', data: JSON.stringify({ provider: 'libvirt', disks: [{ path: 'disks/one.img' }] }) },
      { name: './disks/', type: 'directory' },
      { name: './disks/one.img', data: qcow },
    ]);
    const box = await readBoxArchive(Readable.from([tarball]), fresh());
    expect(box.disks[0]!.boxPath).toBe('disks/one.img');
  });

  it('fills in the provider, and takes a gzip level', async () => {
    const out = join(fresh(), 'p.box');
    await writeBoxArchive(out, { metadata: { vmenv: { recipe: 'tiny', recipe_hash: 'sha256:00' } }, disks: [{ path: diskA }] }, { gzipLevel: 1 });
    const box = await readBoxArchive(out, fresh());
    expect(box.metadata).toEqual({ provider: 'libvirt', format: 'qcow2', virtual_size: 1, vmenv: { recipe: 'tiny', recipe_hash: 'sha256:00' } });
    await expect(writeBoxArchive(join(fresh(), 'vb.box'), { metadata: { provider: 'virtualbox' }, disks: [{ path: diskA }] })).rejects.toThrow(/libvirt boxes/);
  });

  it('v1 virtual_size is whole GiB rounded up', () => {
    expect(virtualSizeGiB(64 * 1024 * 1024)).toBe(1);
    expect(virtualSizeGiB(1024 ** 3)).toBe(1);
    expect(virtualSizeGiB(1024 ** 3 + 1)).toBe(2);
  });

  it('writes nothing and removes its temporary file when aborted', async () => {
    const dir = fresh();
    const out = join(dir, 'x.box');
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(writeBoxArchive(out, { metadata: { provider: 'libvirt' }, disks: [{ path: diskB }] }, { signal: ac.signal })).rejects.toThrow('stop');
    expect(existsSync(out)).toBe(false);
    expect(leftovers(dir)).toEqual([]);

    const ac2 = new AbortController();
    const p = writeBoxArchive(out, { metadata: { provider: 'libvirt' }, disks: [{ path: diskA }, { path: diskB }] }, { signal: ac2.signal, onProgress: () => ac2.abort(new Error('midway')) });
    await expect(p).rejects.toThrow('midway');
    expect(leftovers(dir)).toEqual([]);
  });

  it('refuses a disk that is not an image qemu-img can read', async () => {
    const dir = fresh();
    const out = join(dir, 'x.box');
    await expect(writeBoxArchive(out, { metadata: { provider: 'libvirt' }, disks: [{ path: join(dir, 'missing.qcow2') }] })).rejects.toBeInstanceOf(UserError);
    expect(existsSync(out)).toBe(false);
  });
});

describe('readBoxArchive refuses bad input and leaves nothing behind', () => {
  const meta = { name: 'metadata.json', data: libvirtMetadata };
  const disk = (): { name: string; data: Buffer } => ({ name: 'box.img', data: qcow });

  async function expectRefused(archive: Buffer, pattern: RegExp): Promise<void> {
    const parent = fresh();
    const dest = join(parent, 'unpacked');
    const err = await readBoxArchive(Readable.from([archive]), dest).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(pattern);
    expect((err as UserError).hint).toBeTruthy();
    expect(existsSync(dest)).toBe(false);
    expect(leftovers(parent)).toEqual([]);
  }

  const cases: { title: string; entries: () => Parameters<typeof makeTar>[0]; error: RegExp }[] = [
    { title: "an entry with '..'", entries: () => [meta, { name: '../x', data: 'evil' }, disk()], error: /entry '\.\.\/x' reaches outside the box/ },
    { title: "'..' in the middle of a path", entries: () => [meta, { name: 'a/../../x', data: 'evil' }, disk()], error: /'a\/\.\.\/\.\.\/x' reaches outside/ },
    { title: 'an absolute path', entries: () => [meta, { name: '/abs', data: 'evil' }, disk()], error: /entry '\/abs' has an absolute path/ },
    { title: 'a symlink', entries: () => [meta, { name: 'box.img', type: 'symlink', linkname: '/etc/passwd' }], error: /entry 'box\.img' is a symbolic link/ },
    { title: 'a hard link', entries: () => [meta, disk(), { name: 'copy.img', type: 'link', linkname: 'box.img' }], error: /entry 'copy\.img' is a hard link/ },
    { title: 'a character device', entries: () => [meta, { name: 'null', type: 'character-device' }, disk()], error: /entry 'null' is a character device file/ },
    { title: 'a block device', entries: () => [meta, { name: 'sda', type: 'block-device' }, disk()], error: /entry 'sda' is a block device file/ },
    { title: 'a FIFO', entries: () => [meta, { name: 'pipe', type: 'fifo' }, disk()], error: /entry 'pipe' is a FIFO/ },
    { title: 'a missing metadata.json', entries: () => [disk()], error: /has no metadata\.json/ },
    { title: 'provider virtualbox', entries: () => [{ name: 'metadata.json', data: JSON.stringify({ provider: 'virtualbox' }) }, disk()], error: /for the 'virtualbox' provider, not libvirt/ },
    { title: 'metadata.json that is not JSON', entries: () => [{ name: 'metadata.json', data: '{nope' }, disk()], error: /metadata\.json is not valid JSON/ },
    { title: 'a disk named by metadata but absent', entries: () => [{ name: 'metadata.json', data: JSON.stringify({ provider: 'libvirt', disks: [{ path: 'box_1.img' }, { path: 'box_2.img' }] }) }, { name: 'box_1.img', data: qcow }], error: /no disk image 'box_2\.img', which its metadata\.json names/ },
    { title: 'a v1 box without box.img', entries: () => [meta], error: /no disk image 'box\.img'/ },
    { title: 'a disk that is not qcow2', entries: () => [meta, { name: 'box.img', data: Buffer.alloc(4096, 7) }], error: /'box\.img' is not a qcow2 image/ },
    { title: 'a qcow2 cut short', entries: () => [meta, { name: 'box.img', data: qcow.subarray(0, 1024) }], error: /disk image 'box\.img' has .*(cluster|past the end)/ },
    { title: 'a duplicate entry', entries: () => [meta, disk(), disk()], error: /entry 'box\.img' appears twice/ },
    { title: 'a reserved-looking path with a backslash', entries: () => [meta, { name: 'a\\b', data: 'x' }, disk()], error: /entry 'a\\b' has an invalid name/ },
  ];
  for (const c of cases) {
    it(`${c.title} (plain and gzip)`, async () => {
      await expectRefused(await makeTar(c.entries()), c.error);
      await expectRefused(await makeTar(c.entries(), { gzip: true }), c.error);
    });
  }

  it('a truncated gzip', async () => {
    const whole = await makeTar([meta, disk()], { gzip: true });
    for (const cut of [20, Math.floor(whole.length / 2), whole.length - 5]) {
      await expectRefused(whole.subarray(0, cut), /truncated or corrupt/);
    }
  });

  it('a truncated tar', async () => {
    const whole = await makeTar([meta, disk()]);
    for (const cut of [600, 512 * 3 + 100, whole.length - 3000]) {
      await expectRefused(whole.subarray(0, cut), /truncated or corrupt/);
    }
  });

  it('a corrupt gzip', async () => {
    const whole = await makeTar([meta, disk()], { gzip: true });
    const bad = Buffer.from(whole);
    for (let i = 100; i < 400; i++) bad[i] = bad[i]! ^ 0x5a;
    await expectRefused(bad, /truncated or corrupt/);
  });

  it('a header declaring more bytes than the archive holds', async () => {
    const whole = await makeTar([meta, disk()]);
    const off = headerOffsets(whole).get('box.img')!;
    await expectRefused(patchTarSize(whole, off, qcow.length + 100_000), /truncated or corrupt/);
    const metaOff = headerOffsets(whole).get('metadata.json')!;
    await expectRefused(patchTarSize(whole, metaOff, whole.length * 2), /truncated or corrupt/);
  });

  it('a corrupt tar header', async () => {
    const whole = await makeTar([meta, disk()]);
    const bad = Buffer.from(whole);
    bad.write('garbage!', 148, 'ascii'); // the first header's checksum
    await expectRefused(bad, /truncated or corrupt/);
  });

  it('an empty file and a tiny one', async () => {
    await expectRefused(Buffer.alloc(0), /truncated or corrupt: it is empty/);
    await expectRefused(Buffer.from('hello'), /truncated or corrupt/);
  });

  it('other compressions, by name', async () => {
    await expectRefused(Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(600)]), /compressed with xz/);
    await expectRefused(Buffer.concat([Buffer.from('BZh9'), Buffer.alloc(600)]), /compressed with bzip2/);
    await expectRefused(Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(600)]), /compressed with zstd/);
  });

  it('an archive over the size limit, before writing the entry', async () => {
    const parent = fresh();
    const dest = join(parent, 'u');
    const archive = await makeTar([meta, disk()]);
    await expect(readBoxArchive(Readable.from([archive]), dest, { maxBytes: 50_000 })).rejects.toThrow(/larger than allowed: entry 'box\.img'/);
    expect(leftovers(parent)).toEqual([]);
  });

  it('a missing box file', async () => {
    await expect(readBoxArchive(join(tmp.path, 'nope.box'), fresh())).rejects.toThrow(/does not exist/);
  });

  it('is cancelled by its signal and leaves nothing', async () => {
    const parent = fresh();
    const dest = join(parent, 'u');
    const ac = new AbortController();
    const archive = await makeTar([meta, disk()]);
    const err = await readBoxArchive(Readable.from([archive.subarray(0, 2048), archive.subarray(2048)]), dest, {
      signal: ac.signal,
      onProgress: () => ac.abort(new Error('cancelled')),
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('cancelled');
    expect(leftovers(parent)).toEqual([]);
  });
});

describe('pieces', () => {
  it('detectCompression', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]), 'x')).toBe('gzip');
    expect(detectCompression(Buffer.alloc(512), 'x')).toBe('none');
  });

  it('qcow2 header sanity', () => {
    const h = parseQcow2Header(qcow)!;
    expect(h.version).toBe(3);
    expect(h.virtualSize).toBe(64 * 1024 * 1024);
    expect(qcow2Problem(h, qcow.length)).toBeUndefined();
    expect(qcow2Problem(h, 1000)).toMatch(/less than one cluster/);
    expect(qcow2Problem({ ...h, version: 9 }, qcow.length)).toMatch(/version 9/);
    expect(qcow2Problem({ ...h, backingFileOffset: 512 }, qcow.length)).toMatch(/backing file/);
    expect(parseQcow2Header(Buffer.alloc(100))).toBeUndefined();
  });

  it('normalizeBoxPath', () => {
    expect(normalizeBoxPath('./a//b')).toBe('a/b');
    expect(normalizeBoxPath('box.img')).toBe('box.img');
    for (const bad of ['', '/x', '../x', 'a/../b', 'a\\b', '.', './']) expect(normalizeBoxPath(bad)).toBeUndefined();
  });

  it('parseBoxMetadata names what is wrong', () => {
    expect(() => parseBoxMetadata('[]')).toThrow(/not a JSON object/);
    expect(() => parseBoxMetadata('{}')).toThrow(/no 'provider'/);
    expect(() => parseBoxMetadata('{"provider":"libvirt","disks":[]}')).toThrow(/'disks' is not a non-empty list/);
    expect(() => parseBoxMetadata('{"provider":"libvirt","disks":[{"path":"../x"}]}')).toThrow(/leaves the box/);
    expect(() => parseBoxMetadata('{"provider":"libvirt","format":"vmdk"}')).toThrow(/format 'vmdk'/);
    expect(() => parseBoxMetadata('{"provider":"libvirt","disks":[{"path":"a.img","format":"vmdk"}]}')).toThrow(/disks\[0\]\.format is 'vmdk'/);
    expect(() => parseBoxMetadata('{"provider":"libvirt","format":"vmdk","disks":[{"path":"a.img"}]}')).toThrow(/format 'vmdk'/);
    expect(() => parseBoxMetadata('{"provider":"libvirt","vmenv":{"nocloud":"yes"}}')).toThrow(/vmenv\.nocloud/);
    expect(parseBoxMetadata('{"provider":"libvirt","format":"qcow2","virtual_size":2,"other":1}')).toEqual({ provider: 'libvirt', format: 'qcow2', virtual_size: 2, other: 1 });
  });
});

