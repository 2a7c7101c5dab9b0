import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SYSTEM_CACHE_DIR, cachedBoxName } from '../../src/build/cache.js';
import { commonDirFor, resolveRecipeDir } from '../../src/build/locate.js';
import { hashRecipe } from '../../src/build/recipe-hash.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const building = new Map<string, Promise<string>>();

/**
 * A `.box` built from one of the project's recipes, by the built CLI as a user builds
 * it. Kept in /var/cache/vmenv/boxes under the recipe's hash, so a recipe is built again
 * only when it (or boxes/common) changed.
 */
export function builtBox(recipe: string, timeoutMs = 15 * 60_000): Promise<string> {
  let p = building.get(recipe);
  if (!p) {
    p = (async () => {
      const dir = await resolveRecipeDir(join(root, 'boxes', recipe));
      const hash = await hashRecipe(dir, await commonDirFor(dir));
      const out = join(SYSTEM_CACHE_DIR, 'boxes', cachedBoxName(recipe, hash));
      if (existsSync(out)) return out;
      mkdirSync(dirname(out), { recursive: true });
      await run(process.execPath, [join(root, 'bin', 'run.js'), 'box', 'build', dir, '-o', out], {
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      });
      return out;
    })();
    building.set(recipe, p);
  }
  return p;
}
