import { basename, relative } from 'node:path';
import { ExitCode, UserError } from '../errors.js';
import type { ConfigProblem } from './types.js';

/**
 * One problem as a line: `machines.web.memory: must be …, got '2 gigs' (vmenv.yaml:7)`,
 * or `vmenv.yaml:3:5: <message>` for a problem with no key path (YAML syntax).
 */
export function formatProblem(problem: ConfigProblem, file: string): string {
  const name = basename(file);
  if (problem.path === '') {
    if (problem.line === undefined) return `${name}: ${problem.message}`;
    return `${name}:${problem.line}${problem.column === undefined ? '' : `:${problem.column}`}: ${problem.message}`;
  }
  const where = problem.line === undefined ? name : `${name}:${problem.line}`;
  return `${problem.path}: ${problem.message} (${where})`;
}

/** A path for messages: relative to the current folder when that is shorter. */
export function displayPath(path: string, cwd: string = process.cwd()): string {
  const rel = relative(cwd, path);
  return rel !== '' && rel.length < path.length ? rel : path;
}

/** vmenv.yaml has problems: every one of them, with its key path and line. Exit code 2. */
export class ConfigError extends UserError {
  readonly file: string;
  readonly problems: ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    const lines = problems.map((p) => `  ${formatProblem(p, file)}`);
    super(`${displayPath(file)} has ${count}:\n${lines.join('\n')}`, {
      exitCode: ExitCode.usage,
      hint: "Fix them and run the command again. 'vmenv config schema' gives editors completion and checks as you type.",
    });
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

/** No vmenv.yaml in the folder or any parent. */
export class ProjectNotFoundError extends UserError {
  readonly cwd: string;

  constructor(cwd: string, hint?: string) {
    super(`No vmenv.yaml in ${cwd} or any parent folder.`, {
      exitCode: ExitCode.user,
      hint: hint ?? "Run 'vmenv init' to create one here, or point --cwd (or VMENV_CWD) at a project folder.",
    });
    this.name = 'ProjectNotFoundError';
    this.cwd = cwd;
  }
}
