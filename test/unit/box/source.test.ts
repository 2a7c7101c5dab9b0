import { readFileSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBoxArchive } from '../../../src/box/format.js';
import { boxLocation, boxNameFromLocation, machineBox } from '../../../src/box/source.js';
import { boxesDir } from '../../../src/box/store-paths.js';
import { listBoxes } from '../../../src/box/stored-boxes.js';
import { ExitCode, UserError } from '../../../src/errors.js';
import { makeQcow2, tempDir } from './helpers.js';
import { TestServer } from './http-server.js';

let tmp: ReturnType<typeof tempDir>;
let project: string;
let named: string; // says vmenv/web 2.0.0
let namedOther: string; // says vmenv/web 2.0.0 too, other content
let anon: string; // says nothing
let server: TestServer;
let n = 0;
const freshHome = (): string => join(tmp.path, `home-${++n}`);

/** What the store holds beside its infrastructure folders (.locks, .tmp, .downloads). */
async function storeEntries(home: string): Promise<string[]> {
  return (await readdir(boxesDir({ home })).catch(() => [] as string[])).filter((e) => !e.startsWith('.'));
}

beforeAll(async () => {
  tmp = tempDir('vmenv-source-');
  server = await new TestServer().start();
  project = join(tmp.path, 'project');
  await mkdir(join(project, 'boxes'), { recursive: true });
  const disk = makeQcow2(join(tmp.path, 'a.qcow2'), '64M');
  named = join(project, 'boxes', 'named.box');
  anon = join(project, 'boxes', 'My Box_1.box');
  await writeBoxArchive(named, { metadata: { provider: 'libvirt', vmenv: { name: 'vmenv/web', version: '2.0.0' } }, disks: [{ path: disk }] });
  await writeBoxArchive(anon, { metadata: { provider: 'libvirt' }, disks: [{ path: disk }] });
  namedOther = join(project, 'boxes', 'other.box');
  await writeBoxArchive(namedOther, { metadata: { provider: 'libvirt', vmenv: { name: 'vmenv/web', version: '2.0.0', recipe: 'other' } }, disks: [{ path: disk }] });
  server.files.set('/cat/web.json', {
    contentType: 'application/json',
    body: Buffer.from(JSON.stringify({ name: 'acme/web', versions: [{ version: '3.1.0', providers: [{ name: 'libvirt', url: 'web-3.1.0.box' }] }] })),
  });
  server.files.set('/cat/web-3.1.0.box', { body: readFileSync(anon) });
  server.files.set('/dl/anon-9.box', { body: readFileSync(anon) });
});
afterAll(async () => {
  await server.stop();
  tmp.cleanup();
});

describe('boxLocation', () => {
  it('tells names, files (relative to the project) and URLs apart', () => {
    expect(boxLocation('tiny', '/p')).toEqual({ kind: 'name', name: 'tiny' });
    expect(boxLocation('vmenv/tiny', '/p')).toEqual({ kind: 'name', name: 'vmenv/tiny' });
    expect(boxLocation('./b/x.box', '/p')).toEqual({ kind: 'file', path: '/p/b/x.box' });
    expect(boxLocation('x.box', '/p')).toEqual({ kind: 'file', path: '/p/x.box' });
    expect(boxLocation('../x', '/p/q')).toEqual({ kind: 'file', path: '/p/x' });
    expect(boxLocation('/srv/x.box', '/p')).toEqual({ kind: 'file', path: '/srv/x.box' });
    expect(boxLocation('file:///srv/x.box', '/p')).toEqual({ kind: 'file', path: '/srv/x.box' });
    expect(boxLocation('https://u:pw@example.org/x.box?sig=1', '/p')).toEqual({ kind: 'url', url: 'https://u:pw@example.org/x.box?sig=1', key: 'https://example.org/x.box' });
    expect(() => boxLocation('ftp://example.org/x.box', '/p')).toThrow(/URL scheme/);
  });

  it('derives a box name from a file name or URL', () => {
    expect(boxNameFromLocation('/a/b/debian-12.box')).toBe('debian-12');
    expect(boxNameFromLocation('https://example.org/boxes/web%201.box')).toBe('web-1');
    expect(boxNameFromLocation('/a/My Box_1.box')).toBe('My-Box_1');
    expect(boxNameFromLocation('/a/.hidden.tar.gz')).toBe('hidden');
    expect(boxNameFromLocation('/a/---.box')).toBe('box');
  });
});

