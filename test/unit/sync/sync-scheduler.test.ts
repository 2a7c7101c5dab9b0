import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffMs, SyncScheduler, type SyncBatch, type SyncSchedulerOptions } from '../../../src/sync/sync-scheduler.js';

interface Run {
  at: number;
  batch: SyncBatch;
  signal: AbortSignal;
  finish(): void;
  fail(err: unknown): void;
}

/** A scheduler whose syncs last until the test finishes them, recording each with its start time. */
function harness(options: Partial<SyncSchedulerOptions> & { autoFinish?: boolean } = {}) {
  const runs: Run[] = [];
  let active = 0;
  let maxActive = 0;
  const fatal: unknown[] = [];
  const scheduler = new SyncScheduler({
    quietMs: 100,
    maxWaitMs: 1000,
    retryDelayMs: () => 500,
    onFatal: (err) => fatal.push(err),
    now: () => Date.now(),
    run: (batch, signal) =>
      new Promise<void>((resolve, reject) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        const end = (f: () => void): void => {
          active -= 1;
          f();
        };
        runs.push({ at: Date.now(), batch, signal, finish: () => end(resolve), fail: (e) => end(() => reject(e)) });
        if (options.autoFinish) end(resolve);
      }),
    ...options,
  });
  return { scheduler, runs, fatal, maxActive: () => maxActive };
}

const paths = (r: Run | undefined): string[] => [...(r?.batch.paths ?? [])].sort();

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('SyncScheduler', () => {
  it('waits for quiet time after the last change, then syncs every changed path once', async () => {
    const { scheduler, runs } = harness({ autoFinish: true });
    scheduler.change('a');
    await vi.advanceTimersByTimeAsync(60);
    scheduler.change('b');
    await vi.advanceTimersByTimeAsync(60);
    scheduler.change('a');
    await vi.advanceTimersByTimeAsync(99);
    expect(runs).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.at).toBe(220);
    expect(paths(runs[0])).toEqual(['a', 'b']);
    expect(runs[0]!.batch.requested).toBe(false);
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toHaveLength(1);
  });

  it('coalesces a burst of 1000 changes into one sync', async () => {
    const { scheduler, runs } = harness({ autoFinish: true });
    for (let i = 0; i < 1000; i++) {
      scheduler.change(`f${i}`);
      if (i % 100 === 99) await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.batch.paths.size).toBe(1000);
  });

  it('under a steady stream of changes syncs at most maxWait after the first unsynced change', async () => {
    const { scheduler, runs } = harness({ autoFinish: true });
    for (let t = 0; t < 3000; t += 50) {
      scheduler.change(`f${t}`);
      await vi.advanceTimersByTimeAsync(50);
    }
    await vi.advanceTimersByTimeAsync(200);
    expect(runs.map((r) => r.at)).toEqual([1000, 2000, 3000]);
    expect(runs.reduce((n, r) => n + r.batch.paths.size, 0)).toBe(60);
  });

  it('never runs two syncs at once: changes during a sync lead to exactly one more after it', async () => {
    const { scheduler, runs, maxActive } = harness();
    scheduler.change('a');
    await vi.advanceTimersByTimeAsync(100);
    expect(runs).toHaveLength(1);
    for (let i = 0; i < 50; i++) {
      scheduler.change(`during${i % 7}`);
      await vi.advanceTimersByTimeAsync(40);
    }
    expect(runs).toHaveLength(1);
    runs[0]!.finish();
    // The changes' quiet time is long over, and maxWait too: the next sync starts at once.
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toHaveLength(2);
    expect(paths(runs[1])).toEqual(['during0', 'during1', 'during2', 'during3', 'during4', 'during5', 'during6']);
    runs[1]!.finish();
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toHaveLength(2);
    expect(maxActive()).toBe(1);
  });

  it('a change just before a sync ends is synced after its own quiet time', async () => {
    const { scheduler, runs } = harness();
    scheduler.change('a');
    await vi.advanceTimersByTimeAsync(100);
    await vi.advanceTimersByTimeAsync(300);
    scheduler.change('b');
    await vi.advanceTimersByTimeAsync(30);
    runs[0]!.finish();
    await vi.advanceTimersByTimeAsync(69);
    expect(runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(2);
    expect(runs[1]!.at).toBe(500);
  });

  it('request() syncs at once, with no changed path', async () => {
    const { scheduler, runs } = harness({ autoFinish: true });
    scheduler.request();
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.batch).toMatchObject({ requested: true });
    expect(runs[0]!.batch.paths.size).toBe(0);
  });

  it('retries a failed sync after the chosen delay, with what changed meanwhile, and resets the count on success', async () => {
    const failures: number[] = [];
    const { scheduler, runs } = harness({
      retryDelayMs: (n) => {
        failures.push(n);
        return 1000 * n;
      },
    });
    scheduler.change('a');
    await vi.advanceTimersByTimeAsync(100);
    runs[0]!.fail(new Error('guest away'));
    scheduler.change('b');
    await vi.advanceTimersByTimeAsync(999);
    expect(runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(2);
    expect(paths(runs[1])).toEqual(['a', 'b']);
    runs[1]!.fail(new Error('still away'));
    await vi.advanceTimersByTimeAsync(1999);
    expect(runs).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(paths(runs[2])).toEqual(['a', 'b']);
    runs[2]!.finish();
    scheduler.change('c');
    await vi.advanceTimersByTimeAsync(100);
    runs[3]!.fail(new Error('away again'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toHaveLength(5);
    expect(failures).toEqual([1, 2, 1]);
  });

  it('keeps a failed first sync requested', async () => {
    const { scheduler, runs } = harness();
    scheduler.request();
    await vi.advanceTimersByTimeAsync(0);
    runs[0]!.fail(new Error('away'));
    await vi.advanceTimersByTimeAsync(500);
    expect(runs[1]!.batch.requested).toBe(true);
  });

  it('stops for good after a failure that is not retried, and reports it', async () => {
    const boom = new Error('rsync: bad option');
    const { scheduler, runs, fatal } = harness({ retryDelayMs: () => undefined });
    scheduler.change('a');
    await vi.advanceTimersByTimeAsync(100);
    runs[0]!.fail(boom);
    await vi.advanceTimersByTimeAsync(0);
    expect(fatal).toEqual([boom]);
    scheduler.change('b');
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toHaveLength(1);
  });

  it('stop() aborts the running sync, waits for it, and starts no other', async () => {
    const { scheduler, runs } = harness();
    scheduler.change('a');
    await vi.advanceTimersByTimeAsync(100);
    const run = runs[0]!;
    run.signal.addEventListener('abort', () => setTimeout(() => run.fail(new Error('killed')), 50));
    scheduler.change('b');
    let stopped = false;
    const stopping = scheduler.stop().then(() => (stopped = true));
    expect(run.signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(49);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    scheduler.change('c');
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toHaveLength(1);
  });

  it('stop() while a sync is due cancels it', async () => {
    const { scheduler, runs } = harness({ autoFinish: true });
    scheduler.change('a');
    await vi.advanceTimersByTimeAsync(50);
    await scheduler.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toHaveLength(0);
  });
});

describe('backoffMs', () => {
  it('doubles from the first delay up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, 500, 5000))).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
  });
});
