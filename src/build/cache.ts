/**
 * Where builds keep things between runs.
 *
 * - Downloaded .debs: `$VMENV_HOME/cache/apt` when VMENV_HOME is set, else
 *   `/var/cache/vmenv/apt` (builds run as root, and sudo may hand them another user's
 *   HOME).
 * - Built boxes, for the tests: `/var/cache/vmenv/boxes/<recipe>-<key>.box`, where <key>
 *   covers the recipe hash (the recipe folder and boxes/common) and the builder's own
 *   sources, so that any change to either builds afresh. scripts/box-cache.sh and
 *   test/e2e/box-build.test.ts use it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashRecipe } from './recipe-hash.js';

export const SYSTEM_CACHE_DIR = '/var/cache/vmenv';
export const BOX_CACHE_DIR = join(SYSTEM_CACHE_DIR, 'boxes');

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const home = env['VMENV_HOME'];
  return home !== undefined && home !== '' ? join(home, 'cache') : SYSTEM_CACHE_DIR;
}

export function defaultAptCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'apt');
}

/** The file name a cached box of a recipe has (`debian-12-1a2b3c4d5e6f7a8b.box`). */
export function cachedBoxName(recipe: string, key: string): string {
  return `${recipe}-${key.replace(/^sha256:/, '').slice(0, 16)}.box`;
}

/** The package root: src/build/ and dist/build/ are both two levels below it. */
export function packageRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

/** The builder's sources: src/build/*.ts and the .box writer (dist/… when there is no src/). */
export async function builderFiles(root = packageRoot()): Promise<string[]> {
  const fromSrc = existsSync(join(root, 'src', 'build'));
  const base = join(root, fromSrc ? 'src' : 'dist');
  const ext = fromSrc ? '.ts' : '.js';
  const build = (await readdir(join(base, 'build'))).filter((f) => f.endsWith(ext)).map((f) => join(base, 'build', f));
  return [...build, join(base, 'box', `format${ext}`), join(base, 'box', `metadata${ext}`)].sort();
}

/** The cache key of a recipe's box: its recipe hash and the builder's sources. */
export async function boxCacheKey(recipeDir: string, commonDir: string, root = packageRoot()): Promise<{ key: string; recipeHash: string }> {
  const recipeHash = await hashRecipe(recipeDir, commonDir);
  const hash = createHash('sha256').update(`${recipeHash}\0`);
  for (const file of await builderFiles(root)) {
    hash.update(`${relative(root, file)}\0`);
    hash.update(await readFile(file));
    hash.update('\0');
  }
  return { key: hash.digest('hex').slice(0, 16), recipeHash };
}
