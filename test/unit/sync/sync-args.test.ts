import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { guestFolderCommand, lookedUpGroups, rsyncArgs } from '../../../src/sync/sync.js';
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

describe('owner and group of rsync folders', () => {
  const h = { machine: { name: 'default', ssh: { username: 'vagrant' } } as never };
  const before = (args: string[]): string[] => args.slice(0, args.indexOf('-e'));

  it('leave rsync as the SSH user, the folder made for it, when neither is set', () => {
    const f = folder();
    expect(before(rsyncArgs(h, f, '/src', 'ssh'))).toEqual(['-rlptz', '--delete', '--exclude=/.vmenv/']);
    expect(guestFolderCommand(h, f)).toBe("sudo -n mkdir -p /vagrant && sudo -n chown vagrant: /vagrant");
  });

  it('run rsync as root in the guest with --chown, as Vagrant does', () => {
    const f = folder({ owner: 'www-data', group: 'adm' });
    expect(before(rsyncArgs(h, f, '/src', 'ssh'))).toEqual(['-rlptz', '--delete', '--rsync-path=sudo -n rsync', '--chown=www-data:adm', '--exclude=/.vmenv/']);
    expect(guestFolderCommand(h, f)).toBe("sudo -n mkdir -p /vagrant && sudo -n chown www-data:adm /vagrant");
    // A group alone: the files' owner is the SSH user.
    expect(before(rsyncArgs(h, folder({ group: '100' }), '/src', 'ssh'))).toContain('--chown=vagrant:100');
  });

  it("use the owner's login group, looked up in the guest, when only the owner is set", () => {
    const a = folder({ owner: 'nobody' });
    const b = folder({ guest: '/b', owner: 'x', group: 'y' });
    const c = folder({ guest: '/c', owner: '1000' });
    expect(guestFolderCommand(h, a)).toBe("sudo -n mkdir -p /vagrant && sudo -n chown nobody: /vagrant && id -g nobody");
    const groups = lookedUpGroups(h, [a, b, c], '65534\n1000\n');
    expect([...groups.entries()]).toEqual([[a, '65534'], [c, '1000']]);
    expect(before(rsyncArgs(h, a, '/src', 'ssh', groups.get(a)))).toContain('--chown=nobody:65534');
    expect(() => lookedUpGroups(h, [a], "id: unknown user nobody\n")).toThrow(/cannot find the login group of 'nobody' in machine 'default'/);
    expect(() => rsyncArgs(h, a, '/src', 'ssh')).toThrow(/bug/);
  });

  it.runIf(process.getuid?.() === 0)('give every file and folder to them, also ones rsync does not copy again (real rsync, as root)', () => {
    const src = join(root, 'own', 'src');
    const dst = join(root, 'own', 'dst');
    mkdirSync(join(src, 'a', 'b'), { recursive: true });
    writeFileSync(join(src, 'a', 'b', 'f.txt'), 'x');
    writeFileSync(join(src, 'top.txt'), 'y');
    mkdirSync(dst, { recursive: true });
    const run = (f: ReturnType<typeof folder>): void => {
      const args = rsyncArgs(h, f, src, 'ssh', '65534');
      execFileSync('rsync', before(args).concat(`${src}/`, `${dst}/`));
    };
    const owners = (): string[] =>
      ['a', 'a/b', 'a/b/f.txt', 'top.txt'].map((p) => {
        const st = statSync(join(dst, p));
        return `${p} ${st.uid}:${st.gid}`;
      });
    run(folder({ owner: '0', group: '0' }));
    expect(owners()).toEqual(['a 0:0', 'a/b 0:0', 'a/b/f.txt 0:0', 'top.txt 0:0']);
    run(folder({ owner: 'nobody' }));
    expect(owners()).toEqual(['a 65534:65534', 'a/b 65534:65534', 'a/b/f.txt 65534:65534', 'top.txt 65534:65534']);
  });
});
