import { loadProject, projectCwd, selectMachines } from '../config/load.js';
import type { MachineConfig, ProjectConfig } from '../config/types.js';

/** The project around `--cwd` (or the current folder) and the machines named (all when none). */
export async function projectMachines(cwd: string | undefined, names: readonly string[]): Promise<{ project: ProjectConfig; machines: MachineConfig[] }> {
  const { config, warnings } = await loadProject(projectCwd(cwd));
  for (const w of warnings) process.stderr.write(`Warning: ${w.path}: ${w.message}${w.line ? ` (vmenv.yaml:${w.line})` : ''}\n`);
  return { project: config, machines: selectMachines(config, names) };
}

/** Machine names given as arguments (commands with `strict = false` take several). */
export function machineNames(argv: readonly unknown[]): string[] {
  return argv.filter((a): a is string => typeof a === 'string');
}
