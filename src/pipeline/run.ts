import type { AnyStep, Chain, Step, StepReporter } from './step.js';

export type { Chain, Step, StepReporter } from './step.js';
export { chain } from './step.js';

export type Renderer = 'default' | 'simple' | 'silent';

export interface PipelineOptions {
  signal?: AbortSignal;
  /** listr2's live display on a terminal, plain lines otherwise, or nothing (tests). */
  renderer?: Renderer;
  /** When false, a failed action leaves what it made for inspection (`up --no-destroy-on-error`). */
  rollbackOnError?: boolean;
  /** Told about each rollback so the user sees what is being removed. */
  onRollback?: (title: string, error?: Error) => void;
  /** Told how long each step that ran took, whether it succeeded or not. */
  onStepEnd?: (title: string, ms: number) => void;
  /** Whether the renderer prints a failed step's error under it (default true; false when the caller reports it). */
  showErrors?: boolean;
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
 * Runs the chain's steps from `ctx`, each as a listr2 task showing its elapsed time, and
 * returns the context they leave. If one fails (or the signal aborts), that step (which
 * may have made part of its work) and then the completed steps are rolled back newest
 * first, and the original error is thrown — the step's own error when nothing failed to
 * roll back, a PipelineError listing the leftovers otherwise.
 */
export async function runChain<Start, C>(steps: Chain<Start, C>, ctx: Start, options: PipelineOptions = {}): Promise<Start & C> {
  const c = ctx as Start & C & object;
  await runSteps(steps.steps, c, options);
  return c;
}

/** Runs steps that all work on one context type (see runChain). */
export async function runPipeline<C extends object>(steps: readonly Step<C>[], ctx: C, options: PipelineOptions = {}): Promise<void> {
  await runSteps(steps as unknown as readonly AnyStep[], ctx, options);
}

/** Runs one step: what it adds joins the context; the runner is told it started and ended. */
export type RunStep = (step: AnyStep, report: StepReporter) => Promise<void>;

const quiet: StepReporter = { status: () => undefined, note: () => undefined, title: () => undefined };

async function runSteps(steps: readonly AnyStep[], ctx: object, options: PipelineOptions): Promise<void> {
  const signal = options.signal ?? new AbortController().signal;
  const done: AnyStep[] = [];
  let started: AnyStep | undefined;
  const runStep: RunStep = async (step, report) => {
    signal.throwIfAborted();
    // The step honours the signal itself; racing it would start the rollback while
    // it may still be creating something that then would never be undone.
    started = step;
    const t0 = Date.now();
    try {
      const adds = await step.run(ctx, signal, report);
      if (adds) Object.assign(ctx, adds);
    } finally {
      options.onStepEnd?.(step.title, Date.now() - t0);
    }
    done.push(step);
    signal.throwIfAborted();
  };
  try {
    const renderer = options.renderer ?? defaultRenderer();
    if (renderer === 'silent') {
      // Nothing is shown: the steps run without loading listr2 (halt, suspend, destroy print their own line).
      for (const step of steps) if (!step.skip?.(ctx)) await runStep(step, quiet);
    } else {
      const { runAsListr } = await import('./listr-tasks.js');
      await runAsListr(steps, ctx, runStep, { renderer, showErrors: options.showErrors !== false });
    }
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
