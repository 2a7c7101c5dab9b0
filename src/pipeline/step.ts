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
 * One step of an action (vagrant-libvirt's middleware, as a typed object): it needs the
 * context `In` and adds `Adds` to it, so the context's type grows step by step and a
 * later step reads what an earlier one made without a non-null assertion.
 *
 * `run` returns what it adds; it may also set those fields on the context early, so that
 * its `rollback` finds what it made before it failed. `rollback` undoes what `run`
 * created; it runs only when a later step fails before the action completed, so a
 * half-made machine never stays behind. `run` must stop soon after `signal` aborts.
 */
export interface Step<In, Adds extends object = {}> {
  title: string;
  /** Return true (or a reason) to skip the step: only a step that adds nothing required may be skipped. */
  skip?: {} extends Adds ? (ctx: In) => boolean | string : never;
  // Properties, not methods: their parameters are then checked strictly, so a step that
  // needs more than the chain has made so far does not compile.
  run: (ctx: In & Partial<Adds>, signal: AbortSignal, report: StepReporter) => Promise<{} extends Adds ? Adds | void : Adds>;
  rollback?: (ctx: In & Partial<Adds>) => Promise<void>;
}

/** A step as the runner holds it, its types erased. */
export interface AnyStep {
  title: string;
  skip?: (ctx: object) => boolean | string;
  run(ctx: object, signal: AbortSignal, report: StepReporter): Promise<object | void>;
  rollback?(ctx: object): Promise<void>;
}

/**
 * Steps in order, typed by the context they start from (`Start`) and the one they leave
 * (`C`): `chain<Start>().then(a).then(b)` compiles only when each step's needs are met.
 */
export interface Chain<Start, C> {
  readonly steps: readonly AnyStep[];
  /** Type-level only: a chain that starts from `Start` accepts any context that is one. */
  readonly _start?: (ctx: Start) => void;
  readonly _end?: C;
  then<A extends object>(step: Step<C, A>): Chain<Start, C & A>;
  /** These steps, then `next`'s, which may start from any part of what these leave. */
  concat<D>(next: Chain<C, D>): Chain<Start, C & D>;
}

function chainOf<Start, C>(steps: readonly AnyStep[]): Chain<Start, C> {
  return {
    steps,
    then<A extends object>(step: Step<C, A>): Chain<Start, C & A> {
      return chainOf<Start, C & A>([...steps, step as unknown as AnyStep]);
    },
    concat<D>(next: Chain<C, D>): Chain<Start, C & D> {
      return chainOf<Start, C & D>([...steps, ...next.steps]);
    },
  };
}

/** An empty chain starting from the context `Start`. */
export function chain<Start>(): Chain<Start, Start> {
  return chainOf<Start, Start>([]);
}
