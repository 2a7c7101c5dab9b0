/** Finding vmenv.yaml by walking up, loading it from disk, and picking machines by name. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ProjectNotFoundError } from '../../../src/config/errors.js';
import { findProjectFile, loadConfig, loadProject, parseConfig, projectCwd, selectMachine, selectMachines } from '../../../src/config/load.js';
import { ExitCode, UserError } from '../../../src/errors.js';
import { FILE, yaml } from './helpers.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'vmenv-config-'));
  await mkdir(join(root, 'project', 'src', 'deep'), { recursive: true });
  await mkdir(join(root, 'project', 'nested', 'inner'), { recursive: true });
  await mkdir(join(root, 'orphan', 'sub'), { recursive: true });
  await mkdir(join(root, 'yml'), { recursive: true });
  await writeFile(join(root, 'project', 'vmenv.yaml'), yaml('box: tiny'));
  await writeFile(join(root, 'project', 'nested', 'vmenv.yaml'), yaml('box: other', 'memroy: 1G'));
  await mkdir(join(root, 'project', 'src', 'vmenv.yaml')); // a folder by that name is not the file
  await writeFile(join(root, 'yml', 'vmenv.yml'), yaml('box: tiny'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('findProjectFile', () => {
  it('finds vmenv.yaml in the folder itself', () => {
    expect(findProjectFile(join(root, 'project'))).toBe(join(root, 'project', 'vmenv.yaml'));
  });

  it('walks up to the nearest parent with vmenv.yaml (skipping a folder named vmenv.yaml)', () => {
    expect(findProjectFile(join(root, 'project', 'src', 'deep'))).toBe(join(root, 'project', 'vmenv.yaml'));
    expect(findProjectFile(join(root, 'project', 'src'))).toBe(join(root, 'project', 'vmenv.yaml'));
  });

  it('stops at the nearest one (a nested project wins)', () => {
    expect(findProjectFile(join(root, 'project', 'nested', 'inner'))).toBe(join(root, 'project', 'nested', 'vmenv.yaml'));
  });

  it('says clearly when there is none, and how to make one', () => {
    const start = join(root, 'orphan', 'sub');
    let err: unknown;
    try {
      findProjectFile(start);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProjectNotFoundError);
    expect((err as UserError).message).toBe(`No vmenv.yaml in ${start} or any parent folder.`);
    expect((err as UserError).hint).toContain("Run 'vmenv init'");
    expect((err as UserError).exitCode).toBe(ExitCode.user);
  });

  it('points out a vmenv.yml', () => {
    expect(() => findProjectFile(join(root, 'yml'))).toThrow(ProjectNotFoundError);
    try {
      findProjectFile(join(root, 'yml'));
    } catch (e) {
      expect((e as UserError).hint).toBe(`Found ${join(root, 'yml', 'vmenv.yml')}: vmenv reads vmenv.yaml; rename it.`);
    }
  });

  it('projectCwd: --cwd, else VMENV_CWD, else the current folder', () => {
    expect(projectCwd('/a/b', { VMENV_CWD: '/c' })).toBe('/a/b');
    expect(projectCwd(undefined, { VMENV_CWD: '/c' })).toBe('/c');
    expect(projectCwd(undefined, { VMENV_CWD: '' })).toBe(process.cwd());
    expect(projectCwd(undefined, {})).toBe(process.cwd());
  });
});

describe('loadConfig / loadProject', () => {
  it('loads the file found by walking up; relative paths resolve against its folder', async () => {
    const { config, warnings } = await loadProject(join(root, 'project', 'src', 'deep'));
    expect(warnings).toEqual([]);
    expect(config.path).toBe(join(root, 'project', 'vmenv.yaml'));
    expect(config.dir).toBe(join(root, 'project'));
    expect(config.machines[0]!.synced_folders[0]!.host).toBe(join(root, 'project'));
  });

  it('throws a ConfigError naming the file', async () => {
    const path = join(root, 'project', 'nested', 'vmenv.yaml');
    await expect(loadConfig(path)).rejects.toThrow(ConfigError);
    await expect(loadConfig(path)).rejects.toMatchObject({
      file: path,
      exitCode: ExitCode.usage,
      problems: [{ path: 'memroy', message: "unknown key 'memroy'; did you mean 'memory'?", line: 2 }],
    });
  });

  it('a file that cannot be read is a UserError', async () => {
    await expect(loadConfig(join(root, 'nope.yaml'))).rejects.toThrow(/Cannot read .*nope\.yaml: no such file/);
  });
});

describe('selectMachine(s)', () => {
  const multi = parseConfig(yaml('box: tiny', 'machines:', '  web: { primary: true }', '  db: {}', '  cache: {}'), FILE).config;
  const none = parseConfig(yaml('box: tiny', 'machines: { a: {}, b: {} }'), FILE).config;
  const single = parseConfig(yaml('box: tiny'), FILE).config;

  it('every machine in file order when none is named; the named ones in the order given, once each', () => {
    expect(selectMachines(multi).map((m) => m.name)).toEqual(['web', 'db', 'cache']);
    expect(selectMachines(multi, ['cache', 'web', 'cache']).map((m) => m.name)).toEqual(['cache', 'web']);
  });

  it('an unknown name: exit 2 with did-you-mean and the list', () => {
    expect(() => selectMachines(multi, ['dbb'])).toThrow("No machine named 'dbb' in /p/vmenv.yaml.");
    try {
      selectMachine(multi, 'dbb');
    } catch (e) {
      expect((e as UserError).hint).toBe("Did you mean 'db'? Its machines: web, db, cache.");
      expect((e as UserError).exitCode).toBe(ExitCode.usage);
    }
  });

  it('the primary machine, or the only one; several without a primary need a name', () => {
    expect(selectMachine(multi).name).toBe('web');
    expect(selectMachine(single).name).toBe('default');
    expect(selectMachine(none, 'b').name).toBe('b');
    expect(() => selectMachine(none)).toThrow('This project has several machines and none is primary: name one.');
  });
});
