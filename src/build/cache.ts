/**
 * Where builds keep things between runs: downloaded .debs in `$VMENV_HOME/cache/apt`
 * when VMENV_HOME is set, else `/var/cache/vmenv/apt` (builds run as root, and sudo may
 * hand them another user's HOME). The e2e test keeps built boxes in
 * `/var/cache/vmenv/boxes/<recipe>-<hash>.box`.
 */
import { join } from 'node:path';

export const SYSTEM_CACHE_DIR = '/var/cache/vmenv';

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const home = env['VMENV_HOME'];
  return home !== undefined && home !== '' ? join(home, 'cache') : SYSTEM_CACHE_DIR;
}

export function defaultAptCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'apt');
}

/** The file name a cached box of a recipe at a given hash has (`debian-12-1a2b3c4d5e6f.box`). */
export function cachedBoxName(recipe: string, recipeHash: string): string {
  const hex = recipeHash.replace(/^sha256:/, '');
  return `${recipe}-${hex.slice(0, 16)}.box`;
}
