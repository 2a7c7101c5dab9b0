import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatProblems, loadRecipe, parseRecipeText, RECIPE_DEFAULTS, RecipeError } from '../../../src/build/recipe.js';
import { ExitCode } from '../../../src/errors.js';

const boxes = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'boxes');

function problemsOf(text: string): { path: string; message: string; line?: number; hint?: string }[] {
  const r = parseRecipeText(text, 'x');
  expect(r.spec).toBeUndefined();
  return r.problems;
}

describe('parseRecipeText', () => {
  it('fills every default for an empty recipe, with the folder name as name', () => {
    const r = parseRecipeText('', 'my-box');
    expect(r.problems).toEqual([]);
    expect(r.spec).toEqual({ name: 'my-box', ...RECIPE_DEFAULTS });
  });

  it('reads the contract example as written', () => {
    const text = `name: tiny
description: Smallest useful guest
distribution: debian
release: bookworm
variant: custom
packages: [busybox, openssh-server]
disk_size: 1G
filesystem: ext4
formats: [box]
default_user: vagrant
nocloud: true
hooks:
  customize: customize.sh
boot:
  kernel: boot/vmlinuz
  initrd: boot/initrd.img
  cmdline: console=ttyS0 quiet
`;
    const r = parseRecipeText(text, 'tiny');
    expect(r.problems).toEqual([]);
    expect(r.spec).toMatchObject({
      name: 'tiny',
      variant: 'custom',
      packages: ['busybox', 'openssh-server'],
      disk_size: '1G',
      hooks: { customize: 'customize.sh' },
      boot: { kernel: 'boot/vmlinuz', initrd: 'boot/initrd.img', cmdline: 'console=ttyS0 quiet' },
    });
  });

  it('reports every problem at once, each with its path and line, in file order', () => {
    const text = [
      'name: Bad Name', // 1
      'variant: minbas', // 2
      'packages:', // 3
      '  - openssh-server', // 4
      '  - Not_A_Package', // 5
      '  - openssh-server', // 6
      'disk_size: lots', // 7
      'formats: [box, iso]', // 8
      'nocloud: yes please', // 9
      'boot:', // 10
      '  cmdline: root=/dev/sda1 quiet', // 11
    ].join('\n');
    const problems = problemsOf(text);
    expect(problems.map((p) => [p.line, p.path])).toEqual([
      [1, 'name'],
      [2, 'variant'],
      [5, 'packages[1]'],
      [6, 'packages[2]'],
      [7, 'disk_size'],
      [8, 'formats[1]'],
      [9, 'nocloud'],
      [11, 'boot.cmdline'],
    ]);
    expect(problems.find((p) => p.path === 'variant')!.hint).toBe("did you mean 'minbase'?");
    expect(problems.find((p) => p.path === 'packages[2]')!.message).toContain('listed twice (also packages[0])');
    expect(problems.find((p) => p.path === 'boot.cmdline')!.message).toContain("'root=/dev/sda1' is set by the build");
  });

  it('makes unknown keys errors with a did-you-mean hint, at the top and inside hooks and boot', () => {
    const text = ['pakages: [sudo]', 'disksize: 1G', 'hooks:', '  custom: x.sh', 'boot:', '  kernal: boot/vmlinuz', 'frobnicate: 1'].join('\n');
    const problems = problemsOf(text);
    expect(problems).toEqual([
      { path: 'pakages', line: 1, message: "unknown key 'pakages'", hint: "did you mean 'packages'?" },
      { path: 'disksize', line: 2, message: "unknown key 'disksize'", hint: "did you mean 'disk_size'?" },
      { path: 'hooks.custom', line: 4, message: "unknown key 'custom'", hint: "did you mean 'customize'?" },
      { path: 'boot.kernal', line: 6, message: "unknown key 'kernal'", hint: "did you mean 'kernel'?" },
      expect.objectContaining({ path: 'frobnicate', line: 7, message: "unknown key 'frobnicate'", hint: expect.stringContaining('known keys: name, description') }),
    ]);
  });

  it('checks types: lists, strings, booleans, mappings', () => {
    const problems = problemsOf(['packages: sudo, rsync', 'release: 12', 'formats: box', 'hooks: customize.sh', 'boot: [a]', 'description: [x]'].join('\n'));
    expect(problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'packages: must be a list',
      "release: must be a string, not 12",
      "release: '12' is not a release name (e.g. 'bookworm')",
      'formats: must be a list',
      'hooks: must be a mapping (customize:)',
      'boot: must be a mapping (kernel:, initrd:, cmdline:)',
      'description: must be a string, not a list',
    ]);
    expect(problems[0]!.hint).toBe("write it as [sudo, rsync] or one '- item' per line");
  });

  it('checks sizes: a size, at least 64M, at most 2T (MBR)', () => {
    expect(problemsOf('disk_size: 10 apples')[0]!.message).toBe("'10 apples' is not a size");
    expect(problemsOf('disk_size: 1M')[0]!.message).toContain('too small');
    expect(problemsOf('disk_size: 3T')[0]!.message).toContain('at most 2T');
    for (const ok of ['64M', '1G', '1.5G', '10GiB', '2048M', 1073741824]) {
      expect(parseRecipeText(`disk_size: ${ok}`, 'x').problems).toEqual([]);
    }
  });

  it('keeps hook and boot paths inside their folders', () => {
    const problems = problemsOf(['hooks:', '  customize: /etc/passwd', 'boot:', '  kernel: ../vmlinuz', '  initrd: "boot/initrd img"'].join('\n'));
    expect(problems.map((p) => p.path)).toEqual(['hooks.customize', 'boot.kernel', 'boot.initrd']);
    expect(problemsOf('hooks:\n  customize: ../other/customize.sh')[0]!.message).toContain("no '..'");
    const r = parseRecipeText('boot:\n  kernel: /boot/vmlinuz\n  initrd: ./boot//initrd.img', 'x');
    expect(r.spec!.boot).toMatchObject({ kernel: 'boot/vmlinuz', initrd: 'boot/initrd.img' });
  });

  it('rejects unsupported distributions, filesystems and an empty formats list', () => {
    const problems = problemsOf(['distribution: debain', 'filesystem: btrfs', 'formats: []'].join('\n'));
    expect(problems.map((p) => [p.path, p.hint])).toEqual([
      ['distribution', "did you mean 'debian'?"],
      ['filesystem', undefined],
      ['formats', "e.g. [box]; one or more of 'box', 'qcow2', 'raw', 'tar'"],
    ]);
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    const syntax = problemsOf('name: a\npackages: [a, b\n');
    expect(syntax[0]!.message).toMatch(/^YAML: /);
    expect(syntax[0]!.line).toBeGreaterThanOrEqual(2);
    const dup = problemsOf('name: a\nrelease: bookworm\nrelease: trixie\n');
    expect(dup[0]).toMatchObject({ line: 3 });
    expect(dup[0]!.message).toMatch(/unique/i);
    expect(problemsOf('- a\n- b\n')[0]!.message).toContain('a recipe is a mapping');
  });

  it('formats problems one a line', () => {
    expect(formatProblems([{ path: 'variant', line: 2, message: "'x' is bad", hint: "did you mean 'y'?" }, { path: '', message: 'whole file' }])).toBe(
      "  - line 2, variant: 'x' is bad (did you mean 'y'?)\n  - whole file",
    );
  });

  it('parses the recipes shipped in boxes/', async () => {
    const debian = await loadRecipe(join(boxes, 'debian-12'));
    expect(debian).toMatchObject({ name: 'debian-12', release: 'bookworm', default_user: 'vagrant', nocloud: true, filesystem: 'ext4' });
    expect(debian.packages).toEqual(expect.arrayContaining(['systemd', 'linux-image-amd64', 'openssh-server', 'sudo', 'rsync', 'qemu-guest-agent']));
    expect(debian.diskBytes).toBe(10 * 1024 ** 3);
    expect(debian.customizeHook).toBe(join(boxes, 'debian-12', 'customize.sh'));
  });
});

