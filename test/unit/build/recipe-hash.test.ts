import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collectFiles, hashFiles, hashRecipe, type HashedFile } from '../../../src/build/recipe-hash.js';

const file = (path: string, data: string, kind: HashedFile['kind'] = 'file'): HashedFile => ({ path, kind, data: Buffer.from(data) });

describe('hashFiles', () => {
  const files = [file('recipe/recipe.yaml', 'name: a\n'), file('recipe/customize.sh', '#!/bin/sh\n', 'executable'), file('common/nocloud/x', 'x')];

  it('is a sha256, independent of the order files are listed in', () => {
    const h = hashFiles(files);
    expect(h).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hashFiles([...files].reverse())).toBe(h);
  });

  it('changes with any byte, any path, the executable bit, and files added or removed', () => {
    const h = hashFiles(files);
    const variants = [
      [file('recipe/recipe.yaml', 'name: b\n'), files[1]!, files[2]!],
      [file('recipe/recipe.yml', 'name: a\n'), files[1]!, files[2]!],
      [files[0]!, file('recipe/customize.sh', '#!/bin/sh\n', 'file'), files[2]!],
      [files[0]!, files[1]!],
      [...files, file('common/new', '')],
      [files[0]!, files[1]!, file('common/nocloud/x', 'x', 'symlink')],
    ];
    const hashes = new Set(variants.map(hashFiles));
    expect(hashes.size).toBe(variants.length);
    expect(hashes.has(h)).toBe(false);
  });

  it('cannot be fooled by moving bytes between a name and the content', () => {
    expect(hashFiles([file('recipe/ab', 'c')])).not.toBe(hashFiles([file('recipe/a', 'bc')]));
  });
});

describe('hashRecipe', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmenv-hash-test-'));
    await mkdir(join(dir, 'r', 'files', 'etc'), { recursive: true });
    await mkdir(join(dir, 'common', 'nocloud'), { recursive: true });
    await writeFile(join(dir, 'r', 'recipe.yaml'), 'name: r\n');
    await writeFile(join(dir, 'r', 'customize.sh'), '#!/bin/sh\n');
    await chmod(join(dir, 'r', 'customize.sh'), 0o755);
    await writeFile(join(dir, 'r', 'files', 'etc', 'motd'), 'hi\n');
    await symlink('motd', join(dir, 'r', 'files', 'etc', 'issue'));
    await writeFile(join(dir, 'common', 'nocloud', 'vmenv-nocloud'), '#!/bin/sh\n');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('covers every file of the recipe folder and of boxes/common, by relative path', async () => {
    const files = await collectFiles(join(dir, 'r'), 'recipe');
    expect(files.map((f) => `${f.path} ${f.kind}`).sort()).toEqual([
      'recipe/customize.sh executable',
      'recipe/files/etc/issue symlink',
      'recipe/files/etc/motd file',
      'recipe/recipe.yaml file',
    ]);
  });

  it('is stable: the same files give the same hash whatever their times, owners or other mode bits', async () => {
    const before = await hashRecipe(join(dir, 'r'), join(dir, 'common'));
    await utimes(join(dir, 'r', 'recipe.yaml'), new Date(0), new Date(0));
    await chmod(join(dir, 'r', 'files', 'etc', 'motd'), 0o600);
    expect(await hashRecipe(join(dir, 'r'), join(dir, 'common'))).toBe(before);
    // The same tree elsewhere hashes the same.
    const copy = await mkdtemp(join(tmpdir(), 'vmenv-hash-copy-'));
    try {
      await mkdir(join(copy, 'recipe-elsewhere', 'files', 'etc'), { recursive: true });
      await mkdir(join(copy, 'c', 'nocloud'), { recursive: true });
      await writeFile(join(copy, 'recipe-elsewhere', 'recipe.yaml'), 'name: r\n');
      await writeFile(join(copy, 'recipe-elsewhere', 'customize.sh'), '#!/bin/sh\n', { mode: 0o700 });
      await writeFile(join(copy, 'recipe-elsewhere', 'files', 'etc', 'motd'), 'hi\n');
      await symlink('motd', join(copy, 'recipe-elsewhere', 'files', 'etc', 'issue'));
      await writeFile(join(copy, 'c', 'nocloud', 'vmenv-nocloud'), '#!/bin/sh\n');
      expect(await hashRecipe(join(copy, 'recipe-elsewhere'), join(copy, 'c'))).toBe(before);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  it('changes when boxes/common changes, and works without boxes/common', async () => {
    const before = await hashRecipe(join(dir, 'r'), join(dir, 'common'));
    await writeFile(join(dir, 'common', 'nocloud', 'vmenv-nocloud'), '#!/bin/sh\necho\n');
    expect(await hashRecipe(join(dir, 'r'), join(dir, 'common'))).not.toBe(before);
    expect(await hashRecipe(join(dir, 'r'), join(dir, 'no-such-dir'))).toMatch(/^sha256:/);
  });
});
