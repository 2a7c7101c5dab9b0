/**
 * Starting, checking and stopping a machine's forwarder process. It runs detached (its
 * own session, output to a log file) so that it outlives the vmenv command that started
 * it; the caller records `{pid, startedAt}` and stops it later by that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitText } from '../../util/exit-text.js';
import { processIdentity } from '../../util/proc-identity.js';
import { sleep } from '../../util/sleep.js';
import { ForwardBindError, ForwarderStartError } from './errors.js';
import { FORWARDER_FLAG, isStartReport, TAG_PREFIX, type BoundMapping, type StartReport } from './messages.js';
import { portHolder } from './ports.js';
import { checkForwardSpec, type ForwardSpec } from './spec.js';

export interface StartForwarderOptions {
  /** Where the forwarder writes its log (appended; the folder is made when missing). */
  logFile: string;
  signal?: AbortSignal;
  /** How long to wait for it to bind every port (default 10 s). */
  timeoutMs?: number;
  /** Written on its command line as `--tag=<tag>` (say, the machine's id), for forwarderRunning/stopForwarder. */
  tag?: string;
  /** The main.js to run (default: the one beside this module). */
  entry?: string;
}

export interface RunningForwarder {
  pid: number;
  /** Its start time in clock ticks since boot (/proc/<pid>/stat field 22): record it with the pid. */
  startedAt: number | undefined;
  /** The mappings as bound (a hostPort of 0 in the spec replaced by the port the kernel gave). */
  listeners: BoundMapping[];
}

/** What a recorded forwarder must still match before it is signalled. */
export interface ForwarderIdentity {
  startedAt?: number;
  tag?: string;
}

/** main.js beside this module; from the sources (tests) the build's copy in dist/. */
export function forwarderEntry(): string {
  const beside = fileURLToPath(new URL('./main.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const built = fileURLToPath(new URL('../../../dist/net/forward/main.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new ForwarderStartError(`The port forwarder's program is missing: ${beside}. Reinstall vmenv (or build it: npx tsc -p tsconfig.build.json).`);
}

function logTail(file: string, lines = 6): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

type Outcome = { report: StartReport } | { exited: string } | { timedOut: true } | { aborted: unknown };

function firstOutcome(child: ChildProcess, timeoutMs: number, signal: AbortSignal | undefined): Promise<Outcome> {
  return new Promise((resolve) => {
    const done = (o: Outcome): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
      resolve(o);
    };
    const onMessage = (m: unknown): void => {
      if (isStartReport(m)) done({ report: m });
    };
    const onExit = (code: number | null, sig: NodeJS.Signals | null): void => done({ exited: exitText(code, sig) });
    const onError = (err: Error): void => done({ exited: `could not start: ${err.message}` });
    const onAbort = (): void => done({ aborted: signal?.reason });
    const timer = setTimeout(() => done({ timedOut: true }), timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Starts a forwarder for `spec` and resolves once every host port is bound. Rejects
 * with ForwardBindError (the port, protocol and system code; for a taken port, who holds
 * it) or ForwarderStartError (it failed, ended or did not answer in time; its log's tail
 * included). Nothing is left running when it rejects. A ForwardSpecError is a bad spec.
 */
export async function startForwarder(spec: ForwardSpec, options: StartForwarderOptions): Promise<RunningForwarder> {
  const checked = checkForwardSpec(spec);
  options.signal?.throwIfAborted();
  const entry = options.entry ?? forwarderEntry();
  mkdirSync(dirname(options.logFile), { recursive: true });
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    const args = [entry, FORWARDER_FLAG, JSON.stringify(checked)];
    if (options.tag !== undefined) args.push(`${TAG_PREFIX}${options.tag}`);
    // cwd /: a forwarder that lives for days must not keep the project folder (or a mount) busy.
    child = spawn(process.execPath, args, { detached: true, cwd: '/', stdio: ['ignore', fd, fd, 'ipc'] });
  } finally {
    closeSync(fd);
  }

  const timeoutMs = options.timeoutMs ?? 10_000;
  const outcome = await firstOutcome(child, timeoutMs, options.signal);
  if ('report' in outcome && outcome.report.kind === 'ready') {
    if (child.connected) child.disconnect();
    child.unref();
    const pid = child.pid as number;
    return { pid, startedAt: processIdentity(pid)?.startTicks, listeners: outcome.report.listeners };
  }

  // Not started: make sure it is gone before saying so.
  if (child.exitCode === null && child.signalCode === null) {
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (!('report' in outcome)) child.kill('SIGKILL');
    await Promise.race([gone, sleep(2_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  if (child.connected) child.disconnect();

  if ('aborted' in outcome) throw outcome.aborted;
  if ('timedOut' in outcome) {
    throw new ForwarderStartError(`The port forwarder did not report its ports bound within ${(timeoutMs / 1000).toFixed(1)} s.`, {
      logFile: options.logFile,
      logTail: logTail(options.logFile),
      timedOut: true,
    });
  }
  if ('exited' in outcome) {
    throw new ForwarderStartError(`The port forwarder ended before it was ready (${outcome.exited}).`, { logFile: options.logFile, logTail: logTail(options.logFile) });
  }
  const r = outcome.report;
  if (r.kind === 'bind-failed') {
    const holder = r.code === 'EADDRINUSE' ? await portHolder(r.hostPort, r.protocol, r.hostIp).catch(() => undefined) : undefined;
    throw new ForwardBindError({ protocol: r.protocol, hostIp: r.hostIp, hostPort: r.hostPort, code: r.code, detail: r.message, ...(holder === undefined ? {} : { holder }) });
  }
  throw new ForwarderStartError(`The port forwarder could not start: ${r.kind === 'failed' ? r.message : r.kind}.`, { logFile: options.logFile });
}

/**
 * Whether `pid` is (still) a forwarder: a live process whose command line carries the
 * forwarder's marker (and `--tag=<tag>`, and the start time, when given).
 */
export function forwarderRunning(pid: number, identity: ForwarderIdentity = {}): boolean {
  const p = processIdentity(pid);
  if (p === undefined || p.state === 'Z') return false;
  if (!p.argv.includes(FORWARDER_FLAG) || !p.argv.some((a) => /[\\/]forward[\\/]main\.js$/.test(a))) return false;
  if (identity.tag !== undefined && !p.argv.includes(`${TAG_PREFIX}${identity.tag}`)) return false;
  if (identity.startedAt !== undefined && p.startTicks !== identity.startedAt) return false;
  return true;
}

export type StopResult = 'stopped' | 'killed' | 'not-running';

/**
 * Stops the forwarder at `pid`: SIGTERM, up to `graceMs` (default 2 s) for it to close
 * its ports, then SIGKILL. A pid that is not (or no longer) that forwarder is left
 * alone: 'not-running'.
 */
export async function stopForwarder(pid: number, identity: ForwarderIdentity = {}, options: { graceMs?: number } = {}): Promise<StopResult> {
  if (!forwarderRunning(pid, identity)) return 'not-running';
  const signal = (sig: NodeJS.Signals): boolean => {
    try {
      process.kill(pid, sig);
      return true;
    } catch {
      return false; // gone in between
    }
  };
  if (!signal('SIGTERM')) return 'stopped';
  const graceMs = options.graceMs ?? 2_000;
  const step = 50;
  for (let waited = 0; waited < graceMs; waited += step) {
    await sleep(step);
    if (!forwarderRunning(pid, identity)) return 'stopped';
  }
  if (!signal('SIGKILL')) return 'stopped';
  for (let waited = 0; waited < 2_000 && forwarderRunning(pid, identity); waited += step) await sleep(step);
  return 'killed';
}
