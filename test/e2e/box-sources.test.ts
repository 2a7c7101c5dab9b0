/**
 * Boxes as vmenv.yaml may give them, with the built CLI on the harness's libvirtd:
 * `box:` as a loopback URL and as a relative path (added to the store on the first up,
 * found there later without downloading), a v2 box with a second, raw data disk (both
 * attached in order, before the disks of vmenv.yaml), a raw v1 variant of the tiny box
 * (a qcow2 overlay on a raw backing store), and bad input that leaves nothing behind.
 * The boxes are made here from the tiny box. Three boots in all.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBoxArchive } from '../../src/box/format.js';
import { openLibvirt, type LibvirtClient } from '../../src/libvirt/index.js';
import { machineResourceName } from '../../src/project/names.js';
import { builtBox } from '../support/boxes.js';
import { runVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';
import { TestServer } from '../unit/box/http-server.js';

const host = testHost();
const home = mkdtempSync(join(tmpdir(), 'vmenv-bsrc-home-'));
const work = mkdtempSync(join(tmpdir(), 'vmenv-bsrc-'));
const project = join(work, 'app');
const env = { ...process.env, VMENV_HOME: home, VMENV_GUEST_NETNS: host.netns, VMENV_LIBVIRT_URI: host.uri };
const network = `vmenv-bsrc-${process.pid}`;
const TWO = `e2e-two-disks-${process.pid}`;
const DATA_MAGIC = 'vmenv-data-disk-e2e';
const DATA_BYTES = 32 * 1024 * 1024;
let client: LibvirtClient;
let server: TestServer;
let twoDiskUrl = '';

function vmenv(args: string[]): Promise<Run> {
  return runVmenv([...args, '--cwd', project], { env, timeoutMs: 300_000 });
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

function writeConfig(box: string, extra: string[] = []): void {
  writeFileSync(
    join(project, 'vmenv.yaml'),
    [`box: ${box}`, 'memory: 256', `pool: ${host.pool}`, `network: { mode: nat, name: ${network} }`, 'boot: { timeout: 180 }', 'synced_folders:', '  - { host: ., guest: /vagrant, disabled: true }', ...extra, ''].join('\n'),
  );
}

/** The machine's domains, volumes and network, and the box volumes in the pool. */
async function inLibvirt(): Promise<{ domains: string[]; volumes: string[]; networks: string[]; boxVolumes: string[] }> {
  const stem = machineResourceName(project, 'default');
  const pool = await client.storagePoolLookupByName(host.pool);
  await client.storagePoolRefresh(pool);
  const volumes = (await client.storagePoolListAllVolumes(pool)).map((v) => v.name);
  return {
    domains: (await client.connectListAllDomains()).map((d) => d.name).filter((n) => n.startsWith(stem)),
    volumes: volumes.filter((n) => n.startsWith(stem)).sort(),
    networks: (await client.connectListAllNetworks()).map((n) => n.name).filter((n) => n === network),
    boxVolumes: volumes.filter((n) => n.startsWith(`vmenv-box_${TWO}_`) || n.startsWith('vmenv-box_tiny-raw_')).sort(),
  };
}

const nothing = { domains: [], volumes: [], networks: [] };

/** Stored boxes (the store's own folders, .locks and .tmp, left out). */
function storedBoxes(): string[] {
  const dir = join(home, 'boxes');
  return existsSync(dir) ? readdirSync(dir).filter((e) => !e.startsWith('.')) : [];
}

async function volumeXml(name: string): Promise<string> {
  const pool = await client.storagePoolLookupByName(host.pool);
  return client.storageVolGetXmlDesc(await client.storageVolLookupByName(pool, name));
}

