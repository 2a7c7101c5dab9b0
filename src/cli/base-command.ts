import { Command } from '@oclif/core';
import { describeError, formatErrorJson, formatErrorText, usageLine } from '../services/error-report.js';
import { ExitCode, InterruptedError } from '../errors.js';

/**
 * The one base of every vmenv command. It turns whatever a command throws into a
 * message and an exit code (see describeError in error-report.ts), prints errors as
 * JSON when --json is given, and handles Ctrl-C.
 *
 * Subclasses whose output is data set `static enableJsonFlag = true` and return that
 * data from run(); oclif prints it with --json.
 *
 * Ctrl-C: a command that can cancel its work uses `this.signal` (an AbortSignal) and
 * passes it down; on the first Ctrl-C the signal aborts with an InterruptedError so
 * the work can undo what it half-made, and the command ends with exit 130. A second
 * Ctrl-C, or a Ctrl-C in a command that never asked for `this.signal`, exits 130 at once.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = false;

  private abortController: AbortController | undefined;
  private sigintListener: (() => void) | undefined;

  /** Aborted (with an InterruptedError as reason) when the user presses Ctrl-C. */
  protected get signal(): AbortSignal {
    this.abortController ??= new AbortController();
    return this.abortController.signal;
  }

  /** The command as typed, e.g. "box add". */
  protected get commandName(): string {
    return (this.id ?? this.ctor.id ?? '').replaceAll(':', ' ');
  }

  protected override async init(): Promise<void> {
    await super.init();
    this.sigintListener = () => this.interrupt();
    process.on('SIGINT', this.sigintListener);
  }

  /**
   * For a command that hands the terminal to a child process (`vmenv ssh` runs OpenSSH):
   * Ctrl-C is the child's to answer (the terminal sends it SIGINT too), and vmenv ends
   * as the child does.
   */
  protected leaveCtrlCToChild(): void {
    if (this.sigintListener !== undefined) process.off('SIGINT', this.sigintListener);
    this.sigintListener = () => undefined;
    process.on('SIGINT', this.sigintListener);
  }

  private interrupt(): void {
    const controller = this.abortController;
    if (controller === undefined || controller.signal.aborted) {
      if (this.jsonEnabled()) this.logJson(formatErrorJson(describeError(new InterruptedError())));
      else process.stderr.write('\nInterrupted.\n');
      process.exit(ExitCode.interrupted);
    }
    process.stderr.write('\nInterrupted: cancelling (press Ctrl-C again to quit at once)...\n');
    controller.abort(new InterruptedError());
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<never> {
    const ctor = this.ctor;
    const report = describeError(err, {
      command: this.commandName,
      usage: usageLine(this.commandName, {
        args: ctor.args as Record<string, { required?: boolean }>,
        strict: ctor.strict,
        hasFlags: Object.keys(ctor.flags ?? {}).length > 0 || ctor.enableJsonFlag,
      }),
    });
    if (report.silent !== true) {
      if (this.jsonEnabled()) {
        this.logJson(formatErrorJson(report));
      } else {
        const color = process.stderr.isTTY === true && process.env['NO_COLOR'] === undefined;
        process.stderr.write(`${formatErrorText(report, { color })}\n`);
      }
    }
    // Already reported: leave oclif nothing to print but the exit code.
    return this.exit(report.exitCode);
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    if (this.sigintListener !== undefined) process.off('SIGINT', this.sigintListener);
    await super.finally(err);
  }
}

