/**
 * The box store through the built CLI (`node bin/run.js`), with VMENV_HOME in a temp
 * folder: add a real (tiny) box file, list, remove; add from a catalog served on
 * 127.0.0.1; bad inputs fail with a non-zero exit code and leave the store as it was.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { writeBoxArchive } from '../../src/box/format.js';
import { runVmenv, type Run } from '../support/cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');


let tmp: string;
let home: string;
let n = 0;

function vmenv(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return runVmenv(args, { cwd: tmp, env: { VMENV_HOME: home, ...env }, timeoutMs: 120_000 });
}

/** Every path in the store with its size, locks aside: what "unchanged" means. */
function snapshot(): string[] {
  const dir = join(home, 'boxes');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((p) => !p.startsWith('.locks'))
    .map((p) => {
      const st = statSync(join(dir, p));
      return st.isDirectory() ? `${p}/` : `${p} ${st.size}`;
    })
    .sort();
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

let tinyBox: string;
let tinyBox2: string;
let evilBox: string;
let server: Server;
let base: string;
const served = new Map<string, { body: Buffer; type: string }>();

beforeAll(async () => {
  if (!existsSync(join(root, 'dist', 'cli', 'commands', 'box', 'add.js')) || !existsSync(join(root, 'oclif.manifest.json'))) {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  }
  tmp = mkdtempSync(join(tmpdir(), 'vmenv-e2e-box-'));
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(tmp, 'x.qcow2'), '64M']);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(tmp, 'y.qcow2'), '96M']);
  tinyBox = join(tmp, 'tiny.box');
  tinyBox2 = join(tmp, 'tiny-other.box');
  await writeBoxArchive(tinyBox, {
    metadata: { provider: 'libvirt', vmenv: { name: 'vmenv/tiny', version: '1.0.0', default_user: 'vagrant', nocloud: true } },
    disks: [{ path: join(tmp, 'x.qcow2') }],
  });
  await writeBoxArchive(tinyBox2, { metadata: { provider: 'libvirt', vmenv: { name: 'vmenv/tiny', version: '1.0.0' } }, disks: [{ path: join(tmp, 'y.qcow2') }] });
  // A box whose disk is a symlink to a host file.
  const { makeTar } = await import('../unit/box/helpers.js');
  evilBox = join(tmp, 'evil.box');
  writeFileSync(evilBox, await makeTar([{ name: 'metadata.json', data: '{"provider":"libvirt"}' }, { name: 'box.img', type: 'symlink', linkname: '/etc/passwd' }], { gzip: true }));

  server = createServer((req, res) => {
    const file = served.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  served.set('/tiny-1.0.0.box', { body: readFileSync(tinyBox), type: 'application/octet-stream' });
  served.set('/tiny-0.9.box', { body: readFileSync(tinyBox2), type: 'application/octet-stream' });
  served.set('/tiny.json', {
    type: 'application/json',
    body: Buffer.from(
      JSON.stringify({
        name: 'vmenv/tiny',
        versions: [
          { version: '0.9', providers: [{ name: 'libvirt', url: 'tiny-0.9.box', checksum: sha256(tinyBox2), checksum_type: 'sha256' }] },
          { version: '1.0.0', providers: [{ name: 'libvirt', url: `${base}/tiny-1.0.0.box`, checksum: sha256(tinyBox), checksum_type: 'sha256' }] },
          { version: '1.1.0', providers: [{ name: 'virtualbox', url: 'vb.box' }] },
        ],
      }),
    ),
  });
  served.set('/bad-sum.json', {
    type: 'application/json',
    body: Buffer.from(JSON.stringify({ name: 'bad', versions: [{ version: '1', providers: [{ name: 'libvirt', url: 'tiny-1.0.0.box', checksum: 'e'.repeat(64), checksum_type: 'sha256' }] }] })),
  });
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  home = join(tmp, `home-${++n}`);
});

