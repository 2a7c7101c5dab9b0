/**
 * The checked config of a project, kept as JSON in its `.vmenv/` folder: a command run
 * again on an unchanged vmenv.yaml (`status`, `ssh`) reads that instead of loading the
 * YAML parser and checking the file again. The entry is keyed by the file's text, its
 * path, the home folder (`~` in paths) and this build of vmenv, so any change to one of
 * them checks the file afresh. Written only where `.vmenv/` exists (a machine was made),
 * best effort: a cache that cannot be read or written is just not used.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../util/atomic.js';
import { findProjectFile, STATE_DIR } from './project-file.js';
import type { LoadedConfig } from './types.js';

export const CONFIG_CACHE_FILE = 'config-cache.json';
/** Stands for `undefined` in the JSON (config fields are set to undefined on purpose). */
const UNDEFINED = '\u0000undefined';

interface CacheEntry {
  key: string;
  loaded: unknown;
}

/** This build of vmenv: the time this module's file was written. */
function buildId(): string {
  try {
    const s = statSync(fileURLToPath(import.meta.url));
    return `${s.mtimeMs}:${s.size}`;
  } catch {
    return 'unknown';
  }
}

export function configCacheKey(text: string, path: string, home: string = homedir(), build: string = buildId()): string {
  return createHash('sha256').update(JSON.stringify([text, path, home, build])).digest('hex');
}

/** The JSON of a loaded config, `undefined` fields kept. Pure. */
export function encodeLoaded(loaded: LoadedConfig): unknown {
  return JSON.parse(JSON.stringify(loaded, (_k, v: unknown) => (v === undefined ? UNDEFINED : v)));
}

/** A loaded config back from its JSON: `undefined` fields restored, `primary` the same object as its machine. Pure. */
export function decodeLoaded(json: unknown): LoadedConfig {
  const restore = (v: unknown): unknown => {
    if (v === UNDEFINED) return undefined;
    if (Array.isArray(v)) return v.map(restore);
    if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) o[k] = restore(o[k]);
    }
    return v;
  };
  const loaded = restore(json) as LoadedConfig;
  const primary = loaded.config.primary;
  if (primary !== undefined) loaded.config.primary = loaded.config.machines.find((m) => m.name === primary.name);
  return loaded;
}

/** findProjectFile + the checked config, from the cache when vmenv.yaml has not changed. */
export async function loadProjectCached(cwd: string): Promise<LoadedConfig> {
  const path = findProjectFile(cwd);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    // Unreadable: the loader says why.
    const { loadConfig } = await import('./load.js');
    return loadConfig(path);
  }
  const stateDir = join(dirname(path), STATE_DIR);
  const cacheFile = join(stateDir, CONFIG_CACHE_FILE);
  const key = configCacheKey(text, path);
  try {
    const entry = JSON.parse(await readFile(cacheFile, 'utf8')) as CacheEntry;
    if (entry.key === key) return decodeLoaded(entry.loaded);
  } catch {
    // no cache yet, or one that cannot be read: check the file
  }
  const { parseConfig } = await import('./load.js');
  const loaded = parseConfig(text, path);
  if (existsSync(stateDir)) {
    const entry: CacheEntry = { key, loaded: encodeLoaded(loaded) };
    await writeFileAtomic(cacheFile, `${JSON.stringify(entry)}\n`, 0o600).catch(() => undefined);
  }
  return loaded;
}
