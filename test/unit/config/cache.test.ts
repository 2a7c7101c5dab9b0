/**
 * The config cache in .vmenv/: written once a project has state, used while vmenv.yaml
 * is unchanged, passed over when the text, the path or the build changes; a broken
 * vmenv.yaml is reported even with an old entry there.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONFIG_CACHE_FILE, configCacheKey, loadProjectCached } from '../../../src/config/cache.js';
import { ConfigError } from '../../../src/config/errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-config-cache-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cacheFile = (): string => join(dir, '.vmenv', CONFIG_CACHE_FILE);
const write = (text: string): void => writeFileSync(join(dir, 'vmenv.yaml'), text);

describe('loadProjectCached', () => {
  it('writes no cache before the project has a .vmenv folder', async () => {
    write('box: tiny\nmemory: 512\n');
    expect((await loadProjectCached(dir)).config.machines[0]!.memory).toBe(512);
    expect(() => readFileSync(cacheFile())).toThrow();
  });

  it('reads the cached config while vmenv.yaml is unchanged, and checks it again after a change', async () => {
    write('box: tiny\nmemory: 512\n');
    mkdirSync(join(dir, '.vmenv'));
    const first = await loadProjectCached(dir);
    const entry = JSON.parse(readFileSync(cacheFile(), 'utf8')) as { key: string; loaded: { config: { machines: Array<{ memory: number }> } } };
    expect(entry.key).toMatch(/^[0-9a-f]{64}$/);
    // Proof that the entry is what is read: change it behind vmenv's back.
    entry.loaded.config.machines[0]!.memory = 777;
    writeFileSync(cacheFile(), JSON.stringify(entry));
    expect((await loadProjectCached(dir)).config.machines[0]!.memory).toBe(777);
    write('box: tiny\nmemory: 1024\n');
    expect((await loadProjectCached(dir)).config.machines[0]!.memory).toBe(1024);
    expect(first.config.machines[0]!.memory).toBe(512);
  });

  it('reports a broken vmenv.yaml even with an entry for the old text', async () => {
    write('box: tiny\n');
    mkdirSync(join(dir, '.vmenv'));
    await loadProjectCached(dir);
    write('box: tiny\nmemory: lots\n');
    await expect(loadProjectCached(dir)).rejects.toBeInstanceOf(ConfigError);
  });

  it('ignores an unreadable cache file', async () => {
    write('box: tiny\n');
    mkdirSync(join(dir, '.vmenv'));
    writeFileSync(cacheFile(), '{not json');
    expect((await loadProjectCached(dir)).config.machines[0]!.box.name).toBe('tiny');
  });

  it('keys entries by text, path, home folder and build', () => {
    const k = configCacheKey('box: tiny\n', '/p/vmenv.yaml', '/root', 'b1');
    expect(configCacheKey('box: tiny\n', '/p/vmenv.yaml', '/root', 'b1')).toBe(k);
    for (const other of [
      configCacheKey('box: tiny \n', '/p/vmenv.yaml', '/root', 'b1'),
      configCacheKey('box: tiny\n', '/q/vmenv.yaml', '/root', 'b1'),
      configCacheKey('box: tiny\n', '/p/vmenv.yaml', '/home/me', 'b1'),
      configCacheKey('box: tiny\n', '/p/vmenv.yaml', '/root', 'b2'),
    ])
      expect(other).not.toBe(k);
  });
});
