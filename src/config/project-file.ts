/**
 * Finding a project's vmenv.yaml and picking its machines: what every command does
 * before anything else, kept apart from the YAML parser (load.ts) so that a command
 * whose checked config is cached (cache.ts) never loads it.
 */
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UserError, ExitCode } from '../errors.js';
import { didYouMean } from './did-you-mean.js';
import { ProjectNotFoundError } from './errors.js';
import type { MachineConfig, ProjectConfig } from './types.js';

export const PROJECT_FILE = 'vmenv.yaml';
/** The project's state directory, beside vmenv.yaml. */
export const STATE_DIR = '.vmenv';

/** The folder commands work in: --cwd, else $VMENV_CWD, else the current folder. */
export function projectCwd(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? (env['VMENV_CWD'] !== undefined && env['VMENV_CWD'] !== '' ? env['VMENV_CWD'] : undefined);
  return resolve(chosen ?? process.cwd());
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The vmenv.yaml in `cwd` or the nearest parent folder. Throws ProjectNotFoundError. */
export function findProjectFile(cwd: string): string {
  const start = resolve(cwd);
  let hint: string | undefined;
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, PROJECT_FILE);
    if (isFile(candidate)) return candidate;
    if (hint === undefined && isFile(join(dir, 'vmenv.yml'))) {
      hint = `Found ${join(dir, 'vmenv.yml')}: vmenv reads vmenv.yaml; rename it.`;
    }
    if (dirname(dir) === dir) break;
  }
  throw new ProjectNotFoundError(start, hint);
}

function noSuchMachine(config: ProjectConfig, name: string): UserError {
  const names = config.machines.map((m) => m.name);
  const guess = didYouMean(name, names);
  return new UserError(`No machine named '${name}' in ${config.path}.`, {
    exitCode: ExitCode.usage,
    hint: `${guess === undefined ? '' : `Did you mean '${guess}'? `}Its machines: ${names.join(', ')}.`,
  });
}

/** The machines named (in the order given, each once), or every machine when none is named. */
export function selectMachines(config: ProjectConfig, names: readonly string[] = []): MachineConfig[] {
  if (names.length === 0) return [...config.machines];
  const out: MachineConfig[] = [];
  for (const name of names) {
    const machine = config.machines.find((m) => m.name === name);
    if (machine === undefined) throw noSuchMachine(config, name);
    if (!out.includes(machine)) out.push(machine);
  }
  return out;
}

/** The machine named, else the primary one (the only one, or the one marked primary). */
export function selectMachine(config: ProjectConfig, name?: string): MachineConfig {
  if (name !== undefined) return selectMachines(config, [name])[0]!;
  if (config.primary !== undefined) return config.primary;
  throw new UserError('This project has several machines and none is primary: name one.', {
    exitCode: ExitCode.usage,
    hint: `Its machines: ${config.machines.map((m) => m.name).join(', ')}. Or mark one with 'primary: true' in vmenv.yaml.`,
  });
}
