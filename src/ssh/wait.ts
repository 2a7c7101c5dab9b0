/**
 * Wait for a guest's SSH: try a handshake, authentication and `exec('true')` every
 * ~250 ms until one succeeds, the time runs out, or the caller cancels.
 *
 * What each failure means decides what happens next:
 * - nothing listens (refused), the connection closed before the banner (QEMU's user-mode
 *   forward accepts before the guest listens), unreachable, an attempt timed out:
 *   not up yet — try again;
 * - a connection that stays silent (the user-mode forward again, relaying into a guest
 *   still booting) is not waited out: another is opened beside it each second
 *   (`dialUntilAnswered`), for guests reached straight at their address;
 * - the guest's sshd answered and refused the machine's key: the key was not installed;
 *   after a few such answers, give up at once with that error rather than wait out
 *   the timeout (a short grace covers sshd's "/run/nologin" window early in boot);
 * - the host key differs from the pin, the key file is unusable: give up at once.
 */
import type { Socket } from 'node:net';
import { TimeoutError } from '../errors.js';
import { connectSsh, sshTargetLabel, type ConnectSshOptions, type SshSession } from './client.js';
import { dialUntilAnswered } from './dial.js';
import { SshError, isRetryableSshFailure } from './errors.js';
import { sleep } from '../util/sleep.js';

export const DEFAULT_WAIT_INTERVAL_MS = 250;
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;
export const DEFAULT_AUTH_FAILURES = 3;
export const DEFAULT_AUTH_GRACE_MS = 3_000;

export interface SshAttempt {
  /** 1-based. */
  attempt: number;
  elapsedMs: number;
  /** Set when this attempt failed. */
  error?: SshError;
  /** 'ok', or the failure's kind (refused, closed, auth, …). */
  outcome: string;
}

export interface WaitForSshOptions extends Omit<ConnectSshOptions, 'timeoutMs'> {
  /** Overall bound. */
  timeoutMs: number;
  /** Time between the starts of two attempts. Default 250 ms. */
  intervalMs?: number;
  /** Bound on one attempt (connect + handshake + auth + `true`). Default 10 s (never past the overall bound). */
  attemptTimeoutMs?: number;
  /** Consecutive auth refusals that end the wait… Default 3. */
  authFailures?: number;
  /** …once this long has passed since the first of them. Default 3 s. */
  authGraceMs?: number;
  /** Called after every attempt. */
  onAttempt?: (a: SshAttempt) => void;
  /** What is awaited, for the timeout message. Default "SSH on <label or user@host:port>". */
  what?: string;
}

export interface WaitForSshResult {
  /** The connected session (the probe's): use it, then close it. */
  session: SshSession;
  attempts: number;
  elapsedMs: number;
}

/**
 * Poll until SSH works. Resolves with the connected session; rejects with a
 * TimeoutError (its hint carries the last error), the auth or host-key SshError when
 * waiting cannot help, or `signal.reason` when cancelled.
 */
export async function waitForSsh(opts: WaitForSshOptions): Promise<WaitForSshResult> {
  const start = Date.now();
  const deadline = start + opts.timeoutMs;
  const interval = opts.intervalMs ?? DEFAULT_WAIT_INTERVAL_MS;
  const authLimit = opts.authFailures ?? DEFAULT_AUTH_FAILURES;
  const authGrace = opts.authGraceMs ?? DEFAULT_AUTH_GRACE_MS;
  const port = opts.port ?? 22;
  const what = opts.what ?? `SSH on ${opts.label ?? `${opts.username}@${opts.host}:${port}`}`;
  let attempts = 0;
  let lastError: SshError | undefined;
  let authStreak = 0;
  let firstAuthFailure = 0;
  const direct = opts.proxyCommand === undefined && opts.jump === undefined && opts.sock === undefined;
  const dialTarget = sshTargetLabel(opts);

  for (;;) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const attemptStart = Date.now();
    const left = deadline - attemptStart;
    if (left <= 0) break;
    attempts++;
    const attemptTimeout = Math.min(left, opts.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS);
    let session: SshSession | undefined;
    let sock: Socket | undefined;
    try {
      // Straight to an address: the first of several staggered connections to answer.
      if (direct) sock = await dialUntilAnswered(opts.host, port, { timeoutMs: attemptTimeout, target: dialTarget, ...(opts.signal ? { signal: opts.signal } : {}) });
      session = await connectSsh({ ...opts, ...(sock ? { sock } : {}), timeoutMs: Math.max(1, attemptTimeout - (Date.now() - attemptStart)) });
      // A session the guest gives up on at once (sshd still starting its services,
      // a shell that fails) is not "up" yet either.
      const r = await withTimeout(session.exec('true', opts.signal ? { signal: opts.signal } : {}), Math.max(1, deadline - Date.now()), session);
      if (r.code !== 0) {
        throw new SshError('closed', `\`true\` exited with ${r.code ?? r.signal} on ${session.target}${r.stderr ? `: ${r.stderr.trim()}` : ''}`, session.target);
      }
      opts.onAttempt?.({ attempt: attempts, elapsedMs: Date.now() - start, outcome: 'ok' });
      return { session, attempts, elapsedMs: Date.now() - start };
    } catch (err) {
      if (session !== undefined) await session.close().catch(() => undefined);
      sock?.destroy();
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (!(err instanceof SshError)) throw err;
      lastError = err;
      opts.onAttempt?.({ attempt: attempts, elapsedMs: Date.now() - start, error: err, outcome: err.kind });
      if (err.kind === 'auth') {
        if (authStreak === 0) firstAuthFailure = Date.now();
        authStreak++;
        if (authStreak >= authLimit && Date.now() - firstAuthFailure >= authGrace) throw err;
      } else {
        authStreak = 0;
        if (!isRetryableSshFailure(err)) throw err;
      }
    }
    const wait = Math.min(interval - (Date.now() - attemptStart), deadline - Date.now());
    if (wait > 0) await sleep(wait, opts.signal);
  }
  const hint = lastError
    ? `Last attempt (${attempts} in all): ${lastError.message}${lastError.hint ? `\n${lastError.hint}` : ''}`
    : `No attempt could be made.`;
  throw new TimeoutError(what, opts.timeoutMs, hint);
}

function withTimeout<T>(p: Promise<T>, ms: number, session: SshSession): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      reject(new SshError('timeout', `\`true\` did not finish on ${session.target}`, session.target));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
