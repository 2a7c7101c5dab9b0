import { describe, expect, it } from 'vitest';
import { rsyncExcludeMatcher, watchIgnore } from '../../../src/sync/watch-ignore.js';

/**
 * Each row: an rsync exclude pattern, then paths (relative to the folder; a trailing
 * `/` marks a directory) that rsync leaves out, and paths it keeps. Checked against
 * rsync 3.2 itself (`rsync -rn --exclude=PATTERN src/ dst/`).
 */
const cases: [pattern: string, excluded: string[], kept: string[]][] = [
  ['*.log', ['a.log', 'src/deep/b.log', 'logs.log/'], ['a.log.txt', 'src/alog', 'a.LOG']],
  ['/build/', ['build/'], ['build', 'src/build/', 'builder/']],
  ['build/', ['build/', 'src/build/'], ['build', 'src/builder/']],
  ['node_modules', ['node_modules/', 'node_modules', 'a/b/node_modules/'], ['node_modules2/', 'xnode_modules']],
  ['src/gen', ['src/gen', 'src/gen/', 'x/src/gen'], ['src/gen2', 'src/general', 'xsrc/gen', 'gen']],
  ['/tmp/*.txt', ['tmp/a.txt'], ['tmp/sub/a.txt', 'x/tmp/a.txt', 'a.txt']],
  ['cache/**', ['cache/a', 'cache/a/b/c', 'x/cache/a'], ['cache/', 'cachex/a']],
  ['/dist/***', ['dist/', 'dist/a/b'], ['dist', 'x/dist/a', 'distx']],
  ['file?.c', ['file1.c', 'a/fileX.c'], ['file.c', 'file12.c', 'file/.c']],
  ['[ab].txt', ['a.txt', 'd/b.txt'], ['c.txt', 'ab.txt']],
  ['[!ab].txt', ['c.txt'], ['a.txt', 'b.txt']],
  ['\\*.txt', ['*.txt'], ['a.txt']],
  ['a.b', ['a.b'], ['axb']],
];

const isDir = (p: string): boolean => p.endsWith('/');
const bare = (p: string): string => p.replace(/\/$/, '');

describe('rsyncExcludeMatcher', () => {
  for (const [pattern, excluded, kept] of cases) {
    it(`${pattern}: as rsync leaves out and keeps`, () => {
      const m = rsyncExcludeMatcher(pattern);
      expect(m).toBeDefined();
      const matches = (p: string): boolean => m!.matches(bare(p), isDir(p));
      expect(excluded.filter((p) => !matches(p))).toEqual([]);
      expect(kept.filter((p) => matches(p))).toEqual([]);
    });
  }

  it('gives up on what it does not understand', () => {
    expect(rsyncExcludeMatcher('[[:digit:]]*')).toBeUndefined();
    expect(rsyncExcludeMatcher('[abc')).toBeUndefined();
    expect(rsyncExcludeMatcher('trailing\\')).toBeUndefined();
    expect(rsyncExcludeMatcher('')).toBeUndefined();
  });
});

describe('watchIgnore', () => {
  it('always leaves out .vmenv/ at the root and the inside of .git folders', () => {
    const { ignored } = watchIgnore([]);
    expect(ignored('.vmenv', true)).toBe(true);
    expect(ignored('.vmenv/machines/web/ssh_config', false)).toBe(true);
    expect(ignored('.git/index.lock', false)).toBe(true);
    expect(ignored('sub/module/.git/HEAD', false)).toBe(true);
    expect(ignored('sub/.vmenv', true)).toBe(false);
    expect(ignored('.gitignore', false)).toBe(false);
    expect(ignored('src/app.ts', false)).toBe(false);
    expect(ignored('', true)).toBe(false);
  });

  it("applies the folder's excludes, directory-only ones once the path is known to be a directory", () => {
    const { ignored, unsupported } = watchIgnore(['*.log', 'tmp/', '[[:space:]]*']);
    expect(unsupported).toEqual(['[[:space:]]*']);
    expect(ignored('x/y.log', false)).toBe(true);
    expect(ignored('tmp', true)).toBe(true);
    expect(ignored('tmp', undefined)).toBe(false);
    expect(ignored('tmp', false)).toBe(false);
    expect(ignored(' spaced', false)).toBe(false);
  });
});
