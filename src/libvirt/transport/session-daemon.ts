/**
 * Start the per-user libvirt daemon on demand, as libvirt's own client does for
 * `qemu:///session` (virNetSocketNewConnectUNIX + virNetSocketForkDaemon): when the
 * socket is missing or refuses connections, run `<daemon> --timeout=120` detached from
 * us (it exits by itself after 120 s without clients) and wait for the socket.
 *
 * Two vmenv processes racing here both start a daemon; the daemon's own pidfile lock
 * lets only one run, the other exits, and both callers reach the winner's socket.
 */
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { LibvirtConnectError } from '../errors.js';
import { checkUnixSocket } from './unix.js';
import { sleep } from '../../util/sleep.js';

export const DEFAULT_DAEMON_START_TIMEOUT_MS = 15_000;
/** The idle timeout given to a daemon we start, as libvirt's client does. */
export const DAEMON_IDLE_TIMEOUT_S = 120;

export type SocketState = 'ok' | 'missing' | 'refused' | 'denied' | 'error';

export interface SpawnedDaemon {
  pid: number | undefined;
  /** Called once if the process exits (or fails to start) while we still listen. */
  onExit(cb: (code: number | null, signal: string | null, error?: Error) => void): void;
  /** Stop listening to the process; it keeps running. */
  detach(): void;
}

export interface EnsureSessionDaemonOptions {
  signal?: AbortSignal | undefined;
  /** How long to wait for the socket after starting the daemon. */
  timeoutMs?: number;
  /** Poll interval, clamped to 50–100 ms. */
  pollMs?: number;
  /** Daemon binary name or path; default from the socket name (virtqemud-sock → virtqemud, libvirt-sock → libvirtd). */
  daemon?: string;
  env?: Record<string, string | undefined>;
  home?: string;
  /** Injectable for tests. */
  probe?: (socketPath: string) => Promise<SocketState>;
  /** Injectable for tests: find a daemon binary by name. */
  findBinary?: (name: string) => string | undefined;
  /** Injectable for tests: start the daemon. */
  spawnDaemon?: (binary: string, args: string[], opts: { env: Record<string, string>; logFile: string }) => SpawnedDaemon;
}

export interface SessionDaemonResult {
  socket: string;
  /** False when a daemon was already listening. */
  started: boolean;
  /** The binary started. */
  daemon?: string;
  pid?: number | undefined;
  /** Where the started daemon's stdout/stderr go. */
  logFile?: string;
}

/** The daemon that creates this socket: `<x>-sock` → `<x>`, but `libvirt-sock` → `libvirtd`. */
export function daemonForSocket(socketPath: string): string | undefined {
  const m = /^(.+)-sock$/.exec(basename(socketPath));
  if (!m) return undefined;
  return m[1] === 'libvirt' ? 'libvirtd' : m[1];
}

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/**
 * Find a daemon binary: a path as given, else on $PATH, else in the sbin directories
 * (which a normal user's PATH often lacks; libvirt looks in SBINDIR).
 */
export function findDaemonBinary(name: string, env: Record<string, string | undefined> = process.env): string | undefined {
  const isExec = (p: string): boolean => {
    try {
      accessSync(p, fsConstants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes('/')) return isExec(name) ? name : undefined;
  const dirs = [...(env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...SBIN_DIRS];
  for (const d of dirs) {
    const p = join(d, name);
    if (isExec(p)) return p;
  }
  return undefined;
}

/** The environment a daemon we start gets: what libvirt passes (common + XDG), plus LIBVIRT_* for debugging. */
export function daemonEnv(env: Record<string, string | undefined>): Record<string, string> {
  const keep = (k: string): boolean =>
    ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'SHELL'].includes(k) ||
    k.startsWith('LC_') ||
    ['XDG_CACHE_HOME', 'XDG_CONFIG_HOME', 'XDG_RUNTIME_DIR', 'XDG_DATA_HOME'].includes(k) ||
    k.startsWith('LIBVIRT_');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && keep(k)) out[k] = v;
  return out;
}

function defaultSpawnDaemon(
  binary: string,
  args: string[],
  opts: { env: Record<string, string>; logFile: string },
): SpawnedDaemon {
  const fd = openSync(opts.logFile, 'w', 0o600);
  let child;
  try {
    child = spawn(binary, args, { detached: true, stdio: ['ignore', fd, fd], env: opts.env });
  } finally {
    closeSync(fd);
  }
  let listener: ((code: number | null, signal: string | null, error?: Error) => void) | undefined;
  let done = false;
  const fire = (code: number | null, signal: string | null, error?: Error): void => {
    if (done) return;
    done = true;
    listener?.(code, signal, error);
  };
  const onExit = (code: number | null, signal: NodeJS.Signals | null): void => fire(code, signal);
  const onError = (err: Error): void => fire(null, null, err);
  child.on('exit', onExit);
  child.on('error', onError);
  child.unref();
  return {
    pid: child.pid,
    onExit: (cb) => {
      listener = cb;
    },
    detach: () => {
      child.removeListener('exit', onExit);
      // Keep an error listener so a late spawn error is not thrown as unhandled.
      child.removeListener('error', onError);
      child.on('error', () => {});
    },
  };
}

function tail(file: string, lines = 5): string {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return text === '' ? '' : text.split('\n').slice(-lines).join(' | ');
  } catch {
    return '';
  }
}

