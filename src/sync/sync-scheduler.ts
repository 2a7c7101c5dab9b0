/**
 * When to sync one watched folder: changes are debounced (a sync starts after `quietMs`
 * without a change, or `maxWaitMs` after the first unsynced change under a steady
 * stream), bursts coalesce into one sync, and syncs of the folder never overlap: a
 * change during a sync leads to exactly one more after it. A failed sync is retried
 * after the delay `retryDelayMs` picks, with the changes that arrived meanwhile; when it
 * picks none, the failure is final and reported to `onFatal`.
 *
 * Pure: it knows nothing of files or rsync, only of timers (so it is tested with fake ones).
 */

/** What one sync covers. */
export interface SyncBatch {
  /** The distinct paths that changed since the last sync that succeeded. */
  paths: ReadonlySet<string>;
  /** This sync was asked for without a change (the first sync at start). */
  requested: boolean;
}

export interface SyncSchedulerOptions {
  /** Quiet time after the last change before a sync starts. */
  quietMs: number;
  /** Longest wait from the first unsynced change to the start of its sync. */
  maxWaitMs: number;
  /** Does the sync; `signal` aborts when the scheduler stops. */
  run(batch: SyncBatch, signal: AbortSignal): Promise<void>;
  /** The delay before retrying after the `failures`-th failure in a row, or undefined to give up. */
  retryDelayMs(failures: number, err: unknown): number | undefined;
  /** A failure that is not retried; the scheduler has stopped. */
  onFatal(err: unknown): void;
  /** The clock, in ms (default: performance.now). */
  now?: () => number;
}

export class SyncScheduler {
  private pending = new Set<string>();
  private requested = false;
  private firstChangeAt: number | undefined;
  private lastChangeAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private retrying = false;
  private failures = 0;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly now: () => number;

  constructor(private readonly options: SyncSchedulerOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** A path changed. */
  change(path: string): void {
    if (this.stopped) return;
    this.pending.add(path);
    this.lastChangeAt = this.now();
    this.firstChangeAt ??= this.lastChangeAt;
    this.schedule();
  }

  /** Asks for a sync now, changed paths or not (the first sync at start). */
  request(): void {
    if (this.stopped) return;
    this.requested = true;
    this.firstChangeAt ??= this.now();
    this.lastChangeAt = this.firstChangeAt - this.options.quietMs;
    this.schedule();
  }

  /** Stops: no sync starts any more, the running one is aborted and waited for. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await this.running;
  }

  private schedule(): void {
    // A running sync or a retry's back-off decides when the next sync starts.
    if (this.stopped || this.running !== undefined || this.retrying) return;
    if (this.pending.size === 0 && !this.requested) return;
    const first = this.firstChangeAt ?? this.lastChangeAt;
    const due = Math.min(this.lastChangeAt + this.options.quietMs, first + this.options.maxWaitMs);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.start(), Math.max(0, due - this.now()));
  }

  private start(): void {
    this.timer = undefined;
    this.retrying = false;
    if (this.stopped || this.running !== undefined) return;
    const batch: SyncBatch = { paths: this.pending, requested: this.requested };
    this.pending = new Set();
    this.requested = false;
    this.firstChangeAt = undefined;
    this.running = this.options.run(batch, this.abort.signal).then(
      () => this.finished(),
      (err: unknown) => this.failed(batch, err),
    );
  }

  private finished(): void {
    this.running = undefined;
    this.failures = 0;
    this.schedule();
  }

  private failed(batch: SyncBatch, err: unknown): void {
    this.running = undefined;
    if (this.stopped) return;
    // The batch is not synced: merge it back, older changes first.
    this.pending = new Set([...batch.paths, ...this.pending]);
    this.requested ||= batch.requested;
    this.failures += 1;
    const delay = this.options.retryDelayMs(this.failures, err);
    if (delay === undefined) {
      this.stopped = true;
      this.options.onFatal(err);
      return;
    }
    this.retrying = true;
    this.firstChangeAt = undefined;
    this.timer = setTimeout(() => this.start(), delay);
  }
}

/** Exponential back-off: `initialMs`, doubled each failure, at most `maxMs`. */
export function backoffMs(failures: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.max(0, failures - 1));
}
