import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { writeBoxArchive } from '../../../src/box/format.js';
import { vmenvHome } from '../../../src/project/home.js';
import { acquireLock } from '../../../src/util/file-lock.js';
import { addBox, type AddEvent } from '../../../src/box/add-box.js';
import { describeStore } from '../../../src/box/describe-store.js';
import { removeBox, type BoxLibvirt } from '../../../src/box/remove-box.js';
import { boxDir, boxesDir, escapeBoxName, unescapeBoxName } from '../../../src/box/store-paths.js';
import { findBox, getBox, listBoxes } from '../../../src/box/stored-boxes.js';
import { forgetUpload, listUploads, recordUpload, toUploadBox } from '../../../src/box/upload-records.js';
import type { MachineIndexEntry } from '../../../src/project/machine-index.js';
import { DomainState, ErrorCode, LibvirtConnectError, LibvirtError } from '../../../src/libvirt/index.js';
import { ExitCode, TimeoutError, UserError } from '../../../src/errors.js';
import { leftovers, makeQcow2, makeTar, tempDir } from './helpers.js';
import { TestServer } from './http-server.js';

let tmp: ReturnType<typeof tempDir>;
let tinyBox: string; // vmenv/tiny 1.0.0, declares its name and version
let tinyBox2: string; // same name and version, other content
let anonBox: string; // declares nothing
let twoDiskBox: string;
let badBox: string; // has a symlink
let server: TestServer;
let home: string;
let n = 0;

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const md5 = (path: string): string => createHash('md5').update(readFileSync(path)).digest('hex');

beforeAll(async () => {
  tmp = tempDir('vmenv-store-');
  const a = makeQcow2(join(tmp.path, 'a.qcow2'), '64M');
  const b = makeQcow2(join(tmp.path, 'b.qcow2'), '128M');
  tinyBox = join(tmp.path, 'tiny.box');
  tinyBox2 = join(tmp.path, 'tiny2.box');
  anonBox = join(tmp.path, 'anon.box');
  twoDiskBox = join(tmp.path, 'two.box');
  badBox = join(tmp.path, 'bad.box');
  await writeBoxArchive(tinyBox, { metadata: { provider: 'libvirt', vmenv: { name: 'vmenv/tiny', version: '1.0.0', default_user: 'vagrant', nocloud: true } }, disks: [{ path: a }] });
  await writeBoxArchive(tinyBox2, { metadata: { provider: 'libvirt', vmenv: { name: 'vmenv/tiny', version: '1.0.0', recipe: 'other' } }, disks: [{ path: b }] });
  await writeBoxArchive(anonBox, { metadata: { provider: 'libvirt' }, disks: [{ path: a }] }, { gzip: false });
  await writeBoxArchive(twoDiskBox, { metadata: { provider: 'libvirt' }, disks: [{ path: a }, { path: b, name: 'data' }] });
  writeFileSync(badBox, await makeTar([{ name: 'metadata.json', data: '{"provider":"libvirt"}' }, { name: 'box.img', type: 'symlink', linkname: '/etc/shadow' }], { gzip: true }));
  server = await new TestServer().start();
  server.files.set('/boxes/tiny-1.0.0.box', { body: readFileSync(tinyBox) });
  server.files.set('/boxes/anon.box', { body: readFileSync(anonBox) });
});
afterAll(async () => {
  await server.stop();
  tmp.cleanup();
});
beforeEach(() => {
  home = join(tmp.path, `home-${++n}`);
  server.requests.length = 0;
});

/** The store's content, without locks (which stay as empty folders' siblings). */
function storeState(): string[] {
  return leftovers(join(home, 'boxes')).filter((p) => !p.startsWith('.locks'));
}

