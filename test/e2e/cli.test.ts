/**
 * The built CLI, run as a user runs it: `node bin/run.js ...` as a child process.
 * Needs `npm run build` (done here when dist/ or the manifest is missing).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runVmenv, type Run } from '../support/cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');


function vmenv(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return runVmenv(args, { env });
}

/** The machine commands: each needs a project. */
const machineCommands = ['up', 'halt', 'destroy', 'ssh', 'ssh-config', 'status', 'provision', 'rsync', 'reload', 'suspend', 'resume'];
const allCommands = [...machineCommands, 'global-status', 'doctor', 'prune', 'init', 'box build', 'box add', 'box list', 'box remove'];

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'commands', 'doctor.js')) || !existsSync(join(root, 'oclif.manifest.json'))) {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  }
});

describe('vmenv (built CLI)', () => {
  it('--version prints vmenv/<version> <platform> node-<version> and exits 0', async () => {
    const r = await vmenv(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^vmenv\/\d+\.\d+\.\d+\S* \S+ node-v\d+/);
  });

  it('--help lists every top-level command and the box topic', async () => {
    const r = await vmenv(['--help']);
    expect(r.code).toBe(0);
    for (const id of allCommands.filter((c) => !c.startsWith('box '))) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${id}\\s`, 'm'));
    }
    expect(r.stdout).toMatch(/^\s+box\s/m);
    const box = await vmenv(['box', '--help']);
    for (const sub of ['build', 'add', 'list', 'remove']) expect(box.stdout).toMatch(new RegExp(`box ${sub}\\s`));
  });

  it.each(allCommands)("'%s --help' shows a description and an example", async (id) => {
    const r = await vmenv([...id.split(' '), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('DESCRIPTION');
    expect(r.stdout).toContain('EXAMPLES');
    expect(r.stdout).toContain(`$ vmenv ${id}`);
  });

  it.each(machineCommands)('vmenv %s outside a project says vmenv.yaml is missing and how to make one', async (id) => {
    const empty = mkdtempSync(join(tmpdir(), 'vmenv-noproject-'));
    try {
      const r = await vmenv([id, '--cwd', empty, ...(id === 'destroy' ? ['-f'] : [])]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('vmenv.yaml');
      expect(r.stderr).toMatch(/^Hint: .*vmenv init/m);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('an error of a command run with --json is printed as JSON', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'vmenv-noproject-'));
    try {
      const r = await vmenv(['status', '--json', '--cwd', empty]);
      expect(r.code).toBe(1);
      const doc = JSON.parse(r.stdout) as { error: { message: string; hint: string; code: string } };
      expect(doc.error.message).toContain('vmenv.yaml');
      expect(doc.error.hint).toContain('vmenv init');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('an unknown flag exits 2 with the usage', async () => {
    const r = await vmenv(['up', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Error: Nonexistent flag: --no-such-flag');
    expect(r.stderr).toContain('Usage: vmenv up [MACHINE...]');
  });

  it('a missing required argument and a bad option value exit 2', async () => {
    expect((await vmenv(['box', 'add'])).code).toBe(2);
    expect((await vmenv(['suspend', '--mode', 'sleep'])).code).toBe(2);
  });

  it('an unknown command exits 2', async () => {
    const r = await vmenv(['no-such-command']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("'vmenv no-such-command' is not a vmenv command");
  });

  it('a mistyped command gets a did-you-mean hint', async () => {
    const r = await vmenv(['stauts']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("did you mean 'vmenv status'?");
    expect((await vmenv(['box', 'lst'])).stderr).toContain("did you mean 'vmenv box list'?");
  });
});
