/**
 * `vmenv init` and `vmenv config schema`, the built CLI as a user runs it
 * (`node bin/run.js ...` in a temporary project folder). Needs `npm run build` (done here
 * when dist/ or the manifest is missing). No daemon, no network.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { runVmenv, type Run } from '../support/cli.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');


function vmenv(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  // stdin is not a terminal here: init never asks.
  return runVmenv(args, { cwd, env: { VMENV_CWD: '', ...env } });
}

let tmp: string;

beforeAll(async () => {
  if (
    !existsSync(join(root, 'dist', 'cli', 'commands', 'init.js')) ||
    !existsSync(join(root, 'dist', 'cli', 'commands', 'config', 'schema.js')) ||
    !existsSync(join(root, 'oclif.manifest.json'))
  ) {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  }
  tmp = await mkdtemp(join(tmpdir(), 'vmenv-e2e-init-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function project(name: string): Promise<string> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

describe('vmenv init (built CLI)', () => {
  it('writes a commented vmenv.yaml with the tiny box that loadConfig accepts', async () => {
    const dir = await project('plain');
    const r = await vmenv(['init'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Wrote vmenv.yaml (box tiny).');
    const text = await readFile(join(dir, 'vmenv.yaml'), 'utf8');
    expect(text).toMatch(/^# vmenv\.yaml: /);
    expect(text).toMatch(/^box: tiny$/m);
    const { config, warnings } = await loadConfig(join(dir, 'vmenv.yaml'));
    expect(warnings).toEqual([]);
    expect(config.machines.map((m) => [m.name, m.box.name, m.memory, m.cpus])).toEqual([['default', 'tiny', 512, 1]]);
  });

  it('refuses to overwrite: exit 1 with a hint, the file untouched; --force replaces it', async () => {
    const dir = await project('existing');
    await writeFile(join(dir, 'vmenv.yaml'), 'box: mine\n');
    const r = await vmenv(['init', 'debian-12'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Error: vmenv.yaml already exists.');
    expect(r.stderr).toContain("Hint: Edit it, or run 'vmenv init --force' to replace it");
    expect(await readFile(join(dir, 'vmenv.yaml'), 'utf8')).toBe('box: mine\n');

    const forced = await vmenv(['init', 'debian-12', '--force'], dir);
    expect(forced.code).toBe(0);
    const { config } = await loadConfig(join(dir, 'vmenv.yaml'));
    expect(config.machines[0]!.box.name).toBe('debian-12');
  });

  it('--minimal: only the settings, no comments', async () => {
    const dir = await project('minimal');
    const r = await vmenv(['init', '--minimal', '--memory', '1G', '--cpus', '2'], dir);
    expect(r.code).toBe(0);
    const text = await readFile(join(dir, 'vmenv.yaml'), 'utf8');
    expect(text).toBe('box: tiny\n\ncpus: 2\nmemory: 1G\n');
    const { config } = await loadConfig(join(dir, 'vmenv.yaml'));
    expect(config.machines[0]!.memory).toBe(1024);
  });

  it('--template multi --name, and --cwd', async () => {
    const dir = await project('multi');
    const r = await vmenv(['init', 'debian-12', '--template', 'multi', '--name', 'app', '--cwd', dir], tmp);
    expect(r.code).toBe(0);
    const { config } = await loadConfig(join(dir, 'vmenv.yaml'));
    expect(config.machines.map((m) => m.name)).toEqual(['app', 'db']);
    expect(config.primary?.name).toBe('app');
  });

  it('a bad value: exit 2 and the reason; nothing written', async () => {
    const dir = await project('bad');
    const r = await vmenv(['init', '--name', 'My_VM'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Error: Machine name: machine names are lower-case letters, digits and '-'");
    expect(existsSync(join(dir, 'vmenv.yaml'))).toBe(false);
  });

  it('--interactive without a terminal: exit 2 with the flags to use instead; nothing written', async () => {
    const dir = await project('forced-interactive');
    const r = await vmenv(['init', '--interactive'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Error: --interactive needs a terminal to ask in, and stdin is not one.');
    expect(r.stderr).toContain('vmenv init <box> --name <machine> --memory <size> --cpus <n>');
    expect(existsSync(join(dir, 'vmenv.yaml'))).toBe(false);
  });
});

describe('vmenv config schema (built CLI)', () => {
  it('prints a JSON Schema whose properties include machines', async () => {
    const r = await vmenv(['config', 'schema'], tmp);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const schema = JSON.parse(r.stdout) as { $schema: string; properties: Record<string, { description?: string }> };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['machines', 'box', 'memory', 'provision', 'synced_folders']));
    expect(schema.properties['memory']?.description).toContain('MiB');
  });

  it('--output writes it to a file', async () => {
    const out = join(tmp, 'vmenv.schema.json');
    const r = await vmenv(['config', 'schema', '--output', out], tmp);
    expect(r.code).toBe(0);
    const schema = JSON.parse(await readFile(out, 'utf8')) as { properties: Record<string, unknown> };
    expect(schema.properties).toHaveProperty('machines');
  });

  it('shows up in help under the config topic', async () => {
    const r = await vmenv(['config', '--help'], tmp);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/config schema\s/);
  });
});
