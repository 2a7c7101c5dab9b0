/**
 * The Vagrantfile a built box carries (boxes/<recipe>/Vagrantfile): the shipped recipes
 * have one with vagrant-libvirt's defaults for them, the build puts it into the .box
 * beside metadata.json and box.img (vagrant-libvirt's v1 layout), and `vmenv box add`
 * reads such a box and keeps it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBoxArchive, writeBoxArchive } from '../../../src/box/format.js';
import { addBox } from '../../../src/box/add-box.js';
import { getBox } from '../../../src/box/stored-boxes.js';
import { loadRecipe } from '../../../src/build/recipe.js';
import { makeQcow2, tempDir } from '../box/helpers.js';

const boxes = join(import.meta.dirname, '..', '..', '..', 'boxes');

/** Ruby's block structure, roughly: every `do` and `if` line has its `end`. */
function balanced(ruby: string): boolean {
  let depth = 0;
  for (const raw of ruby.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (/\bdo(\s*\|[^|]*\|)?$/.test(line) || /^(if|unless|def|class|module)\b/.test(line)) depth++;
    if (line === 'end') depth--;
    if (depth < 0) return false;
  }
  return depth === 0;
}

describe('the recipes’ Vagrantfiles', () => {
  for (const recipe of ['tiny', 'debian-12']) {
    it(`${recipe}: loaded with the recipe, vagrant-libvirt defaults, rsync synced folder`, async () => {
      const r = await loadRecipe(join(boxes, recipe));
      expect(r.vagrantfile).toBe(join(boxes, recipe, 'Vagrantfile'));
      const text = readFileSync(r.vagrantfile!, 'utf8');
      expect(text).toMatch(/^Vagrant\.configure\("2"\) do \|config\|$/m);
      expect(text).toMatch(/^ {2}config\.vm\.provider :libvirt do \|libvirt\|$/m);
      expect(text).toMatch(/^ {4}libvirt\.driver = "kvm"/m);
      expect(text).toMatch(/^ {4}libvirt\.disk_bus = "virtio"/m);
      // no NFS client in either box: rsync, which both have
      expect(text).toMatch(/^ {2}config\.vm\.synced_folder "\.", "\/vagrant", type: "rsync"$/m);
      expect(text).not.toMatch(/insecure_private_key|insert_key|private_key_path/);
      expect(balanced(text)).toBe(true);
    });
  }

  it('tiny: Vagrant runs its commands with busybox sh (no bash in the box)', () => {
    expect(readFileSync(join(boxes, 'tiny', 'Vagrantfile'), 'utf8')).toMatch(/^ {2}config\.ssh\.shell = "sh -l"$/m);
    expect(readFileSync(join(boxes, 'debian-12', 'Vagrantfile'), 'utf8')).not.toContain('config.ssh.shell');
  });
});

describe('a box as `vmenv box build` writes it', () => {
  let tmp: ReturnType<typeof tempDir>;
  let box: string;
  const vagrantfile = readFileSync(join(boxes, 'tiny', 'Vagrantfile'), 'utf8');
  beforeAll(async () => {
    tmp = tempDir('vmenv-vagrantfile-');
    const disk = makeQcow2(join(tmp.path, 'disk.qcow2'), '1G');
    box = join(tmp.path, 'tiny.box');
    // as src/build/pipeline.ts writes it: plain tar, the recipe's Vagrantfile
    await writeBoxArchive(
      box,
      { metadata: { provider: 'libvirt', vmenv: { name: 'vmenv/tiny', version: '1.0.0', default_user: 'vagrant', nocloud: true } }, disks: [{ path: disk }], vagrantfile },
      { gzip: false },
    );
  });
  afterAll(() => tmp.cleanup());

  it('holds what vagrant box add and vagrant-libvirt expect: metadata.json, box.img, Vagrantfile', async () => {
    const r = await readBoxArchive(box, join(tmp.path, 'unpacked'));
    expect(r.files.sort()).toEqual(['Vagrantfile', 'box.img', 'metadata.json']);
    expect(readFileSync(r.vagrantfile!, 'utf8')).toBe(vagrantfile);
    const metadata = JSON.parse(readFileSync(join(tmp.path, 'unpacked', 'metadata.json'), 'utf8')) as Record<string, unknown>;
    // vagrant-libvirt's v1 fields: provider, format, virtual_size as whole GiB (an integer)
    expect(metadata).toMatchObject({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 });
    expect(Number.isInteger(metadata['virtual_size'])).toBe(true);
    expect(r.layout).toBe('v1');
    expect(r.disks[0]).toMatchObject({ boxPath: 'box.img', format: 'qcow2' });
    // a plain tar: bsdtar (vagrant box add) and tar-stream read it as well as a gzipped one
    expect(readFileSync(box).subarray(257, 262).toString('latin1')).toBe('ustar');
  });

  it('vmenv box add reads it and keeps the Vagrantfile in the store', async () => {
    const home = join(tmp.path, 'home');
    const { box: stored } = await addBox(box, { home });
    expect(stored.vagrantfile).toBe(join(stored.dir, 'Vagrantfile'));
    expect(readFileSync(stored.vagrantfile!, 'utf8')).toBe(vagrantfile);
    expect((await getBox({ name: 'vmenv/tiny', version: '1.0.0' }, { home }))?.vagrantfile).toBe(stored.vagrantfile);
  });
});
