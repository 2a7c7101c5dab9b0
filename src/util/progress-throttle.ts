/**
 * A step's progress where output is not a live display. listr2's default renderer
 * redraws a step's status line in place; its simple renderer (stdout not a terminal:
 * a pipe, a CI log) prints every update as a line of its own — "› round 59" dozens of
 * times. A throttled ProgressThrottle shows the first update, then at most one per
 * PROGRESS_INTERVAL_MS, and when the step ends (`flush`) the last one held back, so the
 * final "100 %" is seen; never the same text twice in a row. A note (not progress:
 * something the user must read) always shows, after the progress held back before it.
 */
import { DefaultRenderer } from 'listr2';

/** At most one progress line per step in this time, without a live display. */
export const PROGRESS_INTERVAL_MS = 5_000;

export interface ProgressThrottleOptions {
  /** False with a live display (it redraws in place): every update passes as it comes. */
  throttle: boolean;
  intervalMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

export class ProgressThrottle {
  private readonly throttle: boolean;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private shown: string | undefined;
  private shownAt = Number.NEGATIVE_INFINITY;
  private held: string | undefined;

  constructor(
    private readonly write: (text: string) => void,
    options: ProgressThrottleOptions,
  ) {
    this.throttle = options.throttle;
    this.intervalMs = options.intervalMs ?? PROGRESS_INTERVAL_MS;
    this.now = options.now ?? Date.now;
  }

  /** An update that the next one supersedes ("42 % of 310 MiB", "round 7"). */
  progress(text: string): void {
    if (!this.throttle) return this.write(text);
    if (this.now() - this.shownAt < this.intervalMs) {
      this.held = text;
      return;
    }
    this.held = undefined;
    this.print(text);
  }

  /** A line that is not progress: never dropped. */
  note(text: string): void {
    if (!this.throttle) return this.write(text);
    this.flush();
    this.print(text);
  }

  /** The step ends: shows the update held back, if any. */
  flush(): void {
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) this.print(held);
  }

  private print(text: string): void {
    if (text === this.shown) return;
    this.shown = text;
    this.shownAt = this.now();
    this.write(text);
  }
}

/** Whether a Listr draws with its default renderer (live, in place) rather than printing lines. */
export function rendersLive(list: { rendererClass: unknown }): boolean {
  return list.rendererClass === DefaultRenderer;
}
