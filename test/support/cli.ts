import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root, and its CLI entry as users run it. */
export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const vmenvBin = join(projectRoot, 'bin', 'run.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a child process and collects what it printed and its exit code; `input` is its stdin. */
export function runVmenv(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [vmenvBin, ...args],
      {
        cwd: options.cwd ?? projectRoot,
        env: { ...process.env, NO_COLOR: '1', ...options.env },
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 32 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

export interface StartOptions {
  cwd?: string;
  /** The whole environment of the child (default: this process's, with NO_COLOR). */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Starts a command and returns at once: the child (to signal it) and its outcome; killed after `timeoutMs`. */
export function startCommand(command: string, args: readonly string[], options: StartOptions = {}): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(command, args, { cwd: options.cwd ?? projectRoot, env: options.env ?? { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
  const done = new Promise<Run>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
  return { child, done };
}

/** Starts the built CLI and returns at once: the child (to signal it) and its outcome. */
export function startVmenv(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): { child: ChildProcess; done: Promise<Run> } {
  return startCommand(process.execPath, [vmenvBin, ...args], { ...options, env: { ...process.env, NO_COLOR: '1', ...options.env } });
}
