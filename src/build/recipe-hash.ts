/**
 * The recipe hash: sha256 over every file of the recipe folder (recipe.yaml included)
 * and of boxes/common, recorded in the box metadata as `vmenv.recipe_hash`. Two builds
 * from the same files have the same hash, whatever the checkout: the hash covers each
 * file's path (relative to its folder), whether it is executable, and its bytes —
 * never times, owners or other permission bits. Symbolic links count by their target.
 */
import { createHash, type Hash } from 'node:crypto';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface HashedFile {
  /** `recipe/<path>` or `common/<path>`, with `/` separators. */
  path: string;
  kind: 'file' | 'executable' | 'symlink';
  /** File bytes, or the link target. */
  data: Buffer;
}

/** Pure: the hash of a list of files, independent of their order. */
export function hashFiles(files: readonly HashedFile[]): string {
  const hash: Hash = createHash('sha256');
  hash.update('vmenv-recipe-hash-v1\0');
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of sorted) {
    hash.update(`${f.path}\0${f.kind}\0${f.data.length}\0`);
    hash.update(f.data);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Every file under `dir` (recursively), as HashedFiles prefixed with `prefix/`. A missing dir holds none. */
export async function collectFiles(dir: string, prefix: string): Promise<HashedFile[]> {
  const out: HashedFile[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && rel === '') return;
      throw err;
    }
    for (const entry of entries) {
      const childAbs = join(abs, entry.name);
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(childAbs, childRel);
      else if (entry.isSymbolicLink()) out.push({ path: `${prefix}/${childRel}`, kind: 'symlink', data: Buffer.from(await readlink(childAbs)) });
      else if (entry.isFile()) {
        const st = await stat(childAbs);
        out.push({ path: `${prefix}/${childRel}`, kind: (st.mode & 0o111) !== 0 ? 'executable' : 'file', data: await readFile(childAbs) });
      }
    }
  };
  await walk(dir, '');
  return out;
}

/** The hash of a recipe folder and the shared boxes/common folder. */
export async function hashRecipe(recipeDir: string, commonDir: string): Promise<string> {
  const [recipe, common] = await Promise.all([collectFiles(recipeDir, 'recipe'), collectFiles(commonDir, 'common')]);
  return hashFiles([...recipe, ...common]);
}