describe('places', () => {
  it('vmenvHome: VMENV_HOME, else XDG_DATA_HOME/vmenv, else ~/.local/share/vmenv', () => {
    expect(vmenvHome({ VMENV_HOME: '/v', XDG_DATA_HOME: '/x', HOME: '/h' })).toBe('/v');
    expect(vmenvHome({ XDG_DATA_HOME: '/x', HOME: '/h' })).toBe('/x/vmenv');
    expect(vmenvHome({ XDG_DATA_HOME: 'relative', HOME: '/h' })).toBe('/h/.local/share/vmenv');
    expect(vmenvHome({ HOME: '/h' })).toBe('/h/.local/share/vmenv');
  });

  it('escapes / as Vagrant does', () => {
    expect(escapeBoxName('vmenv/tiny')).toBe('vmenv-VAGRANTSLASH-tiny');
    expect(unescapeBoxName('vmenv-VAGRANTSLASH-tiny')).toBe('vmenv/tiny');
    expect(boxDir({ name: 'vmenv/tiny', version: '1.0' }, { home: '/v' })).toBe('/v/boxes/vmenv-VAGRANTSLASH-tiny/1.0/libvirt');
  });
});

describe('adding', () => {
  it('adds a box file under the name and version it declares', async () => {
    const events: AddEvent[] = [];
    const r = await addBox(tinyBox, { home, onEvent: (e) => events.push(e) });
    expect(r).toMatchObject({ replaced: false, alreadyPresent: false });
    expect(r.box).toMatchObject({ name: 'vmenv/tiny', version: '1.0.0', provider: 'libvirt', dir: join(home, 'boxes/vmenv-VAGRANTSLASH-tiny/1.0.0/libvirt') });
    expect(r.box.metadata.vmenv).toMatchObject({ default_user: 'vagrant', nocloud: true });
    expect(r.box.disks).toEqual([
      expect.objectContaining({ boxPath: 'box.img', format: 'qcow2', virtualSize: 64 * 1024 * 1024, path: join(r.box.dir, 'box.img') }),
    ]);
    expect(r.box.archiveSha256).toBe(sha256(tinyBox));
    expect(events.some((e) => e.type === 'unpack')).toBe(true);
    expect(storeState()).toEqual([
      '.tmp',
      'vmenv-VAGRANTSLASH-tiny',
      'vmenv-VAGRANTSLASH-tiny/1.0.0',
      'vmenv-VAGRANTSLASH-tiny/1.0.0/libvirt',
      'vmenv-VAGRANTSLASH-tiny/1.0.0/libvirt/box.img',
      'vmenv-VAGRANTSLASH-tiny/1.0.0/libvirt/metadata.json',
      'vmenv-VAGRANTSLASH-tiny/1.0.0/libvirt/vmenv.json',
    ]);
    const record = JSON.parse(readFileSync(join(r.box.dir, 'vmenv.json'), 'utf8'));
    expect(record).toMatchObject({ name: 'vmenv/tiny', version: '1.0.0', provider: 'libvirt', source: tinyBox, archive_sha256: sha256(tinyBox) });
    expect(toUploadBox(r.box)).toEqual({ name: 'vmenv/tiny', version: '1.0.0', disks: [{ path: join(r.box.dir, 'box.img'), virtualSize: 64n * 1024n * 1024n, format: 'qcow2' }] });
  });

  it('the same file again changes nothing; another file of the same name and version needs --force', async () => {
    await addBox(tinyBox, { home });
    expect((await addBox(tinyBox, { home })).alreadyPresent).toBe(true);
    const before = storeState();
    const err = await addBox(tinyBox2, { home }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(`Box 'vmenv/tiny' version 1.0.0 is already in the box store (added from ${tinyBox}).`);
    expect((err as UserError).hint).toMatch(/--force/);
    expect(storeState()).toEqual(before);
    expect((await getBox({ name: 'vmenv/tiny', version: '1.0.0' }, { home }))!.archiveSha256).toBe(sha256(tinyBox));

    // --force replaces it, and keeps the old box's uploads on record (their volumes go with `box remove`).
    await recordUpload({ name: 'vmenv/tiny', version: '1.0.0' }, { uri: 'qemu:///session', pool: 'default', volume: 'old.qcow2' }, { home });
    const r = await addBox(tinyBox2, { home, force: true });
    expect(r.replaced).toBe(true);
    expect(r.box.archiveSha256).toBe(sha256(tinyBox2));
    expect(r.box.disks[0]!.virtualSize).toBe(128 * 1024 * 1024);
    expect(await listUploads(r.box, { home })).toEqual([{ uri: 'qemu:///session', pool: 'default', volume: 'old.qcow2' }]);
    expect(leftovers(join(home, 'boxes', '.tmp'))).toEqual([]);
  });

  it('a box that does not declare its name needs --name; the version defaults to 0', async () => {
    const err = await addBox(anonBox, { home }).catch((e: unknown) => e);
    expect((err as UserError).message).toBe('This box does not say its name.');
    expect((err as UserError).exitCode).toBe(ExitCode.usage);
    expect(storeState()).toEqual(['.tmp']);
    const r = await addBox(anonBox, { home, name: 'anon' });
    expect(r.box).toMatchObject({ name: 'anon', version: '0' });
    const r2 = await addBox(twoDiskBox, { home, name: 'org/two', version: '2.1' });
    expect(r2.box.disks.map((d) => [d.boxPath, d.name])).toEqual([
      ['box_1.img', undefined],
      ['box_2.img', 'data'],
    ]);
  });

  it('rejects bad names and versions before doing anything', async () => {
    for (const name of ['../x', 'a/b/c', '.hidden', 'with space', '', 'x-VAGRANTSLASH-y']) {
      await expect(addBox(anonBox, { home, name })).rejects.toMatchObject({ exitCode: ExitCode.usage });
    }
    await expect(addBox(anonBox, { home, name: 'x', version: '>= 1' })).rejects.toThrow(/is a constraint/);
    await expect(addBox(anonBox, { home, name: 'x', version: '1 .2' })).rejects.toThrow(/not a valid box version/);
    expect(storeState()).toEqual([]);
  });

  it('verifies a given checksum: a mismatch adds nothing', async () => {
    const err = await addBox(tinyBox, { home, checksum: `sha256:${'1'.repeat(64)}` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/^Checksum mismatch for .*tiny\.box: expected sha256:1{64}, got sha256:[0-9a-f]{64}\.$/);
    expect(storeState()).toEqual(['.tmp']);
    const ok = await addBox(tinyBox, { home, checksum: `md5:${md5(tinyBox)}` });
    expect(ok.box.name).toBe('vmenv/tiny');
  });

  it('Ctrl-C while unpacking adds nothing', async () => {
    const ac = new AbortController();
    const err = await addBox(tinyBox, { home, signal: ac.signal, onEvent: (e) => e.type === 'unpack' && ac.abort(new Error('interrupted')) }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('interrupted');
    expect(storeState()).toEqual(['.tmp']);
  });

  it('Ctrl-C while downloading keeps only the part file, which the next add resumes', async () => {
    server.files.set('/slow/tiny.box', { body: readFileSync(tinyBox) });
    const ac = new AbortController();
    const err = await addBox(server.url('/slow/tiny.box'), {
      home,
      signal: ac.signal,
      onEvent: (e) => e.type === 'download' && e.received > 0 && ac.abort(new Error('interrupted')),
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('interrupted');
    expect(storeState().every((p) => p.startsWith('.downloads') || p === '.tmp')).toBe(true);
    expect(await listBoxes({ home })).toEqual([]);
    const r = await addBox(server.url('/slow/tiny.box'), { home, checksum: `sha256:${sha256(tinyBox)}` });
    expect(r.box.name).toBe('vmenv/tiny');
    expect(leftovers(join(home, 'boxes', '.downloads'))).toEqual([]);
  });

  it('a bad archive adds nothing', async () => {
    await expect(addBox(badBox, { home, name: 'bad' })).rejects.toThrow(/entry 'box\.img' is a symbolic link/);
    expect(storeState()).toEqual(['.tmp']);
  });

  it('an archive that brings vmenv.json or uploads.json is refused', async () => {
    const qcow = readFileSync(join(tmp.path, 'a.qcow2'));
    const sneaky = join(tmp.path, 'sneaky.box');
    writeFileSync(sneaky, await makeTar([{ name: 'metadata.json', data: '{"provider":"libvirt"}' }, { name: 'box.img', data: qcow }, { name: 'uploads.json', data: '[]' }]));
    await expect(addBox(sneaky, { home, name: 'sneaky' })).rejects.toThrow(/contains 'uploads\.json'/);
    expect(storeState()).toEqual(['.tmp']);
  });

  it('a bare name: already stored, or no catalog for it', async () => {
    await addBox(tinyBox, { home });
    await expect(addBox('vmenv/tiny', { home, cwd: tmp.path })).rejects.toThrow("Box 'vmenv/tiny' is already in the box store (version 1.0.0).");
    await expect(addBox('debian-12', { home, cwd: tmp.path })).rejects.toThrow("No catalog configured for 'debian-12', and no such file: give a file or URL.");
  });

  it('adds from a URL (download, then unpack)', async () => {
    const r = await addBox(server.url('/boxes/tiny-1.0.0.box'), { home, checksum: `sha256:${sha256(tinyBox)}` });
    expect(r.box).toMatchObject({ name: 'vmenv/tiny', version: '1.0.0', source: server.url('/boxes/tiny-1.0.0.box') });
    expect(leftovers(join(home, 'boxes', '.downloads'))).toEqual([]);
  });

  it('a URL with a checksum mismatch adds nothing and keeps no download', async () => {
    await expect(addBox(server.url('/boxes/anon.box'), { home, name: 'anon', checksum: `sha256:${sha256(tinyBox)}` })).rejects.toThrow(/Checksum mismatch/);
    expect(storeState().filter((p) => !p.startsWith('.downloads'))).toEqual([]);
    expect(leftovers(join(home, 'boxes', '.downloads'))).toEqual([]);
  });

  describe('catalogs', () => {
    function catalog(baseUrl: string, tinySum = sha256(tinyBox)): string {
      return JSON.stringify({
        name: 'vmenv/tiny',
        versions: [
          { version: '0.9', providers: [{ name: 'libvirt', url: `${baseUrl}anon.box`, checksum: sha256(anonBox), checksum_type: 'sha256' }] },
          { version: '1.0.0', providers: [{ name: 'libvirt', url: `${baseUrl}tiny-1.0.0.box`, checksum: tinySum, checksum_type: 'sha256' }] },
          { version: '2.0.0', providers: [{ name: 'virtualbox', url: 'nope.box' }] },
        ],
      });
    }

    it('served over HTTP: the newest matching libvirt version, checksum verified', async () => {
      server.files.set('/boxes/tiny.json', { body: Buffer.from(catalog('')), contentType: 'application/json' });
      const events: AddEvent[] = [];
      const r = await addBox(server.url('/boxes/tiny.json'), { home, onEvent: (e) => events.push(e) });
      expect(r.box).toMatchObject({ name: 'vmenv/tiny', version: '1.0.0' });
      expect(events[0]).toMatchObject({ type: 'source', kind: 'catalog', name: 'vmenv/tiny', version: '1.0.0' });
      expect(events.some((e) => e.type === 'download')).toBe(true);
      const old = await addBox(server.url('/boxes/tiny.json'), { home, version: '< 1' });
      expect(old.box).toMatchObject({ name: 'vmenv/tiny', version: '0.9' });
      expect((await listBoxes({ home })).map((b) => `${b.name}@${b.version}`)).toEqual(['vmenv/tiny@0.9', 'vmenv/tiny@1.0.0']);
      // Already stored with that sha256: nothing is downloaded again.
      server.requests.length = 0;
      expect((await addBox(server.url('/boxes/tiny.json'), { home })).alreadyPresent).toBe(true);
      expect(server.requests.map((q) => q.path)).toEqual(['/boxes/tiny.json']);
    });

    it('no matching version: a clear error listing the versions, nothing downloaded', async () => {
      server.files.set('/boxes/tiny.json', { body: Buffer.from(catalog('')), contentType: 'application/json' });
      const err = await addBox(server.url('/boxes/tiny.json'), { home, version: '>= 3' }).catch((e: unknown) => e);
      expect((err as UserError).message).toBe("No version of 'vmenv/tiny' matches '>= 3'.");
      expect((err as UserError).hint).toBe('Versions with a libvirt box: 1.0.0, 0.9.');
      expect(server.requests.map((q) => q.path)).toEqual(['/boxes/tiny.json']);
      expect(storeState()).toEqual([]);
    });

    it('a checksum in the catalog that does not match: nothing added', async () => {
      server.files.set('/boxes/bad.json', { body: Buffer.from(catalog('', 'f'.repeat(64))), contentType: 'application/json' });
      await expect(addBox(server.url('/boxes/bad.json'), { home })).rejects.toThrow(/Checksum mismatch/);
      expect(storeState().filter((p) => !p.startsWith('.downloads'))).toEqual([]);
    });

    it('a local catalog file with relative URLs', async () => {
      const dir = join(tmp.path, `cat-${n}`);
      mkdirSync(join(dir, 'catalogs'), { recursive: true });
      copyFileSync(tinyBox, join(dir, 'tiny-1.0.0.box'));
      writeFileSync(join(dir, 'catalogs', 'tiny.json'), catalog('../'));
      const r = await addBox('tiny.json', { home, version: '~> 1.0', cwd: join(dir, 'catalogs') });
      expect(r.box).toMatchObject({ name: 'vmenv/tiny', version: '1.0.0', source: join(dir, 'tiny-1.0.0.box') });
    });
  });
});

describe('concurrent adds and locks', () => {
  it('two adds of the same box: one waits for the other, both end with one intact box', async () => {
    // Hold the box's lock so that both adds have to wait for it.
    const lock = await acquireLock(join(boxesDir({ home }), '.locks', 'vmenv-VAGRANTSLASH-tiny@1.0.0.lock'));
    const waits: string[] = [];
    const first = addBox(tinyBox, { home, onEvent: (e) => e.type === 'wait' && waits.push('first') });
    const second = addBox(tinyBox, { home, onEvent: (e) => e.type === 'wait' && waits.push('second') });
    // Both unpack, then queue up behind the lock.
    for (let i = 0; i < 200 && waits.length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    expect(waits.sort()).toEqual(['first', 'second']);
    expect(await listBoxes({ home })).toEqual([]);
    await lock.release();
    const results = await Promise.all([first, second]);
    expect(results.map((r) => r.alreadyPresent).sort()).toEqual([false, true]);
    const boxes = await listBoxes({ home });
    expect(boxes).toHaveLength(1);
    expect(readFileSync(boxes[0]!.disks[0]!.path).equals(readFileSync(join(tmp.path, 'a.qcow2')))).toBe(true);
    expect(leftovers(join(home, 'boxes', '.tmp'))).toEqual([]);
    expect(leftovers(join(home, 'boxes', '.locks'))).toEqual([]);
  });

  it('two different boxes of the same name and version at once: one wins, the other is refused, no mix', async () => {
    const results = await Promise.allSettled([addBox(tinyBox, { home }), addBox(tinyBox2, { home })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason.message).toMatch(/already in the box store/);
    const [box] = await listBoxes({ home });
    expect([sha256(tinyBox), sha256(tinyBox2)]).toContain(box!.archiveSha256);
    const expectedDisk = box!.archiveSha256 === sha256(tinyBox) ? 'a.qcow2' : 'b.qcow2';
    expect(readFileSync(box!.disks[0]!.path).equals(readFileSync(join(tmp.path, expectedDisk)))).toBe(true);
  });

  it('a lock whose holder died is taken over', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const pid = Number(dead.stdout.trim());
    const lockFile = join(boxesDir({ home }), '.locks', 'vmenv-VAGRANTSLASH-tiny@1.0.0.lock');
    mkdirSync(join(lockFile, '..'), { recursive: true });
    writeFileSync(lockFile, JSON.stringify({ pid, host: hostname(), token: 'x', since: new Date().toISOString() }));
    const r = await addBox(tinyBox, { home });
    expect(r.box.name).toBe('vmenv/tiny');
    expect(existsSync(lockFile)).toBe(false);
  });

  it('a live holder past the wait limit: a timeout saying who holds it', async () => {
    const lock = await acquireLock(join(boxesDir({ home }), '.locks', 'vmenv-VAGRANTSLASH-tiny@1.0.0.lock'), { purpose: 'testing' });
    const err = await addBox(tinyBox, { home, lockTimeoutMs: 200 }).catch((e: unknown) => e);
    await lock.release();
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as UserError).message).toMatch(new RegExp(`vmenv process ${process.pid} \\(testing\\)`));
    expect((err as UserError).hint).toMatch(/delete .*\.lock/);
    expect(storeState()).toEqual(['.tmp']);
  });

  it('leftovers of a dead process in .tmp are swept', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const tag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    const stale = join(boxesDir({ home }), '.tmp', `add-${tag}-${dead.stdout.trim()}-abcdef`);
    const otherHost = join(boxesDir({ home }), '.tmp', `add-0badc0de-${dead.stdout.trim()}-abcdef`);
    const alive = join(boxesDir({ home }), '.tmp', `add-${tag}-${process.pid}-abcdef`);
    for (const dir of [stale, otherHost, alive]) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'box.img'), 'half');
    }
    await addBox(tinyBox, { home });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(otherHost)).toBe(true);
    expect(existsSync(alive)).toBe(true);
  });
});

