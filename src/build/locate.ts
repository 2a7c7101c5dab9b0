/**
 * Where recipes are: `vmenv box build <recipe>` takes a recipe name, looked up in the
 * project's own boxes/ folder (shipped with the package, found relative to this module:
 * src/build/ and dist/build/ are both two levels below the package root), or a path to a
 * recipe folder (anything with a '/' in it, or starting with '.', or an existing folder).
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, UserError } from '../errors.js';
import { displayPath, RECIPE_FILE } from './recipe.js';
import { didYouMean } from './suggest.js';

/** The boxes/ folder of the installed package. */
export function packagedBoxesDir(): string {
  return fileURLToPath(new URL('../../boxes/', import.meta.url));
}

/** boxes/common beside a recipe folder's parent, else the packaged one. */
export async function commonDirFor(recipeDir: string): Promise<string> {
  const sibling = resolve(recipeDir, '..', 'common');
  if (await isDir(sibling)) return sibling;
  return join(packagedBoxesDir(), 'common');
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Whether the argument reads as a path rather than a recipe name. */
export function looksLikePath(arg: string): boolean {
  return arg.includes('/') || arg.startsWith('.') || arg.startsWith('~');
}

/** The recipe names in a boxes/ folder (folders holding recipe.yaml). */
export async function listRecipes(boxesDir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(boxesDir, { withFileTypes: true });
  } catch {
    return [];
  }
  const names: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    try {
      if ((await stat(join(boxesDir, e.name, RECIPE_FILE))).isFile()) names.push(e.name);
    } catch {
      // not a recipe
    }
  }
  return names.sort();
}

/** Resolves the command's argument to a recipe folder (absolute). */
export async function resolveRecipeDir(arg: string, boxesDir = packagedBoxesDir()): Promise<string> {
  if (looksLikePath(arg) || (await isDir(arg))) {
    const dir = resolve(arg.startsWith('~/') ? join(process.env['HOME'] ?? '~', arg.slice(2)) : arg);
    if (!(await isDir(dir))) {
      throw new UserError(`No recipe folder at ${displayPath(dir)}.`, { exitCode: ExitCode.usage, hint: 'Give a recipe name (e.g. debian-12) or the path of a folder with a recipe.yaml.' });
    }
    return dir;
  }
  const names = await listRecipes(boxesDir);
  if (names.includes(arg)) return join(boxesDir, arg);
  const guess = didYouMean(arg, names);
  throw new UserError(`There is no recipe named '${arg}'.`, {
    exitCode: ExitCode.usage,
    hint:
      (guess === undefined ? '' : `Did you mean '${guess}'? `) +
      (names.length > 0 ? `Recipes in ${boxesDir}: ${names.join(', ')}. ` : `No recipes found in ${boxesDir}. `) +
      'A path to a recipe folder works too (e.g. ./my-box).',
  });
}
