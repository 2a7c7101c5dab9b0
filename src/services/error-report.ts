/**
 * Turning any thrown value into what the user sees and the exit code: pure functions,
 * no I/O, no oclif import (oclif and libvirt errors are recognised by shape and name so
 * that this module loads nothing at startup).
 *
 *   UserError (and subclasses)      -> its message + hint, its exitCode
 *   oclif parse error               -> message + usage line, exit 2
 *   oclif ExitError (this.exit(n))  -> nothing printed, exit n
 *   other oclif CLIError            -> its message, its exit code
 *   LibvirtConnectError             -> message + hint, exit 3
 *   LibvirtConnectionClosedError    -> message + hint, exit 3
 *   LibvirtUriError                 -> message + hint, exit 2
 *   LibvirtError                    -> message with libvirt's code/domain, exit 1
 *   AbortError / DOMException       -> interrupted (130) / timed out (5)
 *   anything else                   -> "vmenv hit a bug", stack, exit 70
 */
import type {
  LibvirtConnectError,
  LibvirtError,
  LibvirtUriError,
} from '../libvirt/errors.js';
import { ExitCode, UserError } from '../errors.js';

/** A stable, machine-readable name for an exit code (the keys of ExitCode). */
export type ErrorCodeName = keyof typeof ExitCode;

export interface ErrorReport {
  /** Machine-readable category, e.g. "user", "usage", "unavailable", "bug". */
  code: ErrorCodeName;
  exitCode: number;
  message: string;
  hint?: string;
  /** Parse errors: how the command is called. */
  usage?: string;
  /** Bugs only: the stack (with causes) to print so it can be reported. */
  stack?: string;
  /** Errors replied by libvirt: its virErrorNumber and virErrorDomain. */
  libvirt?: { code: number; domain: string; procedure?: string };
  /** Print nothing, just exit (an explicit `this.exit(n)`). */
  silent?: boolean;
}

export interface ErrorContext {
  /** The command as the user types it, e.g. "box add". */
  command?: string;
  /** One-line usage of the command, shown with parse errors. */
  usage?: string;
}

export const BUG_REPORT_HINT =
  "Please report it, with the command you ran and the output of 'vmenv doctor'.";

const SEE_HELP_SUFFIX = /\n?See more help with --help\s*$/;

export function codeName(exitCode: number): ErrorCodeName {
  for (const [name, value] of Object.entries(ExitCode)) {
    if (value === exitCode) return name as ErrorCodeName;
  }
  return 'user';
}

type Shaped = Error & Record<string, unknown>;

function named(err: unknown, name: string): err is Shaped {
  return err instanceof Error && err.name === name;
}

function oclifExit(err: Shaped): number | undefined {
  const oclif = err['oclif'];
  if (typeof oclif === 'object' && oclif !== null) {
    const exit = (oclif as { exit?: unknown }).exit;
    if (typeof exit === 'number') return exit;
  }
  return undefined;
}

function isOclifParseError(err: unknown): err is Shaped {
  return err instanceof Error && 'parse' in err && oclifExit(err as Shaped) !== undefined;
}

function isLibvirtError(err: unknown): err is LibvirtError {
  return named(err, 'LibvirtError') && typeof err['code'] === 'number' && typeof err['domain'] === 'number';
}

/** libvirt error numbers with a hint worth giving (see ErrorCode in src/libvirt/errors.ts). */
const GROUP_HINT =
  "For qemu:///system you need to be in the 'libvirt' group (then log in again); qemu:///session needs no privileges.";
const libvirtHints: Record<number, string> = {
  5 /* noConnect */: "vmenv could not talk to libvirt; check it with 'vmenv doctor'.",
  28 /* domExist */: "A domain with this name already exists in libvirt; 'vmenv status' shows whether vmenv owns it.",
  29 /* operationDenied */: `libvirt refused the operation. ${GROUP_HINT}`,
  42 /* noDomain */: "The machine's domain no longer exists in libvirt; 'vmenv status' shows what vmenv knows.",
  45 /* authFailed */: `libvirt refused the credentials. ${GROUP_HINT}`,
  88 /* accessDenied */: `libvirt's access control denied the operation. ${GROUP_HINT}`,
  90 /* storageVolExist */: 'A volume with this name already exists in the storage pool.',
};

function describeLibvirtError(err: LibvirtError): ErrorReport {
  const domain = typeof err.domainName === 'string' ? err.domainName : `domain ${err.domain}`;
  const where = err.procedure === undefined ? '' : `, in ${err.procedure}`;
  const report: ErrorReport = {
    code: err.code === 5 ? 'unavailable' : 'user',
    exitCode: err.code === 5 ? ExitCode.unavailable : ExitCode.user,
    message: `libvirt: ${err.message} (${domain} error ${err.code}${where})`,
    libvirt: {
      code: err.code,
      domain,
      ...(err.procedure === undefined ? {} : { procedure: err.procedure }),
    },
  };
  const hint = libvirtHints[err.code];
  if (hint !== undefined) report.hint = hint;
  return report;
}

/** The stack of an error and of each of its causes. */
export function fullStack(err: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    const text = current instanceof Error ? (current.stack ?? `${current.name}: ${current.message}`) : String(current);
    parts.push(parts.length === 0 ? text : `Caused by: ${text}`);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join('\n');
}

