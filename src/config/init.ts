/**
 * `vmenv init`: a vmenv.yaml from a template in templates/.
 *
 * Templates are YAML with three kinds of markup, applied in this order:
 * - `{{#if var}}` … `{{/if}}` on lines of their own: the lines between are kept when
 *   `var` is truthy;
 * - minimal mode drops every comment line, trailing comments and runs of blank lines;
 * - `{{var}}` is replaced by the value, written as a YAML scalar (quoted when needed).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument } from 'yaml';
import { ExitCode, UserError } from '../errors.js';
import { ConfigError, displayPath } from './errors.js';
import { machineFields, machineNameProblem } from './fields.js';
import { checkConfigText, findProjectFile, PROJECT_FILE } from './load.js';
import type { ConfigProblem } from './types.js';
import { Checker, INVALID } from './validate.js';

/** templates/ of the installed package (the same from src/config and dist/config). */
export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

export const TEMPLATES = {
  default: 'vmenv.yaml.tmpl',
  multi: 'multi.vmenv.yaml.tmpl',
} as const;
export type TemplateName = keyof typeof TEMPLATES;

export const DEFAULT_BOX = 'tiny';

export interface InitAnswers {
  box: string;
  /** `default` for a single unnamed machine. */
  name: string;
  /** As the user wrote it: MiB or a size with a unit. */
  memory: string;
  cpus: string;
}

export const DEFAULT_ANSWERS: InitAnswers = { box: DEFAULT_BOX, name: 'default', memory: '512', cpus: '1' };

const PLAIN_RE = /^[A-Za-z0-9][A-Za-z0-9._/@+~-]*$/;
const NOT_PLAIN_RE = /^(true|false|yes|no|on|off|null|~|[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+|\.inf|\.nan)$/i;

/** A string as a YAML scalar: plain when that reads back as the same string, else double-quoted. */
export function yamlScalar(value: string): string {
  return PLAIN_RE.test(value) && !NOT_PLAIN_RE.test(value) ? value : JSON.stringify(value);
}

/** A number as it is (512), anything else as a scalar (2G, "1.5 GiB"). */
function numberish(value: string): string {
  return /^\d+(\.\d+)?$/.test(value) ? value : yamlScalar(value);
}

/** A template line without its trailing ` # comment` (a # inside quotes is not one). */
function withoutTrailingComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && i > 0 && /\s/.test(line[i - 1]!)) {
      return line.slice(0, i).trimEnd();
    }
  }
  return line.trimEnd();
}

