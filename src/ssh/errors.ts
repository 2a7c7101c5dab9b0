/**
 * Errors of guest SSH access. Every failure to reach or use a guest over SSH is a
 * UserError (message + hint + exit code) with a `kind`, so callers — waitForSsh above
 * all — can tell "not up yet" (refused, closed, timeout) from "will never work"
 * (auth, host-key, key).
 */
import { ExitCode, UserError } from '../errors.js';

export type SshFailureKind =
  /** Nothing listens at the address (ECONNREFUSED). */
  | 'refused'
  /** No route, host down, network unreachable, connection reset. */
  | 'unreachable'
  /** The host name does not resolve. */
  | 'dns'
  /** The far side closed the connection before the session was set up (no banner yet). */
  | 'closed'
  /** No answer within the time allowed. */
  | 'timeout'
  /** The server answered but refused the machine's key. */
  | 'auth'
  /** The server's host key is not the pinned one. */
  | 'host-key'
  /** The private key cannot be used (unreadable, encrypted, not a private key). */
  | 'key'
  /** The proxy command or the jump host failed. */
  | 'proxy'
  /** The SSH protocol failed (no common algorithm, bad packet, …). */
  | 'protocol'
  /** An established connection went away. */
  | 'lost';

const exitCodes: Record<SshFailureKind, ExitCode> = {
  refused: ExitCode.unavailable,
  unreachable: ExitCode.unavailable,
  dns: ExitCode.unavailable,
  closed: ExitCode.unavailable,
  timeout: ExitCode.timeout,
  auth: ExitCode.user,
  'host-key': ExitCode.user,
  key: ExitCode.user,
  proxy: ExitCode.unavailable,
  protocol: ExitCode.unavailable,
  lost: ExitCode.unavailable,
};

export interface SshErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class SshError extends UserError {
  readonly kind: SshFailureKind;
  /** `user@host:port` (and the machine's name when known), for messages. */
  readonly target: string;

  constructor(kind: SshFailureKind, message: string, target: string, options: SshErrorOptions = {}) {
    super(message, {
      exitCode: exitCodes[kind],
      ...(options.hint === undefined ? {} : { hint: options.hint }),
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.name = 'SshError';
    this.kind = kind;
    this.target = target;
  }
}

export function isSshError(err: unknown, kind?: SshFailureKind): err is SshError {
  return err instanceof SshError && (kind === undefined || err.kind === kind);
}

/** Kinds that mean "the guest's sshd is not (yet) answering": worth another try. */
export function isRetryableSshFailure(err: unknown): boolean {
  if (!(err instanceof SshError)) return false;
  return err.kind === 'refused' || err.kind === 'unreachable' || err.kind === 'closed' || err.kind === 'timeout' || err.kind === 'lost';
}