function head(path: string, n: number): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, 0);
    return buf.toString('latin1');
  } finally {
    closeSync(fd);
  }
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  mkdirSync(join(project, 'boxes'), { recursive: true });
  // The tiny box's disk and metadata, to make the others from.
  const tiny = join(work, 'tiny');
  mkdirSync(tiny);
  execFileSync('tar', ['xf', await builtBox('tiny'), '-C', tiny]);
  const meta = JSON.parse(readFileSync(join(tiny, 'metadata.json'), 'utf8')) as { vmenv: Record<string, unknown> };
  const { name: _n, version: _v, ...vmenvFields } = meta.vmenv;

  // v2: the tiny disk, then a raw data disk starting with a marker.
  const data = join(work, 'data.raw');
  writeFileSync(data, Buffer.alloc(0));
  execFileSync('truncate', ['-s', String(DATA_BYTES), data]);
  execFileSync('dd', ['of=' + data, 'conv=notrunc', 'status=none'], { input: DATA_MAGIC });
  const twoDisks = join(work, 'two-disks.box');
  await writeBoxArchive(twoDisks, { metadata: { provider: 'libvirt', vmenv: { ...vmenvFields, name: TWO, version: '1.0.0' } }, disks: [{ path: join(tiny, 'box.img') }, { path: data }] }, { gzipLevel: 1 });
  server = await new TestServer().start();
  server.files.set('/boxes/two-disks.box', { body: readFileSync(twoDisks) });
  twoDiskUrl = server.url('/boxes/two-disks.box');

  // v1 raw: the tiny disk converted, in a box that does not say its name.
  const raw = join(work, 'tiny.raw');
  execFileSync('qemu-img', ['convert', '-O', 'raw', join(tiny, 'box.img'), raw]);
  // A plain tar: gzip of 1 GiB (mostly zeros) costs more CPU than the copy it saves.
  await writeBoxArchive(join(project, 'boxes', 'tiny-raw.box'), { metadata: { provider: 'libvirt', vmenv: vmenvFields }, disks: [{ path: raw }] }, { gzip: false });
  rmSync(tiny, { recursive: true, force: true });
  rmSync(raw, { force: true });
}, 300_000);