describe('uploads bookkeeping', () => {
  it('record (idempotent), list, forget', async () => {
    const { box } = await addBox(tinyBox, { home });
    const a = { uri: 'qemu:///session', pool: 'default', volume: 'v1.qcow2' };
    const b = { uri: 'qemu+ssh://h/system', pool: 'images', volume: 'v1.qcow2' };
    await recordUpload(box, a, { home });
    await recordUpload(box, a, { home });
    await recordUpload(box, b, { home });
    expect(await listUploads(box, { home })).toEqual([a, b]);
    await forgetUpload(box, a, { home });
    expect(await listUploads(box, { home })).toEqual([b]);
    await expect(recordUpload({ name: 'nope', version: '1' }, a, { home })).rejects.toThrow(/no box 'nope' version 1/);
  });
});

// A libvirt stand-in with pools, volumes and domains.
class FakeLibvirt implements BoxLibvirt {
  pools = new Map<string, Set<string>>();
  domains = new Map<string, number>();
  deleted: string[] = [];
  closed = 0;
  private notFound(code: number, what: string): LibvirtError {
    return new LibvirtError({ code, domain: 18, level: 2, message: `${what} not found` });
  }
  async storagePoolLookupByName(name: string) {
    if (!this.pools.has(name)) throw this.notFound(ErrorCode.noStoragePool, `pool ${name}`);
    return { name, uuid: Buffer.alloc(16) };
  }
  async storageVolLookupByName(pool: { name: string }, name: string) {
    if (!this.pools.get(pool.name)!.has(name)) throw this.notFound(ErrorCode.noStorageVol, `volume ${name}`);
    return { pool: pool.name, name, key: `/p/${name}` };
  }
  async storageVolDelete(vol: { pool: string; name: string }) {
    this.pools.get(vol.pool)!.delete(vol.name);
    this.deleted.push(`${vol.pool}/${vol.name}`);
  }
  async domainLookupByName(name: string) {
    if (!this.domains.has(name)) throw this.notFound(ErrorCode.noDomain, `domain ${name}`);
    return { name, uuid: Buffer.alloc(16), id: 1 };
  }
  async domainGetState(d: { name: string }) {
    return { state: this.domains.get(d.name)!, reason: 0 };
  }
  async close() {
    this.closed += 1;
  }
}

