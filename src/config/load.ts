/**
 * Loading vmenv.yaml: parse → check → merge and fill defaults → check across machines.
 * Every problem is collected; the caller gets a ProjectConfig or a ConfigError listing
 * them all. Finding the file and picking machines: project-file.ts (no YAML parser).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from './errors.js';
import { rootField } from './fields.js';
import { normalizeMachine } from './normalize.js';
import { findProjectFile } from './project-file.js';
import type { ConfigProblem, ForwardedPort, LoadedConfig, MachineConfig, ProjectConfig } from './types.js';
import { Checker, INVALID } from './validate.js';
import { UserError, ExitCode } from '../errors.js';

export { findProjectFile, PROJECT_FILE, projectCwd, selectMachine, selectMachines } from './project-file.js';

export interface CheckResult {
  /** Set when there are no problems. */
  config: ProjectConfig | undefined;
  problems: ConfigProblem[];
  warnings: ConfigProblem[];
}

function byLine(a: ConfigProblem, b: ConfigProblem): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity);
}

/** The first line of a message from the yaml parser, without its " at line N, column M:". */
function yamlMessage(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '').replace(/; please use YAML\.parseAllDocuments\(\)/, '');
}

/**
 * Checks the text of a vmenv.yaml at `path` (used for messages and to resolve relative
 * paths; the file is not read). Never throws for problems in the text.
 */
export function checkConfigText(text: string, path: string): CheckResult {
  const file = resolve(path);
  const dir = dirname(file);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, uniqueKeys: true, prettyErrors: false });

  if (doc.errors.length > 0) {
    const problems = doc.errors.map((err): ConfigProblem => {
      const { line, col } = lineCounter.linePos(err.pos[0]);
      const message = err.code === 'MULTIPLE_DOCS' ? 'vmenv.yaml holds one YAML document; a second one starts here' : yamlMessage(err.message);
      return { path: '', message, line, column: col };
    });
    return { config: undefined, problems, warnings: [] };
  }

  const checker = new Checker(doc, lineCounter);
  for (const w of doc.warnings) {
    const { line, col } = lineCounter.linePos(w.pos[0]);
    checker.warnings.push({ path: '', message: yamlMessage(w.message), line, column: col });
  }

  const root = checker.check(rootField, doc.contents, '');
  if (root === INVALID || (root !== undefined && (typeof root !== 'object' || Array.isArray(root)))) {
    return { config: undefined, problems: checker.problems, warnings: checker.warnings };
  }
  const top = { ...((root as Record<string, unknown> | undefined) ?? {}) };
  const machinesValue = top['machines'] as Record<string, unknown> | undefined;
  delete top['machines'];

  const inputs: Array<{ name: string; prefix: string; own: Record<string, unknown>; primary: boolean }> = [];
  if (machinesValue === undefined && checker.invalidPaths.has('machines')) {
    // `machines:` is there but wrong: reported already; judge no machine.
  } else if (machinesValue === undefined) {
    inputs.push({ name: 'default', prefix: '', own: {}, primary: true });
  } else if (Object.keys(machinesValue).length === 0) {
    if (!checker.problems.some((p) => p.path.startsWith('machines.'))) {
      checker.problemAt('machines', 'must name at least one machine (or leave machines: out for a single machine)');
    }
  } else {
    const names = Object.keys(machinesValue);
    for (const name of names) {
      const own = { ...((machinesValue[name] as Record<string, unknown> | undefined) ?? {}) };
      const primary = own['primary'] === true;
      delete own['primary'];
      inputs.push({ name, prefix: `machines.${name}.`, own, primary: primary || names.length === 1 });
    }
  }

  const marked = inputs.filter((m) => m.primary && inputs.length > 1);
  for (const extra of marked.slice(1)) {
    checker.problemAt(`${extra.prefix}primary`, `only one machine can be primary, and '${marked[0]!.name}' is`);
  }

  if (top['hostname'] !== undefined && inputs.filter((m) => m.own['hostname'] === undefined).length > 1) {
    checker.warn('hostname', 'is set at the top level, so several machines get the same host name', checker.positions.get('hostname'));
  }

  const machines = inputs.map((input) => normalizeMachine(top, input, dir, checker));
  checkPorts(machines, checker);

  const problems = [...checker.problems].sort(byLine);
  const warnings = [...checker.warnings].sort(byLine);
  if (problems.length > 0) return { config: undefined, problems, warnings };
  const config: ProjectConfig = { path: file, dir, machines, primary: machines.find((m) => m.primary) };
  return { config, problems, warnings };
}

function overlaps(a: ForwardedPort, b: ForwardedPort): boolean {
  if (a.host !== b.host || a.protocol !== b.protocol) return false;
  const any = (ip: string): boolean => ip === '0.0.0.0' || ip === '::';
  return a.host_ip === b.host_ip || any(a.host_ip) || any(b.host_ip);
}

/** Two forwards of the same host port (within a machine or across machines) clash unless the later one may move. */
function checkPorts(machines: MachineConfig[], checker: Checker): void {
  const taken: Array<{ port: ForwardedPort; machine: string }> = [];
  for (const machine of machines) {
    for (const port of machine.forwarded_ports) {
      const origin = checker.origins.get(port) ?? 'forwarded_ports';
      if (port.host < 1024) {
        checker.warn(`${origin}.host`, `port ${port.host} on the host needs root (or CAP_NET_BIND_SERVICE)`, checker.positions.get(`${origin}.host`));
      }
      const clash = taken.find((t) => overlaps(t.port, port));
      if (clash !== undefined && !port.auto_correct) {
        const owner = clash.machine === machine.name ? 'this machine' : `machine '${clash.machine}'`;
        checker.problemAt(
          `${origin}.host`,
          `host port ${port.host}/${port.protocol} is already forwarded for ${owner} (set auto_correct: true to pick a free one)`,
          origin,
        );
      }
      taken.push({ port, machine: machine.name });
    }
  }
}

/** Parses and checks vmenv.yaml text. Throws ConfigError with every problem. */
export function parseConfig(text: string, path: string): LoadedConfig {
  const result = checkConfigText(text, path);
  if (result.config === undefined) throw new ConfigError(resolve(path), result.problems);
  return { config: result.config, warnings: result.warnings };
}

/** Reads, parses and checks the vmenv.yaml at `path`. Throws ConfigError with every problem. */
export async function loadConfig(path: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`Cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, {
      exitCode: ExitCode.user,
      cause: err,
    });
  }
  return parseConfig(text, path);
}

/** findProjectFile + loadConfig. */
export async function loadProject(cwd: string): Promise<LoadedConfig> {
  return loadConfig(findProjectFile(cwd));
}
