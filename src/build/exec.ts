/**
 * Running the host tools a build needs (mmdebstrap, mkfs.ext4, sfdisk, extlinux,
 * qemu-img, …): each in its own process group so that cancelling stops the tool and
 * everything it started; output is read line by line (for progress) and its tail kept
 * for the error message when the tool fails.
 */
import { spawn } from 'node:child_process';
import { UserError } from '../errors.js';

export interface RunOptions {
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to the tool's stdin (then closed). */
  input?: string | Buffer;
  /** Called with each line the tool prints (stdout and stderr). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** What the step was doing, for error messages ("building the root filesystem"). */
  what?: string;
  /** How long a cancelled tool gets to clean up after SIGTERM before SIGKILL. */
  killGraceMs?: number;
  /** Lines of output kept for the error message. */
  tailLines?: number;
  /** How the command is named in error messages (default: the full command line). */
  display?: string;
  /** Lines that explain a failure (e.g. apt's `E:` lines): kept apart and shown first. */
  isErrorLine?: (line: string) => boolean;
  /** Lines left out of the error message's last output. */
  isNoise?: (line: string) => boolean;
  /** A hint for the user from the output of a failed run. */
  hintFor?: (output: string[]) => string | undefined;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** A host tool failed. The message ends with the last lines it printed. */
export class ToolError extends UserError {
  readonly command: string;
  readonly exitStatus: number | null;
  readonly tail: string[];

  constructor(
    command: string,
    exitStatus: number | null,
    signalName: string | null,
    tail: string[],
    what?: string,
    extra: { errors?: string[]; hint?: string } = {},
  ) {
    const how = exitStatus !== null ? `exited with status ${exitStatus}` : `was killed by ${signalName ?? 'a signal'}`;
    const lead = what === undefined ? `'${command}' ${how}.` : `${what[0]!.toUpperCase()}${what.slice(1)} failed: '${command}' ${how}.`;
    const errors = extra.errors ?? [];
    const parts = [lead];
    if (errors.length > 0) parts.push(`Errors:\n${errors.map((l) => `  ${l}`).join('\n')}`);
    const rest = tail.filter((l) => !errors.includes(l));
    if (rest.length > 0) parts.push(`Last output:\n${rest.map((l) => `  ${l}`).join('\n')}`);
    super(parts.join('\n'), extra.hint === undefined ? {} : { hint: extra.hint });
    this.name = 'ToolError';
    this.command = command;
    this.exitStatus = exitStatus;
    this.tail = tail;
  }
}

const MAX_CAPTURE = 4 * 1024 * 1024;

/** Runs a program (no shell) and resolves with its output; rejects with ToolError or the abort reason. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { signal } = options;
  if (signal?.aborted === true) return Promise.reject(signal.reason);
  const shown = options.display ?? [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
  return new Promise<RunResult>((resolvePromise, rejectPromise) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const tailMax = options.tailLines ?? 25;
    const tail: string[] = [];
    const errorLines: string[] = [];
    const allForHint: string[] = [];
    const captured = { stdout: '', stderr: '' };
    const partial = { stdout: '', stderr: '' };
    let killTimer: NodeJS.Timeout | undefined;
    let aborted = false;

    const onAbort = (): void => {
      aborted = true;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), options.killGraceMs ?? 20_000);
      killTimer.unref();
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    const feed = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      if (captured[stream].length < MAX_CAPTURE) captured[stream] += text;
      const lines = (partial[stream] + text).split(/\r?\n|\r/);
      partial[stream] = lines.pop() ?? '';
      for (const line of lines) emit(line, stream);
    };
    const emit = (line: string, stream: 'stdout' | 'stderr'): void => {
      if (line.trim() === '') return;
      if (options.isNoise?.(line) !== true) {
        tail.push(line);
        if (tail.length > tailMax) tail.shift();
      }
      if (options.isErrorLine?.(line) === true && !errorLines.includes(line)) {
        errorLines.push(line);
        if (errorLines.length > 10) errorLines.shift();
      }
      if (options.hintFor !== undefined && allForHint.length < 5000) allForHint.push(line);
      options.onLine?.(line, stream);
    };
    child.stdout!.on('data', (c: Buffer) => feed('stdout', c));
    child.stderr!.on('data', (c: Buffer) => feed('stderr', c));
    if (options.input !== undefined) {
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(options.input);
    }

    child.on('error', (err: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (err.code === 'ENOENT') {
        rejectPromise(new UserError(`'${command}' is not installed (needed for ${options.what ?? 'building boxes'}).`, { hint: toolHint(command) }));
      } else rejectPromise(err);
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      for (const stream of ['stdout', 'stderr'] as const) if (partial[stream] !== '') emit(partial[stream], stream);
      if (aborted && signal !== undefined) return rejectPromise(signal.reason);
      if (code === 0) return resolvePromise(captured);
      const hint = options.hintFor?.(allForHint);
      rejectPromise(new ToolError(shown, code, sig, tail, options.what, { errors: errorLines, ...(hint === undefined ? {} : { hint }) }));
    });
  });
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** The Debian package that provides a build tool. */
export const TOOL_PACKAGES: Record<string, string> = {
  mmdebstrap: 'mmdebstrap',
  'mkfs.ext4': 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  resize2fs: 'e2fsprogs',
  sfdisk: 'fdisk',
  extlinux: 'extlinux',
  'qemu-img': 'qemu-utils',
  mount: 'mount',
  umount: 'mount',
  tar: 'tar',
  du: 'coreutils',
  dd: 'coreutils',
  truncate: 'coreutils',
};

export function toolHint(command: string): string {
  const pkg = TOOL_PACKAGES[command];
  return pkg === undefined ? `Install '${command}' and try again.` : `Install it: sudo apt-get install ${pkg}`;
}
