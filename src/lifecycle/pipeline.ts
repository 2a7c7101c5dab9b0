import { Listr, PRESET_TIMER, type ListrTask } from 'listr2';
import { ProgressThrottle, rendersLive } from '../util/progress-throttle.js';

/** What a running step may tell the user while it works. */
export interface StepReporter {
  /**
   * A one-line status under the step's title (e.g. "42 % of 310 MiB"), superseded by the
   * next: without a live display, shown at most every few seconds (and the last at the end).
   */
  status(text: string): void;
  /** A line the user must read (not progress): always shown. */
  note(text: string): void;
  /** Replace the step's title (e.g. once the IP is known). */
  title(text: string): void;
}

/**
 * One step of a lifecycle action (vagrant-libvirt's middleware, as a typed object).
 * `rollback` undoes what `run` created; it runs only when a later step fails before the
 * action completed, so a half-made machine never stays behind. A step that fails
 * cleans up its own partial work; `run` must stop soon after `signal` aborts.
 */
export interface Step<C> {
  title: string;
  /** Return true (or a reason) to skip the step, e.g. when its work is already done. */
  skip?: (ctx: C) => boolean | string;
  run(ctx: C, signal: AbortSignal, report: StepReporter): Promise<void>;
  rollback?(ctx: C): Promise<void>;
}

export type Renderer = 'default' | 'simple' | 'silent';

export interface PipelineOptions {
  signal?: AbortSignal;
  /** listr2's live display on a terminal, plain lines otherwise, or nothing (tests). */
  renderer?: Renderer;
  /** When false, a failed action leaves what it made for inspection (`up --no-destroy-on-error`). */
  rollbackOnError?: boolean;
  /** Told about each rollback so the user sees what is being removed. */
  onRollback?: (title: string, error?: Error) => void;
}

/** A pipeline failed; `cause` is the step's error, `rollbackErrors` what could not be undone. */
export class PipelineError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: Error,
    readonly rollbackErrors: { step: string; error: Error }[],
  ) {
    super(cause.message, { cause });
    this.name = 'PipelineError';
  }
}

/** The renderer that suits where output goes: live on a terminal, plain lines otherwise. */
export function defaultRenderer(): Renderer {
  return process.stdout.isTTY ? 'default' : 'simple';
}

/**
 * Runs the steps in order, each as a listr2 task showing its elapsed time. If one
 * fails (or the signal aborts), that step (which may have made part of its work) and
 * then the completed steps are rolled back newest first, and
 * the original error is thrown — the step's own error when nothing failed to roll back,
 * a PipelineError listing the leftovers otherwise.
 */
export async function runPipeline<C>(steps: readonly Step<C>[], ctx: C, options: PipelineOptions = {}): Promise<void> {
  const signal = options.signal ?? new AbortController().signal;
  const done: Step<C>[] = [];
  let started: Step<C> | undefined;
  const tasks: ListrTask[] = steps.map((step) => ({
    title: step.title,
    skip: () => step.skip?.(ctx) ?? false,
    task: async (_c, task) => {
      signal.throwIfAborted();
      const output = new ProgressThrottle(
        (text) => {
          task.output = text;
        },
        { throttle: !rendersLive(list) },
      );
      const report: StepReporter = {
        status: (text) => output.progress(text),
        note: (text) => output.note(text),
        title: (text) => {
          task.title = text;
        },
      };
      // The step honours the signal itself; racing it would start the rollback while
      // it may still be creating something that then would never be undone.
      started = step;
      try {
        await step.run(ctx, signal, report);
      } finally {
        output.flush();
      }
      done.push(step);
      signal.throwIfAborted();
    },
  }));
  const list = new Listr(tasks, {
    concurrent: false,
    exitOnError: true,
    renderer: options.renderer ?? defaultRenderer(),
    fallbackRenderer: 'simple',
    rendererOptions: { timer: PRESET_TIMER, collapseSubtasks: false },
    // Ctrl-C is the caller's signal to handle; listr2 must not exit the process itself.
    registerSignalListeners: false,
  } as ConstructorParameters<typeof Listr>[1]);
  try {
    await list.run();
  } catch (err) {
    const cause = err instanceof Error ? err : new Error(String(err));
    // The step that was running: a skipped step has no place in `done`.
    const failedStep = started && !done.includes(started) ? started : undefined;
    if (options.rollbackOnError === false) throw cause;
    const rollbackErrors: { step: string; error: Error }[] = [];
    const undo = failedStep ? [failedStep, ...[...done].reverse()] : [...done].reverse();
    for (const step of undo) {
      if (!step.rollback) continue;
      try {
        await step.rollback(ctx);
        options.onRollback?.(step.title);
      } catch (rbErr) {
        const error = rbErr instanceof Error ? rbErr : new Error(String(rbErr));
        rollbackErrors.push({ step: step.title, error });
        options.onRollback?.(step.title, error);
      }
    }
    if (rollbackErrors.length === 0) throw cause;
    throw new PipelineError(failedStep?.title ?? 'unknown step', cause, rollbackErrors);
  }
}
