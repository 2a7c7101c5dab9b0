/**
 * Two kinds of error reach the user. A UserError is something the user can fix:
 * it carries a hint and an exit code. Anything else is a bug in vmenv and is
 * reported with its stack so it can be filed.
 */

export const ExitCode = {
  ok: 0,
  /** Generic failure the user can act on. */
  user: 1,
  /** Bad command-line usage or bad configuration. */
  usage: 2,
  /** The libvirt daemon or another required service cannot be reached. */
  unavailable: 3,
  /** A wait ran out of time. */
  timeout: 5,
  /** Interrupted by the user (Ctrl-C). */
  interrupted: 130,
  /** A bug in vmenv. */
  bug: 70,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface UserErrorOptions {
  hint?: string;
  exitCode?: ExitCode;
  cause?: unknown;
}

export class UserError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;

  constructor(message: string, options: UserErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UserError';
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.user;
  }
}

export class TimeoutError extends UserError {
  constructor(what: string, ms: number, hint?: string) {
    super(`Timed out after ${(ms / 1000).toFixed(1)} s waiting for ${what}.`, {
      ...(hint === undefined ? {} : { hint }),
      exitCode: ExitCode.timeout,
    });
    this.name = 'TimeoutError';
  }
}

/** The user pressed Ctrl-C (SIGINT); whatever was under way has been cancelled. */
export class InterruptedError extends UserError {
  constructor(what?: string) {
    super(what === undefined ? 'Interrupted.' : `Interrupted while ${what}.`, {
      exitCode: ExitCode.interrupted,
    });
    this.name = 'InterruptedError';
  }
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}