/**
 * Make sure a per-user daemon answers on `socketPath`, starting one if needed.
 * Resolves once the socket accepts connections; rejects with LibvirtConnectError
 * (daemon not installed, exited, or the socket did not appear in time) or with the
 * signal's reason when aborted (a daemon already started keeps running and exits by
 * its idle timeout).
 */
export async function ensureSessionDaemon(
  socketPath: string,
  opts: EnsureSessionDaemonOptions = {},
): Promise<SessionDaemonResult> {
  const env = opts.env ?? process.env;
  const probe = opts.probe ?? ((p: string) => checkUnixSocket(p, 1000));
  const find = opts.findBinary ?? ((n: string) => findDaemonBinary(n, env));
  const target = `unix socket ${socketPath}`;
  opts.signal?.throwIfAborted();

  const first = await probe(socketPath);
  if (first === 'ok') return { socket: socketPath, started: false };
  if (first === 'denied') {
    throw new LibvirtConnectError(`permission denied opening the session libvirt socket ${socketPath}`, target);
  }

  // Which daemon creates this socket.
  const wanted = opts.daemon ?? daemonForSocket(socketPath);
  const candidates = wanted !== undefined ? [wanted] : ['virtqemud', 'libvirtd'];
  let binary: string | undefined;
  for (const c of candidates) {
    binary = find(c);
    if (binary) break;
  }
  if (!binary) {
    throw new LibvirtConnectError(
      `no libvirt session daemon is running at ${socketPath}, and ${candidates.join(' or ')} is not installed to start one ` +
        `(install libvirt-daemon, with the qemu driver: on Debian libvirt-daemon-driver-qemu)`,
      target,
    );
  }

  const dir = dirname(socketPath);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new LibvirtConnectError(`cannot create the runtime directory ${dir}: ${(err as Error).message}`, target, {
      cause: err,
    });
  }
  const name = basename(binary);
  const logFile = join(dir, `${name}.vmenv-start.log`);
  const args = [`--timeout=${DAEMON_IDLE_TIMEOUT_S}`];
  const spawnDaemon = opts.spawnDaemon ?? defaultSpawnDaemon;
  let proc: SpawnedDaemon;
  try {
    proc = spawnDaemon(binary, args, { env: daemonEnv(env), logFile });
  } catch (err) {
    throw new LibvirtConnectError(`cannot start ${binary}: ${(err as Error).message}`, target, { cause: err });
  }
  let exited: { code: number | null; signal: string | null; error?: Error | undefined } | undefined;
  proc.onExit((code, signal, error) => {
    exited = { code, signal, error };
  });

  const home = opts.home ?? env.HOME ?? homedir();
  const cacheDir = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(home, '.cache');
  const libvirtLog = join(cacheDir, 'libvirt', `${name}.log`);
  const command = `${binary} ${args.join(' ')}`;
  const explainEnd = (): string => {
    const out = tail(logFile);
    return `${out ? ` It said: ${out}.` : ''} Its output is in ${logFile}; libvirt's own log for it is ${libvirtLog}.`;
  };

  const timeoutMs = opts.timeoutMs ?? DEFAULT_DAEMON_START_TIMEOUT_MS;
  const pollMs = Math.min(100, Math.max(50, opts.pollMs ?? 75));
  const started = Date.now();
  // After our daemon exits, keep looking a little: another client's daemon may have won the race.
  let exitSeenAt: number | undefined;
  try {
    for (;;) {
      await sleep(pollMs, opts.signal);
      const state = await probe(socketPath);
      if (state === 'ok') {
        return { socket: socketPath, started: true, daemon: binary, pid: proc.pid, logFile };
      }
      if (exited !== undefined) {
        exitSeenAt ??= Date.now();
        if (exited.error !== undefined) {
          throw new LibvirtConnectError(`cannot start ${command}: ${exited.error.message}`, target, {
            cause: exited.error,
          });
        }
        if (Date.now() - exitSeenAt > 1500) {
          const how = exited.signal ? `was killed by ${exited.signal}` : `exited with status ${exited.code}`;
          throw new LibvirtConnectError(
            `the session daemon ${command} ${how} before opening ${socketPath}.${explainEnd()}`,
            target,
          );
        }
      }
      if (Date.now() - started >= timeoutMs) {
        throw new LibvirtConnectError(
          `timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for the session daemon ${command} ` +
            `to open ${socketPath} (last state: ${state}).${explainEnd()}`,
          target,
        );
      }
    }
  } finally {
    proc.detach();
  }
}