describe('machineBox', () => {
  it("adds a file on first use under the box's own name, then finds it by its path", async () => {
    const home = freshHome();
    const first = await machineBox({ name: './boxes/named.box', version: undefined }, { projectDir: project, home });
    expect(first).toMatchObject({ added: true, from: named, box: { name: 'vmenv/web', version: '2.0.0', source: named } });
    const again = await machineBox({ name: 'boxes/named.box', version: undefined }, { projectDir: project, home });
    expect(again).toMatchObject({ added: false, box: { name: 'vmenv/web', version: '2.0.0' } });
    // The stored box by its name, as any other.
    expect((await machineBox({ name: 'vmenv/web', version: '~> 2.0' }, { projectDir: project, home })).box.dir).toBe(first.box.dir);
  });

  it('names a box that says nothing after its file, at version 0 or the exact version given', async () => {
    const home = freshHome();
    expect((await machineBox({ name: anon, version: undefined }, { projectDir: project, home })).box).toMatchObject({ name: 'My-Box_1', version: '0' });
    const v = await machineBox({ name: anon, version: '1.2.0' }, { projectDir: project, home });
    expect(v).toMatchObject({ added: true, box: { name: 'My-Box_1', version: '1.2.0' } });
    expect((await listBoxes({ home })).map((b) => `${b.name} ${b.version}`)).toEqual(['My-Box_1 0', 'My-Box_1 1.2.0']);
    await expect(machineBox({ name: anon, version: '>= 1' }, { projectDir: project, home })).rejects.toMatchObject({ exitCode: ExitCode.usage, message: /must be an exact version/ });
  });

  it('downloads a URL once: a later call finds it in the store without a request', async () => {
    const home = freshHome();
    const url = server.url('/dl/anon-9.box');
    const before = server.requests.length;
    const first = await machineBox({ name: url, version: undefined }, { projectDir: project, home });
    expect(first).toMatchObject({ added: true, box: { name: 'anon-9', version: '0', source: url } });
    const made = server.requests.length - before;
    expect(made).toBeGreaterThan(0);
    const again = await machineBox({ name: url, version: undefined }, { projectDir: project, home });
    expect(again).toMatchObject({ added: false, box: { name: 'anon-9', version: '0' } });
    expect(server.requests.length - before).toBe(made);
  });

  it('a catalog URL: read each time, its box downloaded once and reused after', async () => {
    const home = freshHome();
    const url = server.url('/cat/web.json');
    const boxGets = (): number => server.requests.filter((r) => r.path === '/cat/web-3.1.0.box' && r.method === 'GET').length;
    const first = await machineBox({ name: url, version: '~> 3.0' }, { projectDir: project, home });
    expect(first).toMatchObject({ added: true, box: { name: 'acme/web', version: '3.1.0' } });
    expect(boxGets()).toBe(1);
    const again = await machineBox({ name: url, version: '~> 3.0' }, { projectDir: project, home });
    expect(again).toMatchObject({ added: false, box: { name: 'acme/web', version: '3.1.0' } });
    expect(boxGets()).toBe(1);
  });

  it('another file saying the same name and version: refused, naming both and what to do', async () => {
    const home = freshHome();
    await machineBox({ name: named, version: undefined }, { projectDir: project, home });
    const err = (await machineBox({ name: './boxes/other.box', version: undefined }, { projectDir: project, home }).catch((e: unknown) => e)) as UserError;
    expect(err.message).toBe(
      `box: ${namedOther} could not be added to the box store: it says it is box 'vmenv/web' version 2.0.0, and another box of that name and version is stored (from ${named}).`,
    );
    expect(err.hint).toBe("Give this one another version in vmenv.yaml (box: { name: ./boxes/other.box, version: <version> }), or remove the stored one (vmenv box remove vmenv/web --box-version 2.0.0).");
    expect((await machineBox({ name: './boxes/other.box', version: '2.0.1' }, { projectDir: project, home })).box).toMatchObject({ name: 'vmenv/web', version: '2.0.1' });
  });

  it('a URL that answers 404: a clear error, and nothing in the store', async () => {
    const home = freshHome();
    const url = server.url('/dl/missing.box');
    const err = await machineBox({ name: url, version: undefined }, { projectDir: project, home }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/box: http:\/\/127\.0\.0\.1:\d+\/dl\/missing\.box could not be added to the box store: .*HTTP 404/);
    expect((err as UserError).hint).toMatch(/Check the URL.*Nothing was added/);
    expect((err as UserError).exitCode).not.toBe(ExitCode.ok);
    expect(await storeEntries(home)).toEqual([]);
    expect(await readdir(join(boxesDir({ home }), '.downloads')).catch(() => [])).toEqual([]);
  });

  it('a path that does not exist: a usage error naming the path, and nothing in the store', async () => {
    const home = freshHome();
    const err = await machineBox({ name: './boxes/nope.box', version: undefined }, { projectDir: project, home }).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: ExitCode.usage, message: `box: ${join(project, 'boxes', 'nope.box')} does not exist (box: './boxes/nope.box' in vmenv.yaml).` });
    expect((err as UserError).hint).toContain(`relative to the project folder (${project})`);
    expect(await storeEntries(home)).toEqual([]);
  });

  it('a stored name that is not there is the store\'s own error', async () => {
    await expect(machineBox({ name: 'nope', version: undefined }, { projectDir: project, home: freshHome() })).rejects.toThrow(/There is no box 'nope' in the box store/);
  });
});
