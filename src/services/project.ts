import { loadProjectCached } from '../config/cache.js';
import { projectCwd, selectMachines } from '../config/project-file.js';
import type { MachineConfig, ProjectConfig } from '../config/types.js';

/** The project around `--cwd` (or the current folder) and the machines named (all when none). */
export async function projectMachines(cwd: string | undefined, names: readonly string[]): Promise<{ project: ProjectConfig; machines: MachineConfig[] }> {
  const { config, warnings } = await loadProjectCached(projectCwd(cwd));
  for (const w of warnings) process.stderr.write(`Warning: ${w.path}: ${w.message}${w.line ? ` (vmenv.yaml:${w.line})` : ''}\n`);
  return { project: config, machines: selectMachines(config, names) };
}

/** Machine names given as arguments (commands with `strict = false` take several). */
export function machineNames(argv: readonly unknown[]): string[] {
  return argv.filter((a): a is string => typeof a === 'string');
}

/**
 * Runs `fn` holding the project's lock, so two commands never change the same project
 * at once: the second waits, saying who holds it, then fails clearly after a while.
 */
export async function withProjectLock<T>(project: ProjectConfig, purpose: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  const { ProjectState } = await import('../project/state.js');
  const lock = await new ProjectState(project.dir).lock(purpose, {
    signal,
    onWait: (holder) => process.stderr.write(`Waiting for ${holder}, which is working on this project…\n`),
  });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
