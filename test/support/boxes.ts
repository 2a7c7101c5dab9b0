import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BOX_CACHE_DIR, boxCacheKey, cachedBoxName } from '../../src/build/cache.js';
import { commonDirFor, resolveRecipeDir } from '../../src/build/locate.js';
import { hashRecipe } from '../../src/build/recipe-hash.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const building = new Map<string, Promise<string>>();

/**
 * A `.box` built from one of the project's recipes, by the built CLI as a user builds
 * it. Kept in /var/cache/vmenv/boxes under the cache key of src/build/cache.ts (recipe,
 * boxes/common and the builder), as scripts/box-cache.sh and box-build.test.ts keep them.
 */
export function builtBox(recipe: string, timeoutMs = 15 * 60_000): Promise<string> {
  return cachedBuild(recipe, join(root, 'boxes', recipe), [], timeoutMs);
}

/**
 * A box of a test-only recipe in test/fixtures/boxes/<name> (e.g. `vagrant-debian`, a
 * box made the Vagrant way). `uses` names the project recipes its hook runs, whose
 * files then count in its cache key too.
 */
export function builtFixtureBox(name: string, uses: string[] = [], timeoutMs = 15 * 60_000): Promise<string> {
  return cachedBuild(name, join(root, 'test', 'fixtures', 'boxes', name), uses.map((r) => join(root, 'boxes', r)), timeoutMs);
}

function cachedBuild(name: string, recipePath: string, alsoHashed: string[], timeoutMs: number): Promise<string> {
  let p = building.get(name);
  if (!p) {
    p = (async () => {
      const dir = await resolveRecipeDir(recipePath);
      const common = await commonDirFor(dir);
      let { key } = await boxCacheKey(dir, common);
      if (alsoHashed.length > 0) {
        const h = createHash('sha256').update(key);
        for (const d of alsoHashed) h.update(`\0${await hashRecipe(d, common)}`);
        key = h.digest('hex');
      }
      const out = join(BOX_CACHE_DIR, cachedBoxName(name, key));
      if (process.env['VMENV_TEST_REBUILD'] !== '1' && existsSync(out)) return out;
      mkdirSync(dirname(out), { recursive: true });
      const tmp = `${out}.${process.pid}.tmp.box`;
      await run(process.execPath, [join(root, 'bin', 'run.js'), 'box', 'build', dir, '-o', tmp], {
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      });
      await rename(tmp, out);
      return out;
    })();
    building.set(name, p);
  }
  return p;
}