/** Renders template markup (see the top of this file). `raw` values are inserted as they are. */
export function renderTemplate(
  template: string,
  vars: Record<string, string | boolean>,
  options: { minimal?: boolean; raw?: readonly string[] } = {},
): string {
  const out: string[] = [];
  const stack: boolean[] = [];
  for (const line of template.split('\n')) {
    const open = /^\s*\{\{#if (\w+)\}\}\s*$/.exec(line);
    if (open !== null) {
      stack.push(Boolean(vars[open[1]!]));
      continue;
    }
    if (/^\s*\{\{\/if\}\}\s*$/.test(line)) {
      if (stack.pop() === undefined) throw new Error('template: {{/if}} without {{#if}}');
      continue;
    }
    if (stack.every(Boolean)) out.push(line);
  }
  if (stack.length > 0) throw new Error('template: {{#if}} without {{/if}}');

  let lines = out;
  if (options.minimal === true) {
    lines = lines
      .filter((l) => !/^\s*#/.test(l))
      .map(withoutTrailingComment)
      .filter((l, i, all) => l !== '' || (i > 0 && all[i - 1] !== ''));
    while (lines[0] === '') lines.shift();
  }
  const text = lines.join('\n').replace(/\n+$/, '') + '\n';
  return text.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => {
    const v = vars[name];
    if (v === undefined || typeof v === 'boolean') throw new Error(`template: no value for ${whole}`);
    return options.raw?.includes(name) === true ? v : yamlScalar(v);
  });
}

/** The message when a setting's text is wrong, checked exactly as in vmenv.yaml (path: the key). */
export function settingProblem(key: keyof typeof machineFields, text: string): string | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  if (doc.errors.length > 0 || doc.contents === null) return `not a value: '${text}'`;
  const checker = new Checker(doc, lineCounter);
  const value = checker.check(machineFields[key], doc.contents, key);
  if (value === INVALID || checker.problems.length > 0) return checker.problems[0]?.message ?? 'is not valid';
  return undefined;
}

/** What is wrong with an answer, or undefined. */
export function answerProblem(field: keyof InitAnswers, value: string): string | undefined {
  switch (field) {
    case 'box':
      return value.trim() === '' ? 'must not be empty' : undefined;
    case 'name':
      return machineNameProblem(value);
    case 'memory':
      return settingProblem('memory', value);
    case 'cpus':
      return settingProblem('cpus', value);
  }
}

export interface InitOptions {
  /** Folder to write vmenv.yaml in. */
  dir: string;
  template: TemplateName;
  answers: InitAnswers;
  minimal?: boolean;
  force?: boolean;
}

export interface InitResult {
  path: string;
  text: string;
  /** A vmenv.yaml in a parent folder that this one now takes over from, if any. */
  parent: string | undefined;
}

const QUESTIONS: Array<[keyof InitAnswers, string]> = [
  ['box', 'Box'],
  ['name', 'Machine name'],
  ['memory', 'Memory (MiB, or with a unit: 2G)'],
  ['cpus', 'CPUs'],
];

export function isTemplateName(name: string): name is TemplateName {
  return Object.hasOwn(TEMPLATES, name);
}

/** The text of vmenv.yaml for these answers, checked with checkConfigText. */
export async function renderProjectFile(options: Omit<InitOptions, 'force'>): Promise<string> {
  const { answers } = options;
  for (const [field, question] of QUESTIONS) {
    const wrong = answerProblem(field, answers[field]);
    if (wrong !== undefined) {
      throw new UserError(`${question}: ${wrong}`, { exitCode: ExitCode.usage });
    }
  }
  const template = await readFile(join(TEMPLATES_DIR, TEMPLATES[options.template]), 'utf8');
  const multi = options.template === 'multi';
  const first = multi && answers.name === 'default' ? 'web' : answers.name;
  const second = first === 'db' ? 'web' : 'db';
  const text = renderTemplate(
    template,
    {
      box: answers.box,
      name: first,
      second,
      named: first !== 'default',
      memory: numberish(answers.memory.trim()),
      cpus: numberish(answers.cpus.trim()),
    },
    { minimal: options.minimal === true, raw: ['memory', 'cpus'] },
  );
  const path = join(resolve(options.dir), PROJECT_FILE);
  const checked = checkConfigText(text, path);
  if (checked.config === undefined) throw new ConfigError(path, checked.problems satisfies ConfigProblem[]);
  return text;
}

/** Writes vmenv.yaml in options.dir; refuses to replace one unless options.force. */
export async function initProject(options: InitOptions): Promise<InitResult> {
  const dir = resolve(options.dir);
  const path = join(dir, PROJECT_FILE);
  if (!existsSync(dir)) throw new UserError(`No such folder: ${dir}`, { exitCode: ExitCode.user });
  const refuse = (): UserError =>
    new UserError(`${displayPath(path)} already exists.`, {
      exitCode: ExitCode.user,
      hint: "Edit it, or run 'vmenv init --force' to replace it (what it holds is lost).",
    });
  if (options.force !== true && existsSync(path)) throw refuse();

  let parent: string | undefined;
  try {
    parent = findProjectFile(dirname(dir));
  } catch {
    parent = undefined;
  }

  const text = await renderProjectFile(options);
  if (options.force === true) {
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, text, { mode: 0o644 });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  } else {
    try {
      await writeFile(path, text, { flag: 'wx', mode: 0o644 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw refuse();
      throw err;
    }
  }
  return { path, text, parent };
}
