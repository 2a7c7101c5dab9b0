import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BOX_CACHE_DIR, boxCacheKey, cachedBoxName } from '../../src/build/cache.js';
import { commonDirFor, resolveRecipeDir } from '../../src/build/locate.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const building = new Map<string, Promise<string>>();

/**
 * A `.box` built from one of the project's recipes, by the built CLI as a user builds
 * it. Kept in /var/cache/vmenv/boxes under the cache key of src/build/cache.ts (recipe,
 * boxes/common and the builder), as scripts/box-cache.sh and box-build.test.ts keep them.
 */
export function builtBox(recipe: string, timeoutMs = 15 * 60_000): Promise<string> {
  let p = building.get(recipe);
  if (!p) {
    p = (async () => {
      const dir = await resolveRecipeDir(join(root, 'boxes', recipe));
      const { key } = await boxCacheKey(dir, await commonDirFor(dir));
      const out = join(BOX_CACHE_DIR, cachedBoxName(recipe, key));
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
    building.set(recipe, p);
  }
  return p;
}