describe('vmenv box add | list | remove', () => {
  it('adds a box file, lists it (text and JSON), removes it', async () => {
    const add = await vmenv(['box', 'add', tinyBox]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/^Added box 'vmenv\/tiny' version 1\.0\.0 \(libvirt, 1 disk, [\d.]+ KiB\)\.\n$/);
    const dir = join(home, 'boxes', 'vmenv-VAGRANTSLASH-tiny', '1.0.0', 'libvirt');
    expect(readdirSync(dir).sort()).toEqual(['box.img', 'metadata.json', 'vmenv.json']);
    expect(readFileSync(join(dir, 'box.img')).equals(readFileSync(join(tmp, 'x.qcow2')))).toBe(true);

    const text = await vmenv(['box', 'list']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^NAME\s+VERSION\s+PROVIDER\s+SIZE\s+USED BY\nvmenv\/tiny\s+1\.0\.0\s+libvirt\s+[\d.]+ KiB\s+-\n$/);

    const json = await vmenv(['box', 'list', '--json']);
    expect(json.code).toBe(0);
    const listing = JSON.parse(json.stdout) as { boxes: { name: string; version: string; provider: string; size: number; machines: unknown[]; disks: { virtual_size: number }[] }[] };
    expect(listing.boxes).toHaveLength(1);
    expect(listing.boxes[0]).toMatchObject({ name: 'vmenv/tiny', version: '1.0.0', provider: 'libvirt', machines: [] });
    expect(listing.boxes[0]!.size).toBeGreaterThan(100_000);
    expect(listing.boxes[0]!.disks[0]!.virtual_size).toBe(64 * 1024 * 1024);

    // Adding the very same file again changes nothing; a different one needs --force.
    expect((await vmenv(['box', 'add', tinyBox])).stdout).toMatch(/already in the box store \(the same file\); nothing changed/);
    const before = snapshot();
    const clash = await vmenv(['box', 'add', tinyBox2]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/already in the box store/);
    expect(clash.stderr).toMatch(/--force/);
    expect(snapshot()).toEqual(before);
    const forced = await vmenv(['box', 'add', tinyBox2, '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/^Replaced box 'vmenv\/tiny' version 1\.0\.0/);

    // A machine in the index uses it: remove refuses and names it.
    writeFileSync(join(home, 'machines.json'), JSON.stringify({ machines: [{ id: 'abc', project: '/src/app', machine: 'web', box: { name: 'vmenv/tiny', version: '1.0.0' }, uri: 'qemu:///session', domain: 'app_web_abc' }] }));
    const used = await vmenv(['box', 'remove', 'vmenv/tiny']);
    expect(used.code).toBe(1);
    expect(used.stderr).toContain('web (/src/app) uses vmenv/tiny 1.0.0');
    expect((await vmenv(['box', 'list'])).stdout).toMatch(/web \(\/src\/app\)/);
    rmSync(join(home, 'machines.json'));

    const rm = await vmenv(['box', 'remove', 'vmenv/tiny']);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toBe("Removed box 'vmenv/tiny' version 1.0.0.\n");
    expect(JSON.parse((await vmenv(['box', 'list', '--json'])).stdout)).toEqual({ boxes: [] });
    expect((await vmenv(['box', 'list'])).stdout).toMatch(/There are no boxes yet/);
    expect(snapshot()).toEqual(['.tmp/']);
  });

  it('adds from a catalog served on 127.0.0.1, choosing by constraint and verifying the checksum', async () => {
    const newest = await vmenv(['box', 'add', `${base}/tiny.json`]);
    expect(newest.stderr).toBe('');
    expect(newest.code).toBe(0);
    expect(newest.stdout).toMatch(/^Added box 'vmenv\/tiny' version 1\.0\.0/);
    const old = await vmenv(['box', 'add', `${base}/tiny.json`, '--box-version', '< 1']);
    expect(old.code).toBe(0);
    expect(old.stdout).toMatch(/^Added box 'vmenv\/tiny' version 0\.9/);
    const listing = JSON.parse((await vmenv(['box', 'list', '--json'])).stdout) as { boxes: { version: string; source: string }[] };
    expect(listing.boxes.map((b) => [b.version, b.source])).toEqual([
      ['0.9', `${base}/tiny-0.9.box`],
      ['1.0.0', `${base}/tiny-1.0.0.box`],
    ]);
    // Two versions: remove needs to be told which.
    const which = await vmenv(['box', 'remove', 'vmenv/tiny']);
    expect(which.code).toBe(2);
    expect(which.stderr).toMatch(/several versions: 1\.0\.0, 0\.9/);
    expect((await vmenv(['box', 'remove', 'vmenv/tiny', '--all'])).code).toBe(0);
    expect(snapshot().filter((p) => !p.startsWith('.'))).toEqual([]);
  });

  it('two box adds of the same box at once end with one intact box', async () => {
    const [a, b] = await Promise.all([vmenv(['box', 'add', tinyBox]), vmenv(['box', 'add', tinyBox])]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect([a.stdout, b.stdout].filter((s) => s.startsWith('Added'))).toHaveLength(1);
    const listing = JSON.parse((await vmenv(['box', 'list', '--json'])).stdout) as { boxes: unknown[] };
    expect(listing.boxes).toHaveLength(1);
    const img = join(home, 'boxes', 'vmenv-VAGRANTSLASH-tiny', '1.0.0', 'libvirt', 'box.img');
    expect(readFileSync(img).equals(readFileSync(join(tmp, 'x.qcow2')))).toBe(true);
    expect(readdirSync(join(home, 'boxes', '.tmp'))).toEqual([]);
  });

  describe('bad input: exit code != 0, store unchanged', () => {
    const cases: { title: string; args: () => string[]; code: number; stderr: RegExp }[] = [
      { title: 'a box with a symlink', args: () => [evilBox, '--name', 'evil'], code: 1, stderr: /entry 'box\.img' is a symbolic link/ },
      { title: 'a checksum mismatch', args: () => [tinyBox, '--checksum', `sha256:${'0'.repeat(64)}`], code: 1, stderr: /Checksum mismatch/ },
      { title: 'a malformed checksum', args: () => [tinyBox, '--checksum', 'sha256:xyz'], code: 2, stderr: /not hexadecimal/ },
      { title: 'a file that does not exist', args: () => ['./nope.box'], code: 1, stderr: /does not exist/ },
      { title: 'a name not in the store', args: () => ['debian-12'], code: 1, stderr: /No catalog configured for 'debian-12'/ },
      { title: 'a bad version constraint', args: () => [`${base}/tiny.json`, '--box-version', '>> 1'], code: 2, stderr: /Invalid version constraint/ },
      { title: 'no catalog version matches', args: () => [`${base}/tiny.json`, '--box-version', '>= 2'], code: 1, stderr: /No version of 'vmenv\/tiny' matches '>= 2'[\s\S]*1\.0\.0, 0\.9/ },
      { title: 'a catalog checksum mismatch', args: () => [`${base}/bad-sum.json`], code: 1, stderr: /Checksum mismatch/ },
      { title: 'a URL that is not there', args: () => [`${base}/missing.box`, '--name', 'x'], code: 1, stderr: /HTTP 404/ },
      { title: 'a truncated box', args: () => [join(tmp, 'truncated.box'), '--name', 't'], code: 1, stderr: /truncated or corrupt/ },
      { title: 'a bad name', args: () => [tinyBox, '--name', '../etc'], code: 2, stderr: /not a valid box name/ },
    ];
    for (const c of cases) {
      it(c.title, async () => {
        writeFileSync(join(tmp, 'truncated.box'), readFileSync(tinyBox).subarray(0, 300));
        await vmenv(['box', 'add', tinyBox, '--box-version', '5.0']);
        const before = snapshot();
        const r = await vmenv(['box', 'add', ...c.args()]);
        expect(r.stderr).toMatch(c.stderr);
        expect(r.code).toBe(c.code);
        expect(snapshot()).toEqual(before);
      });
    }

    it('errors as JSON with --json', async () => {
      const r = await vmenv(['box', 'add', './nope.box', '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { message: expect.stringMatching(/does not exist/) } });
    });

    it('remove of a box that is not there', async () => {
      const r = await vmenv(['box', 'remove', 'nope']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/There is no box 'nope'/);
    });
  });
});