afterAll(async () => {
  await vmenv(['destroy', '-f']);
  for (const name of [TWO, 'tiny-raw']) await runVmenv(['box', 'remove', name, '--all', '--force'], { env });
  await server?.stop();
  await client?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('box: as a file or URL, boxes with several disks or raw disks', () => {
  it('a box: URL that answers 404, and a path that does not exist: clear errors, nothing left behind', async () => {
    writeConfig(server.url('/boxes/missing.box'));
    const missingUrl = await vmenv(['up']);
    expect(missingUrl.code, missingUrl.stdout + missingUrl.stderr).not.toBe(0);
    expect(missingUrl.stderr).toMatch(/box: http:\/\/127\.0\.0\.1:\d+\/boxes\/missing\.box could not be added to the box store: Cannot download .* HTTP 404 \(not found\)/);
    expect(missingUrl.stderr).toMatch(/Check the URL/);

    writeConfig('./boxes/nope.box');
    const missingFile = await vmenv(['up']);
    expect(missingFile.code).toBe(2);
    expect(missingFile.stderr).toContain(`box: ${join(project, 'boxes', 'nope.box')} does not exist (box: './boxes/nope.box' in vmenv.yaml)`);
    expect(missingFile.stderr).toContain(`relative to the project folder (${project})`);

    expect(await inLibvirt()).toEqual({ ...nothing, boxVolumes: [] });
    expect(storedBoxes()).toEqual([]);
    expect(existsSync(join(home, 'boxes', '.downloads'))).toBe(false);
    expect(existsSync(join(project, '.vmenv', 'machines', 'default', 'state.json'))).toBe(false);
  });

  it("a v2 box from a loopback URL: its disks attached in order (the raw one read as raw, copy-on-write), then vmenv.yaml's disks", async () => {
    writeConfig(twoDiskUrl, ['disks:', '  - { size: 64M }']);
    const up = ok(await vmenv(['up']));
    expect(up.stdout).toContain(`Box ${TWO} 1.0.0 (added to the box store from ${twoDiskUrl})`);

    // vda: the root disk; vdb: the box's data disk with its marker; vdc: the disk of vmenv.yaml.
    const guest = ok(await vmenv(['ssh', '-c', 'cat /sys/block/vda/size /sys/block/vdb/size /sys/block/vdc/size; sudo dd if=/dev/vdb bs=19 count=1 2>/dev/null; echo']));
    expect(guest.stdout).toBe(`${2 ** 30 / 512}\n${DATA_BYTES / 512}\n${(64 * 2 ** 20) / 512}\n${DATA_MAGIC}\n`);

    const stem = machineResourceName(project, 'default');
    const state = JSON.parse(readFileSync(join(project, '.vmenv', 'machines', 'default', 'state.json'), 'utf8')) as { volumes: { name: string; role: string }[]; box: unknown };
    expect(state.box).toEqual({ name: TWO, version: '1.0.0' });
    expect(state.volumes.map((v) => [v.role, v.name])).toEqual([
      ['root', `${stem}.qcow2`],
      ['box-disk', `${stem}-box1.qcow2`],
      ['disk', `${stem}-disk0.qcow2`],
      ['seed', `${stem}-seed.iso`],
    ]);
    const { boxVolumes } = await inLibvirt();
    expect(boxVolumes).toHaveLength(2);
    expect(boxVolumes[0]).toMatch(new RegExp(`^vmenv-box_${TWO}_1\\.0\\.0_0_[0-9a-f]{10}\\.qcow2$`));
    expect(boxVolumes[1]).toMatch(new RegExp(`^vmenv-box_${TWO}_1\\.0\\.0_1_[0-9a-f]{10}\\.raw$`));
    expect(await volumeXml(boxVolumes[1]!)).toMatch(/<target>[\s\S]*<format type='raw'\/>/);
    const overlay = await volumeXml(`${stem}-box1.qcow2`);
    expect(overlay).toMatch(/<backingStore>\s*<path>[^<]+\.raw<\/path>\s*<format type='raw'\/>/);

    // A write in the guest lands in the machine's overlay; the box volume keeps its bytes.
    ok(await vmenv(['ssh', '-c', 'printf overwritten | sudo dd of=/dev/vdb conv=notrunc 2>/dev/null; sync; sudo dd if=/dev/vdb bs=11 count=1 2>/dev/null']));
    expect(head(join(host.poolDir, boxVolumes[1]!), DATA_MAGIC.length)).toBe(DATA_MAGIC);

    ok(await vmenv(['destroy', '-f']));
    expect(await inLibvirt()).toEqual({ ...nothing, boxVolumes });
  });

  it('a later up takes the box from the store, without a request to the server; box remove deletes both box volumes', async () => {
    const requests = server.requests.length;
    const up = ok(await vmenv(['up']));
    expect(up.stdout).toContain(`Box ${TWO} 1.0.0`);
    expect(up.stdout).not.toContain('added to the box store');
    expect(server.requests.length).toBe(requests);
    expect(ok(await vmenv(['ssh', '-c', 'sudo dd if=/dev/vdb bs=19 count=1 2>/dev/null'])).stdout).toBe(DATA_MAGIC);
    ok(await vmenv(['destroy', '-f']));

    const list = JSON.parse(ok(await runVmenv(['box', 'list', '--json'], { env })).stdout) as { boxes: { name: string; source?: string; uploads: unknown[]; disks: { format: string }[] }[] };
    expect(list.boxes.map((b) => [b.name, b.source, b.disks.map((d) => d.format), b.uploads.length])).toEqual([[TWO, twoDiskUrl, ['qcow2', 'raw'], 2]]);
    ok(await runVmenv(['box', 'remove', TWO], { env }));
    expect(await inLibvirt()).toEqual({ ...nothing, boxVolumes: [] });
    expect(storedBoxes()).toEqual([]);
  });

  it('a raw v1 box by a relative path: named after its file, booted from a qcow2 overlay on a raw backing store', async () => {
    writeConfig('boxes/tiny-raw.box');
    const up = ok(await vmenv(['up']));
    expect(up.stdout).toContain(`Box tiny-raw 0 (added to the box store from ${join(project, 'boxes', 'tiny-raw.box')})`);
    expect(ok(await vmenv(['ssh', '-c', 'cat /sys/block/vda/size; ls /sys/block | grep -c ^vd'])).stdout).toBe(`${2 ** 30 / 512}\n1\n`);
    const stem = machineResourceName(project, 'default');
    expect(await volumeXml(`${stem}.qcow2`)).toMatch(/<backingStore>\s*<path>[^<]*vmenv-box_tiny-raw_0_0_[0-9a-f]{10}\.raw<\/path>\s*<format type='raw'\/>/);
    ok(await vmenv(['destroy', '-f']));
    ok(await runVmenv(['box', 'remove', 'tiny-raw'], { env }));
    expect(await inLibvirt()).toEqual({ ...nothing, boxVolumes: [] });
  });
});


