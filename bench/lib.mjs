// What the benchmarks that run guests on the test harness share: where the CLI is, the
// harness's variables, medians and units, Ctrl-C handling, and the tiny box.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BOX_CACHE_DIR, boxCacheKey, cachedBoxName } from '../dist/build/cache.js';
import { commonDirFor, resolveRecipeDir } from '../dist/build/locate.js';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const bin = join(root, 'bin', 'run.js');

/** The harness's libvirt URI, pool and guest namespace; exits 2 when they are not set. */
export function harness() {
  const uri = process.env.VMENV_TEST_URI;
  const pool = process.env.VMENV_TEST_POOL;
  const netns = process.env.VMENV_TEST_NETNS;
  if (!uri || !pool || !netns) {
    console.error('VMENV_TEST_URI, VMENV_TEST_POOL and VMENV_TEST_NETNS are not set: run `bash test/host/setup.sh` and source /var/lib/vmenv-test-host/env.');
    process.exit(2);
  }
  return { uri, pool, netns };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const ms = (x) => `${x.toFixed(0)} ms`;
export const sec = (x) => `${(x / 1000).toFixed(2)} s`;

/**
 * Ctrl-C reaches the CLI runs too (same process group); they fail, and the benchmark's
 * own cleanup runs instead of node dying on the signal. Returns the check to call before
 * each step: it throws once a signal came.
 */
export function trapInterrupts() {
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (interrupted = true));
  return () => {
    if (interrupted) throw new Error('interrupted');
  };
}

/** The tiny box: BENCH_BOX, else the cached build of boxes/tiny, built now when missing. */
export async function tinyBox(who) {
  if (process.env.BENCH_BOX) return process.env.BENCH_BOX;
  const dir = await resolveRecipeDir(join(root, 'boxes', 'tiny'));
  const { key } = await boxCacheKey(dir, await commonDirFor(dir));
  const out = join(BOX_CACHE_DIR, cachedBoxName('tiny', key));
  if (existsSync(out)) return out;
  console.error(`${who}: building the tiny box into ${out}`);
  mkdirSync(BOX_CACHE_DIR, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp.box`;
  execFileSync(process.execPath, [bin, 'box', 'build', dir, '-o', tmp], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 15 * 60_000 });
  renameSync(tmp, out);
  return out;
}
