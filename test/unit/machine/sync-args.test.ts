import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rsyncArgs } from '../../../src/machine/sync.js';
import { folder } from '../config/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'vmenv-sync-args-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

/** Runs the real rsync with vmenv's arguments, locally: the remote end replaced by a folder. */
function syncLocally(options: Parameters<typeof folder>[0], name: string): string[] {
  const src = join(root, name, 'src');
  const dst = join(root, name, 'dst');
  for (const [path, text] of [
    ['app.js', 'x'],
    ['.gitignore', 'node_modules/\n*.log\n'],
    ['debug.log', 'x'],
    ['node_modules/dep/index.js', 'x'],
    ['.git/HEAD', 'ref'],
    ['.vmenv/machines/default/state.json', '{}'],
    ['sub/.gitignore', 'secret.txt\n'],
    ['sub/secret.txt', 'x'],
    ['sub/kept.txt', 'x'],
  ] as const) {
    mkdirSync(join(src, path, '..'), { recursive: true });
    writeFileSync(join(src, path), text);
  }
  mkdirSync(dst, { recursive: true });
  const args = rsyncArgs({ machine: { name: 'default' } as never }, folder(options), src, 'ssh');
  const local = args.slice(0, args.indexOf('-e')).concat(`${src}/`, `${dst}/`);
  execFileSync('rsync', local);
  return files(dst);
}

describe('rsyncArgs, run by the real rsync', () => {
  it('leaves .vmenv/ and the excludes out, and copies what .gitignore ignores by default', () => {
    expect(syncLocally({ exclude: ['*.log'] }, 'plain')).toEqual(
      ['.git/HEAD', '.gitignore', 'app.js', 'node_modules/dep/index.js', 'sub/.gitignore', 'sub/kept.txt', 'sub/secret.txt'].sort(),
    );
  });

  it("with exclude_vcs_ignored, honours every folder's .gitignore and leaves .git/ out", () => {
    expect(syncLocally({ exclude_vcs_ignored: true }, 'vcs')).toEqual(['.gitignore', 'app.js', 'sub/.gitignore', 'sub/kept.txt'].sort());
  });
});