describe('loadRecipe', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmenv-recipe-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function recipe(name: string, text: string, files: Record<string, { text: string; mode?: number }> = {}): Promise<string> {
    const d = join(dir, name);
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'recipe.yaml'), text);
    for (const [f, { text: body, mode }] of Object.entries(files)) {
      await mkdir(dirname(join(d, f)), { recursive: true });
      await writeFile(join(d, f), body);
      if (mode !== undefined) await chmod(join(d, f), mode);
    }
    return d;
  }

  it('throws one RecipeError (usage exit code) listing every problem', async () => {
    const d = await recipe('bad', 'variant: nope\npakages: []\n');
    const err = await loadRecipe(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecipeError);
    const re = err as RecipeError;
    expect(re.exitCode).toBe(ExitCode.usage);
    expect(re.problems).toHaveLength(2);
    expect(re.message).toContain('has 2 problems:');
    expect(re.message).toContain("line 2, pakages: unknown key 'pakages' (did you mean 'packages'?)");
  });

  it('checks that the customize hook exists and is executable', async () => {
    const missing = await recipe('nohook', 'hooks:\n  customize: customize.sh\n');
    await expect(loadRecipe(missing)).rejects.toThrow(/line 2, hooks.customize: customize.sh does not exist/);
    const notExec = await recipe('noexec', 'hooks:\n  customize: customize.sh\n', { 'customize.sh': { text: '#!/bin/sh\n', mode: 0o644 } });
    const err = (await loadRecipe(notExec).catch((e: unknown) => e)) as RecipeError;
    expect(err.problems[0]).toMatchObject({ path: 'hooks.customize', message: 'customize.sh is not executable' });
    expect(err.problems[0]!.hint).toMatch(/^chmod \+x /);
    const ok = await recipe('ok', 'disk_size: 100M\nhooks:\n  customize: hooks/c.sh\n', { 'hooks/c.sh': { text: '#!/bin/sh\n', mode: 0o755 } });
    const loaded = await loadRecipe(ok);
    expect(loaded.customizeHook).toBe(join(ok, 'hooks', 'c.sh'));
    expect(loaded.diskBytes).toBe(100 * 1024 * 1024);
  });

  it('takes the Vagrantfile of the folder, when there is one, for the .box', async () => {
    const none = await recipe('novagrantfile', 'name: x\n');
    expect((await loadRecipe(none)).vagrantfile).toBeUndefined();
    const some = await recipe('vagrantfile', 'name: x\n', { Vagrantfile: { text: 'Vagrant.configure("2") do |config|\nend\n' } });
    expect((await loadRecipe(some)).vagrantfile).toBe(join(some, 'Vagrantfile'));
    const folder = await recipe('vagrantfile-dir', 'name: x\n', { 'Vagrantfile/x': { text: '' } });
    await expect(loadRecipe(folder)).rejects.toThrow(/Vagrantfile is not a file/);
  });

  it('says when a folder has no recipe.yaml', async () => {
    await mkdir(join(dir, 'empty'), { recursive: true });
    await expect(loadRecipe(join(dir, 'empty'))).rejects.toThrow(/is not a recipe: it has no recipe.yaml/);
  });

  it('rounds disk_size up to whole MiB', async () => {
    const d = await recipe('odd', 'disk_size: 100000000\n');
    expect((await loadRecipe(d)).diskBytes).toBe(96 * 1024 * 1024);
  });
});
