import { Listr } from 'listr2';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runPipeline, type Step } from '../../../src/pipeline/run.js';
import { PROGRESS_INTERVAL_MS, ProgressThrottle, rendersLive } from '../../../src/util/progress-throttle.js';

/** A throttle on a clock the test moves; `lines` is what it printed. */
function throttled(throttle = true): { t: ProgressThrottle; lines: string[]; advance: (ms: number) => void } {
  let now = 1_000_000;
  const lines: string[] = [];
  const t = new ProgressThrottle((text) => lines.push(text), { throttle, now: () => now });
  return { t, lines, advance: (ms) => (now += ms) };
}

describe('ProgressThrottle', () => {
  it('shows the first of many updates within the window, then the last one when the step ends', () => {
    const { t, lines, advance } = throttled();
    for (let i = 1; i <= 100; i++) {
      t.progress(`${i} % of 19 MiB`);
      advance(10);
    }
    expect(lines).toEqual(['1 % of 19 MiB']);
    t.flush();
    expect(lines).toEqual(['1 % of 19 MiB', '100 % of 19 MiB']);
  });

  it('shows one update per window', () => {
    const { t, lines, advance } = throttled();
    // 200 ms rounds for 12 s: windows start at 0 s, 5 s and 10 s.
    for (let round = 1; round <= 60; round++) {
      t.progress(`round ${round}`);
      advance(200);
    }
    expect(lines).toEqual(['round 1', 'round 26', 'round 51']);
    t.flush();
    expect(lines).toEqual(['round 1', 'round 26', 'round 51', 'round 60']);
  });

  it('holds an update back for the whole interval, not a moment less', () => {
    const { t, lines, advance } = throttled();
    t.progress('a');
    advance(PROGRESS_INTERVAL_MS - 1);
    t.progress('b');
    advance(1);
    t.progress('c');
    expect(lines).toEqual(['a', 'c']);
  });

  it('never prints the same text twice in a row', () => {
    const { t, lines, advance } = throttled();
    t.progress('round 3'); // each source of a round reports it
    t.progress('round 3');
    advance(PROGRESS_INTERVAL_MS);
    t.progress('round 3');
    t.flush();
    expect(lines).toEqual(['round 3']);
  });

  it('flushes nothing when the last update was shown already, or there was none', () => {
    const { t, lines, advance } = throttled();
    t.flush();
    t.progress('100 %');
    advance(1);
    t.flush();
    t.flush();
    expect(lines).toEqual(['100 %']);
  });

  it('always shows notes, after the progress held back before them', () => {
    const { t, lines, advance } = throttled();
    t.progress('attempt 1: refused');
    advance(250);
    t.progress('attempt 2: ok');
    t.note("logged in with the insecure key: replacing it with the machine's key");
    t.note('created pool default at /var/lib/vmenv/pool');
    t.progress('attempt 1: ok'); // the reconnect, within the window
    t.flush();
    expect(lines).toEqual([
      'attempt 1: refused',
      'attempt 2: ok',
      "logged in with the insecure key: replacing it with the machine's key",
      'created pool default at /var/lib/vmenv/pool',
      'attempt 1: ok',
    ]);
  });

  it('passes everything through for a live display', () => {
    const { t, lines } = throttled(false);
    for (let i = 1; i <= 5; i++) t.progress(`${i * 20} %`);
    t.progress('100 %');
    t.note('a note');
    t.flush();
    expect(lines).toEqual(['20 %', '40 %', '60 %', '80 %', '100 %', '100 %', 'a note']);
  });
});

describe('rendersLive', () => {
  it('is true only for listr2’s default renderer on a terminal', () => {
    const tty = process.stdout.isTTY;
    try {
      process.stdout.isTTY = true;
      expect(rendersLive(new Listr([], { renderer: 'default' }))).toBe(true);
      expect(rendersLive(new Listr([], { renderer: 'simple' }))).toBe(false);
      process.stdout.isTTY = false;
      // Not a terminal: listr2 falls back to the simple renderer.
      expect(rendersLive(new Listr([], { renderer: 'default', fallbackRenderer: 'simple' }))).toBe(false);
    } finally {
      process.stdout.isTTY = tty;
    }
  });
});

describe('runPipeline without a terminal', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('prints a step’s first and last progress, and every note', async () => {
    vi.useFakeTimers({ toFake: ['Date'] }); // the clock stands still: every update falls in one window
    const out: string[] = [];
    const capture = (chunk: unknown): boolean => {
      out.push(String(chunk));
      return true;
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
    const steps: Step<object>[] = [
      {
        title: 'Upload the box into the pool',
        async run(_c, _s, report) {
          for (let i = 1; i <= 77; i++) report.status(`${Math.floor((i / 77) * 100)} % of 19 MiB`);
        },
      },
      {
        title: 'Wait for SSH',
        async run(_c, _s, report) {
          for (let i = 1; i <= 24; i++) report.status(`attempt ${i}: ${i < 24 ? 'refused' : 'ok'}`);
          report.note('logged in with the insecure key: replacing it');
        },
      },
    ];
    await runPipeline(steps, {}, { renderer: 'simple' });
    const progress = out.join('').split('\n').filter((l) => l.includes('›'));
    expect(progress.map((l) => l.replace(/^.*› /, ''))).toEqual([
      '1 % of 19 MiB',
      '100 % of 19 MiB',
      'attempt 1: refused',
      'attempt 24: ok',
      'logged in with the insecure key: replacing it',
    ]);
  });
});