describe('removing', () => {
  const session = 'qemu:///session';
  const remote = 'qemu+ssh://far/system';
  let fake: FakeLibvirt;
  let opened: string[];
  const opener = async (uri: string): Promise<BoxLibvirt> => {
    opened.push(uri);
    if (uri === remote) throw new LibvirtConnectError('cannot reach far', uri);
    return fake;
  };
  function writeIndex(machines: Partial<MachineIndexEntry>[]): void {
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'machines.json'), JSON.stringify({ machines }));
  }
  const machine = (id: string, version: string, domain: string): Partial<MachineIndexEntry> => ({
    id,
    project: `/src/${id}`,
    machine: 'default',
    box: { name: 'vmenv/tiny', version },
    uri: session,
    domain,
  });

  beforeEach(() => {
    fake = new FakeLibvirt();
    opened = [];
  });

  it('removes the box and deletes its volumes from every pool (gone ones are fine)', async () => {
    const { box } = await addBox(tinyBox, { home });
    fake.pools.set('default', new Set(['v1.qcow2', 'other.qcow2']));
    await recordUpload(box, { uri: session, pool: 'default', volume: 'v1.qcow2' }, { home });
    await recordUpload(box, { uri: session, pool: 'default', volume: 'already-gone.qcow2' }, { home });
    await recordUpload(box, { uri: session, pool: 'vanished-pool', volume: 'v1.qcow2' }, { home });
    const r = await removeBox('vmenv/tiny', { home, openLibvirt: opener });
    expect(r.removed).toEqual([{ name: 'vmenv/tiny', version: '1.0.0' }]);
    expect(r.volumesDeleted).toEqual([{ uri: session, pool: 'default', volume: 'v1.qcow2' }]);
    expect(r.volumesMissing).toHaveLength(2);
    expect(fake.deleted).toEqual(['default/v1.qcow2']);
    expect(fake.pools.get('default')).toEqual(new Set(['other.qcow2']));
    expect(opened).toEqual([session]);
    expect(fake.closed).toBe(1);
    expect(storeState()).toEqual(['.tmp']);
  });

  it('several versions: needs --box-version or --all', async () => {
    await addBox(tinyBox, { home });
    await addBox(tinyBox, { home, version: '2.0' });
    await addBox(anonBox, { home, name: 'anon' });
    await expect(removeBox('vmenv/tiny', { home, openLibvirt: opener })).rejects.toThrow("Box 'vmenv/tiny' has several versions: 2.0, 1.0.0.");
    await expect(removeBox('vmenv/tiny', { home, version: '3', openLibvirt: opener })).rejects.toThrow(/has no version 3/);
    await expect(removeBox('nope', { home, openLibvirt: opener })).rejects.toThrow("There is no box 'nope' in the box store.");
    expect((await removeBox('vmenv/tiny', { home, version: '2.0', openLibvirt: opener })).removed).toEqual([{ name: 'vmenv/tiny', version: '2.0' }]);
    await addBox(tinyBox, { home, version: '2.0' });
    expect((await removeBox('vmenv/tiny', { home, all: true, openLibvirt: opener })).removed).toHaveLength(2);
    expect((await listBoxes({ home })).map((b) => b.name)).toEqual(['anon']);
    expect(leftovers(join(home, 'boxes')).filter((p) => !p.startsWith('.'))).toEqual(['anon', 'anon/0', 'anon/0/libvirt', 'anon/0/libvirt/box.img', 'anon/0/libvirt/metadata.json', 'anon/0/libvirt/vmenv.json']);
  });

  it('refuses while machines use it, naming them; other versions are not affected', async () => {
    await addBox(tinyBox, { home });
    await addBox(tinyBox, { home, version: '2.0' });
    writeIndex([machine('m1', '1.0.0', 'dom1'), machine('m2', '1.0.0', 'dom2'), machine('m3', '2.0', 'dom3')]);
    const err = await removeBox('vmenv/tiny', { home, version: '1.0.0', openLibvirt: opener }).catch((e: unknown) => e);
    expect((err as UserError).message).toBe("Box 'vmenv/tiny' is still used by 2 machines: default (/src/m1) uses vmenv/tiny 1.0.0; default (/src/m2) uses vmenv/tiny 1.0.0.");
    expect((err as UserError).hint).toMatch(/--force/);
    expect(opened).toEqual([]);
    expect(await listBoxes({ home })).toHaveLength(2);
    const listing = await describeStore({ home });
    expect(listing.boxes.map((b) => [b.version, b.machines!.map((m) => m.id)])).toEqual([
      ['1.0.0', ['m1', 'm2']],
      ['2.0', ['m3']],
    ]);
  });

  it('--force: only when none of those machines runs', async () => {
    await addBox(tinyBox, { home });
    writeIndex([machine('m1', '1.0.0', 'dom1'), machine('m2', '1.0.0', 'dom-gone')]);
    fake.domains.set('dom1', DomainState.running);
    await expect(removeBox('vmenv/tiny', { home, force: true, openLibvirt: opener })).rejects.toThrow(
      "Box 'vmenv/tiny' is used by running machines: default (/src/m1): running.",
    );
    fake.domains.set('dom1', DomainState.paused);
    await expect(removeBox('vmenv/tiny', { home, force: true, openLibvirt: opener })).rejects.toThrow(/paused/);
    expect(await listBoxes({ home })).toHaveLength(1);
    fake.domains.set('dom1', DomainState.shutoff);
    const r = await removeBox('vmenv/tiny', { home, force: true, openLibvirt: opener });
    expect(r.removed).toHaveLength(1);
    expect(r.orphanedMachines.map((m) => m.id)).toEqual(['m1', 'm2']);
  });

  it('--force with a libvirt that cannot be reached: cannot prove the machine stopped, refuses', async () => {
    await addBox(tinyBox, { home });
    writeIndex([{ ...machine('m1', '1.0.0', 'dom1'), uri: remote }]);
    const err = await removeBox('vmenv/tiny', { home, force: true, openLibvirt: opener }).catch((e: unknown) => e);
    expect((err as UserError).message).toMatch(/^Cannot make sure that no machine using box 'vmenv\/tiny' is running: default \(\/src\/m1\): libvirt at qemu\+ssh:\/\/far\/system cannot be asked \(cannot reach far\)\.$/);
    expect((err as UserError).exitCode).toBe(ExitCode.unavailable);
    expect(await listBoxes({ home })).toHaveLength(1);
  });

  it('keeps the box (and the record of what is left) when a volume cannot be deleted', async () => {
    const { box } = await addBox(tinyBox, { home });
    fake.pools.set('default', new Set(['v1.qcow2']));
    await recordUpload(box, { uri: session, pool: 'default', volume: 'v1.qcow2' }, { home });
    await recordUpload(box, { uri: remote, pool: 'default', volume: 'v1.qcow2' }, { home });
    const err = await removeBox('vmenv/tiny', { home, openLibvirt: opener }).catch((e: unknown) => e);
    expect((err as UserError).message).toMatch(/was kept: a volume it uploaded could not be deleted: default\/v1\.qcow2 at qemu\+ssh:\/\/far\/system: cannot reach far/);
    expect(await listUploads(box, { home })).toEqual([{ uri: remote, pool: 'default', volume: 'v1.qcow2' }]);
    expect(fake.deleted).toEqual(['default/v1.qcow2']);
    expect(await listBoxes({ home })).toHaveLength(1);
  });

  it('an unreadable machine index blocks removal but not listing', async () => {
    await addBox(tinyBox, { home });
    writeFileSync(join(home, 'machines.json'), '{broken');
    await expect(removeBox('vmenv/tiny', { home, openLibvirt: opener })).rejects.toThrow(/machine index .* cannot be read/);
    const listing = await describeStore({ home });
    expect(listing.boxes[0]!.machines).toBeNull();
    expect(listing.warning).toMatch(/cannot be read/);
  });
});

describe('finding and listing', () => {
  it('findBox: newest, exact, constraint, or a clear error', async () => {
    await addBox(tinyBox, { home });
    await addBox(tinyBox, { home, version: '1.10' });
    await addBox(tinyBox, { home, version: '1.9' });
    expect((await findBox('vmenv/tiny', undefined, { home })).version).toBe('1.10');
    expect((await findBox('vmenv/tiny', '1.9', { home })).version).toBe('1.9');
    expect((await findBox('vmenv/tiny', '< 1.5', { home })).version).toBe('1.0.0');
    await expect(findBox('vmenv/tiny', '> 2', { home })).rejects.toThrow(/no version matching '> 2'/);
    await expect(findBox('other', undefined, { home })).rejects.toThrow(/no box 'other'/);
    const listing = await describeStore({ home });
    expect(listing.boxes.map((b) => b.version)).toEqual(['1.0.0', '1.9', '1.10']);
    expect(listing.boxes[0]!.size).toBeGreaterThan(0);
    expect(listing.boxes[0]!.machines).toEqual([]);
  });
});