/** Map anything that was thrown to what to print and the exit code. Pure. */
export function describeError(err: unknown, context: ErrorContext = {}): ErrorReport {
  if (err instanceof UserError) {
    const report: ErrorReport = { code: codeName(err.exitCode), exitCode: err.exitCode, message: err.message };
    if (err.hint !== undefined) report.hint = err.hint;
    return report;
  }

  if (err instanceof Error && (err as Shaped)['code'] === 'EEXIT') {
    const exitCode = oclifExit(err as Shaped) ?? ExitCode.user;
    return { code: codeName(exitCode), exitCode, message: err.message, silent: true };
  }

  if (isOclifParseError(err)) {
    const report: ErrorReport = {
      code: 'usage',
      exitCode: ExitCode.usage,
      message: err.message.replace(SEE_HELP_SUFFIX, ''),
      hint:
        context.command === undefined
          ? "Run 'vmenv --help' for the commands."
          : `Run 'vmenv ${context.command} --help' for its flags and examples.`,
    };
    if (context.usage !== undefined) report.usage = context.usage;
    return report;
  }

  // Any other oclif CLIError (this.error(), flag parsing helpers): a message for the user.
  if (err instanceof Error && oclifExit(err as Shaped) !== undefined) {
    const exitCode = oclifExit(err as Shaped) ?? ExitCode.user;
    return { code: codeName(exitCode), exitCode, message: err.message };
  }

  if (named(err, 'LibvirtConnectError')) {
    const target = (err as unknown as LibvirtConnectError).target;
    return {
      code: 'unavailable',
      exitCode: ExitCode.unavailable,
      message: err.message,
      hint:
        `vmenv could not reach libvirt${typeof target === 'string' && target !== '' ? ` (${target})` : ''}. ` +
        "Is the daemon (libvirtd or virtqemud) running? 'vmenv doctor' checks the host; " +
        'qemu:///session needs no system service, qemu:///system needs membership of the libvirt group.',
    };
  }

  if (named(err, 'LibvirtConnectionClosedError')) {
    return {
      code: 'unavailable',
      exitCode: ExitCode.unavailable,
      message: err.message,
      hint: 'The libvirt daemon closed the connection (did it restart?). Run the command again.',
    };
  }

  if (named(err, 'LibvirtUriError')) {
    const uri = (err as unknown as LibvirtUriError).uri;
    return {
      code: 'usage',
      exitCode: ExitCode.usage,
      message: `Cannot use libvirt URI '${String(uri)}': ${err.message}`,
      hint: 'Use a URI such as qemu:///session, qemu:///system, qemu+ssh://user@host/system or qemu+tcp://host/system.',
    };
  }

  if (isLibvirtError(err)) return describeLibvirtError(err);

  if (err instanceof Error && err.name === 'AbortError') {
    // An abort caused by something we know (e.g. our InterruptedError) speaks for itself.
    if (err.cause instanceof UserError) return describeError(err.cause, context);
    return { code: 'interrupted', exitCode: ExitCode.interrupted, message: 'Interrupted.' };
  }

  if (err instanceof Error && err.name === 'TimeoutError') {
    return { code: 'timeout', exitCode: ExitCode.timeout, message: `Timed out: ${err.message}` };
  }

  const message = err instanceof Error ? err.message : String(err);
  return {
    code: 'bug',
    exitCode: ExitCode.bug,
    message: `vmenv hit a bug: ${message}`,
    hint: BUG_REPORT_HINT,
    stack: fullStack(err),
  };
}

export interface TextOptions {
  /** Colour the labels (stderr is a terminal and NO_COLOR is not set). */
  color?: boolean;
}

/** The lines for stderr, without a trailing newline. Empty for silent reports. */
export function formatErrorText(report: ErrorReport, options: TextOptions = {}): string {
  if (report.silent === true) return '';
  const paint = (code: string, text: string): string =>
    options.color === true ? `\u001B[${code}m${text}\u001B[0m` : text;
  const lines: string[] = [];
  if (report.code === 'bug') {
    lines.push(paint('1;31', report.message));
    if (report.stack !== undefined) lines.push(report.stack);
    lines.push(report.hint ?? BUG_REPORT_HINT);
    return lines.join('\n');
  }
  lines.push(`${paint('1;31', 'Error:')} ${report.message}`);
  if (report.usage !== undefined) lines.push(`${paint('1', 'Usage:')} ${report.usage}`);
  if (report.hint !== undefined) lines.push(`${paint('1;33', 'Hint:')} ${report.hint}`);
  return lines.join('\n');
}

/** The JSON document printed instead when --json is given. */
export function formatErrorJson(report: ErrorReport): { error: Record<string, unknown> } {
  const error: Record<string, unknown> = {
    message: report.message,
    hint: report.hint ?? null,
    code: report.code,
    exitCode: report.exitCode,
  };
  if (report.usage !== undefined) error['usage'] = report.usage;
  if (report.libvirt !== undefined) error['libvirt'] = report.libvirt;
  if (report.stack !== undefined) error['stack'] = report.stack;
  return { error };
}

export interface UsageSpec {
  args?: Record<string, { required?: boolean } | undefined>;
  /** false: the last argument may repeat. */
  strict?: boolean;
  hasFlags?: boolean;
}

/** "vmenv box add SOURCE [--flags]" from a command's static args. Pure. */
export function usageLine(command: string, spec: UsageSpec): string {
  const parts = [`vmenv ${command}`];
  const names = Object.keys(spec.args ?? {});
  names.forEach((name, i) => {
    const upper = name.toUpperCase();
    const repeat = spec.strict === false && i === names.length - 1 ? '...' : '';
    parts.push(spec.args?.[name]?.required === true ? `${upper}${repeat}` : `[${upper}${repeat}]`);
  });
  if (spec.hasFlags === true) parts.push('[FLAGS]');
  return parts.join(' ');
}
