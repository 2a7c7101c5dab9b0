/** `vmenv init`: templates render to files that load without problems; refusing to overwrite; prompts. */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_ANSWERS,
  type InitAnswers,
  initProject,
  renderProjectFile,
  renderTemplate,
  TEMPLATES,
  type TemplateName,
  yamlScalar,
} from '../../../src/config/init.js';
import { checkConfigText, loadConfig } from '../../../src/config/load.js';
import { ExitCode, UserError } from '../../../src/errors.js';
import { FILE } from './helpers.js';

const templates = Object.keys(TEMPLATES) as TemplateName[];

function answers(over: Partial<InitAnswers> = {}): InitAnswers {
  return { ...DEFAULT_ANSWERS, ...over };
}

describe('templates render to files that load without problems', () => {
  const cases: Array<{ template: TemplateName; minimal: boolean; answers: InitAnswers }> = [];
  for (const template of templates) {
    for (const minimal of [false, true]) {
      for (const a of [
        answers(),
        answers({ box: 'debian-12', name: 'web', memory: '2G', cpus: '4' }),
        answers({ box: 'https://example.com/boxes/tiny.box', name: 'db', memory: '1.5 GiB' }),
        answers({ box: './my boxes/x #1.box', memory: '1024' }),
        answers({ box: 'true', name: 'a1' }),
        answers({ box: '1.0' }),
      ]) {
        cases.push({ template, minimal, answers: a });
      }
    }
  }

  it.each(cases)('$template minimal=$minimal $answers.box $answers.name', async ({ template, minimal, answers: a }) => {
    const text = await renderProjectFile({ dir: '/p', template, answers: a, minimal });
    const r = checkConfigText(text, FILE);
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([]);
    const config = r.config!;
    for (const m of config.machines) {
      expect(m.box).toEqual({ name: a.box, version: undefined });
      expect(m.cpus).toBe(Number(a.cpus));
    }
    const memory = { '512': 512, '1024': 1024, '2G': 2048, '1.5 GiB': 1536 }[a.memory];
    expect(config.machines[0]!.memory).toBe(memory);
    if (template === 'multi') {
      const first = a.name === 'default' ? 'web' : a.name;
      expect(config.machines.map((m) => m.name)).toEqual([first, first === 'db' ? 'web' : 'db']);
      expect(config.primary?.name).toBe(first);
    } else {
      expect(config.machines.map((m) => m.name)).toEqual([a.name]);
    }
    if (minimal) expect(text).not.toMatch(/#\s/);
    else expect(text).toMatch(/^# vmenv\.yaml: /);
  });

  it('the default template, as written for `vmenv init`', async () => {
    const text = await renderProjectFile({ dir: '/p', template: 'default', answers: answers(), minimal: true });
    expect(text).toBe('box: tiny\n\ncpus: 1\nmemory: 512\n');
  });

  it('the multi template, minimal', async () => {
    const text = await renderProjectFile({ dir: '/p', template: 'multi', answers: answers({ box: 'debian-12' }), minimal: true });
    expect(text).toBe('box: debian-12\n\ncpus: 1\nmemory: 512\n\nmachines:\n  web:\n    primary: true\n  db:\n');
  });

  it('bad answers are refused with the message of the check (exit 2)', async () => {
    const bad: Array<[Partial<InitAnswers>, string]> = [
      [{ name: 'Web' }, "Machine name: machine names are lower-case letters, digits and '-', starting with a letter or digit; got 'Web'"],
      [{ memory: '2 gigs' }, "Memory (MiB, or with a unit: 2G): must be a number of MiB or a size such as 512M or 2G, got '2 gigs'"],
      [{ memory: '2' }, "Memory (MiB, or with a unit: 2G): must be at least 64 MiB, got 2 (a bare number is MiB: did you mean '2G'?)"],
      [{ cpus: '0' }, 'CPUs: must be a whole number from 1 to 512, got 0'],
      [{ cpus: 'two' }, "CPUs: must be a whole number from 1 to 512, got 'two'"],
      [{ box: ' ' }, 'Box: must not be empty'],
    ];
    for (const [over, message] of bad) {
      const err = await renderProjectFile({ dir: '/p', template: 'default', answers: answers(over) }).catch((e: unknown) => e);
      expect(err, message).toBeInstanceOf(UserError);
      expect((err as UserError).message).toBe(message);
      expect((err as UserError).exitCode).toBe(ExitCode.usage);
    }
  });
});

describe('renderTemplate and yamlScalar', () => {
  it('keeps {{#if}} blocks whose variable is set, nested too', () => {
    const t = 'a\n{{#if x}}\nb {{v}}\n{{#if y}}\nc\n{{/if}}\n{{/if}}\nd\n';
    expect(renderTemplate(t, { x: true, y: false, v: 'z' })).toBe('a\nb z\nd\n');
    expect(renderTemplate(t, { x: true, y: true, v: 'z' })).toBe('a\nb z\nc\nd\n');
    expect(renderTemplate(t, { x: false, y: true, v: 'z' })).toBe('a\nd\n');
  });

  it('minimal drops comment lines, trailing comments and repeated blank lines', () => {
    const t = '# head\n\na: 1   # why\n\n\n# more\nb: "x # y"\n';
    expect(renderTemplate(t, {}, { minimal: true })).toBe('a: 1\n\nb: "x # y"\n');
  });

  it('refuses unbalanced blocks and unknown variables', () => {
    expect(() => renderTemplate('{{#if a}}\n', {})).toThrow('{{#if}} without {{/if}}');
    expect(() => renderTemplate('{{/if}}\n', {})).toThrow('{{/if}} without {{#if}}');
    expect(() => renderTemplate('a: {{nope}}\n', {})).toThrow('no value for {{nope}}');
  });

  it.each(['tiny', 'debian-12', 'org/box', 'true', 'no', 'null', '~', '1.0', '0x10', '1e3', 'a: b', 'a #b', '#x', "it's", 'say "hi"', ' lead', '-x', '@x', '*x', '&x', '!x', '%x', 'é', 'tab\there', 'line\nbreak', ''])(
    'yamlScalar(%j) reads back as the same string',
    (s) => {
      expect(parse(`k: ${yamlScalar(s)}`)).toEqual({ k: s });
    },
  );
});

describe('initProject', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'vmenv-init-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes vmenv.yaml that loadConfig accepts', async () => {
    const dir = join(root, 'fresh');
    await mkdir(dir);
    const r = await initProject({ dir, template: 'default', answers: answers() });
    expect(r.path).toBe(join(dir, 'vmenv.yaml'));
    expect(await readFile(r.path, 'utf8')).toBe(r.text);
    const { config, warnings } = await loadConfig(r.path);
    expect(warnings).toEqual([]);
    expect(config.machines.map((m) => [m.name, m.box.name])).toEqual([['default', 'tiny']]);
  });

  it('refuses to overwrite without force (exit 1, with a hint); force replaces it', async () => {
    const dir = join(root, 'existing');
    await mkdir(dir);
    await writeFile(join(dir, 'vmenv.yaml'), 'box: mine\n');
    const err = await initProject({ dir, template: 'default', answers: answers() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/vmenv\.yaml already exists\.$/);
    expect((err as UserError).hint).toContain('--force');
    expect((err as UserError).exitCode).toBe(ExitCode.user);
    expect(await readFile(join(dir, 'vmenv.yaml'), 'utf8')).toBe('box: mine\n');

    await initProject({ dir, template: 'multi', answers: answers(), force: true });
    const { config } = await loadConfig(join(dir, 'vmenv.yaml'));
    expect(config.machines.map((m) => m.name)).toEqual(['web', 'db']);
  });

  it('names a vmenv.yaml in a parent folder that the new one now shadows', async () => {
    const inner = join(root, 'existing', 'sub');
    await mkdir(inner);
    const r = await initProject({ dir: inner, template: 'default', answers: answers(), minimal: true });
    expect(r.parent).toBe(join(root, 'existing', 'vmenv.yaml'));
  });

  it('a folder that does not exist', async () => {
    await expect(initProject({ dir: join(root, 'nope'), template: 'default', answers: answers() })).rejects.toThrow(/No such folder/);
  });
});
