import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PipelineError, runPipeline, type Step } from '../../../src/pipeline/run.js';

interface Ctx {
  log: string[];
}

function step(name: string, opts: { fail?: boolean; rollbackFails?: boolean; skip?: boolean; slowMs?: number; noRollback?: boolean } = {}): Step<Ctx> {
  return {
    title: name,
    ...(opts.skip ? { skip: () => 'already done' } : {}),
    async run(ctx, signal) {
      if (opts.slowMs) {
        // A step that honours the signal: it stops early, leaving what it made so far recorded.
        const until = Date.now() + opts.slowMs;
        while (Date.now() < until && !signal.aborted) await sleep(5);
      }
      if (opts.fail) throw new Error(`${name} failed`);
      ctx.log.push(`run ${name}`);
    },
    ...(opts.noRollback
      ? {}
      : {
          async rollback(ctx: Ctx) {
            ctx.log.push(`rollback ${name}`);
            if (opts.rollbackFails) throw new Error(`cannot undo ${name}`);
          },
        }),
  };
}

// The same behaviour without a display (a plain loop) and with listr2's line renderer.
describe.each(['silent', 'simple'] as const)('runPipeline (%s)', (renderer) => {
  beforeEach(() => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('runs every step in order and rolls nothing back on success', async () => {
    const ctx: Ctx = { log: [] };
    await runPipeline([step('a'), step('b'), step('c')], ctx, { renderer });
    expect(ctx.log).toEqual(['run a', 'run b', 'run c']);
  });

  it('skips steps that say so', async () => {
    const ctx: Ctx = { log: [] };
    await runPipeline([step('a'), step('b', { skip: true }), step('c')], ctx, { renderer });
    expect(ctx.log).toEqual(['run a', 'run c']);
  });

  it('rolls back the failed step, then the completed ones newest first, and throws the step error', async () => {
    const ctx: Ctx = { log: [] };
    const err = await runPipeline([step('volume'), step('seed', { noRollback: true }), step('domain'), step('ip', { fail: true })], ctx, {
      renderer,
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('ip failed');
    expect(ctx.log).toEqual(['run volume', 'run seed', 'run domain', 'rollback ip', 'rollback domain', 'rollback volume']);
  });

  it('keeps going when a rollback fails and reports what was left', async () => {
    const ctx: Ctx = { log: [] };
    const rolled: string[] = [];
    const err = await runPipeline([step('a'), step('b', { rollbackFails: true }), step('c', { fail: true })], ctx, {
      renderer,
      onRollback: (t, e) => rolled.push(e ? `${t}: ${e.message}` : t),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    const pe = err as PipelineError;
    expect(pe.step).toBe('c');
    expect(pe.cause.message).toBe('c failed');
    expect(pe.rollbackErrors.map((r) => r.step)).toEqual(['b']);
    expect(rolled).toEqual(['c', 'b: cannot undo b', 'a']);
  });

  it('names the failed step when an earlier one was skipped', async () => {
    const ctx: Ctx = { log: [] };
    const err = await runPipeline([step('a', { rollbackFails: true }), step('b', { skip: true }), step('c'), step('d', { fail: true })], ctx, {
      renderer,
    }).catch((e: unknown) => e);
    expect((err as PipelineError).step).toBe('d');
  });

  it('leaves everything in place with rollbackOnError: false', async () => {
    const ctx: Ctx = { log: [] };
    await expect(runPipeline([step('a'), step('b', { fail: true })], ctx, { renderer, rollbackOnError: false })).rejects.toThrow(
      'b failed',
    );
    expect(ctx.log).toEqual(['run a']);
  });

  it('on abort (Ctrl-C) lets the running step finish, then rolls back everything made', async () => {
    const ctx: Ctx = { log: [] };
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('interrupted')), 30);
    const err = await runPipeline([step('a'), step('slow', { slowMs: 2000 }), step('never')], ctx, {
      renderer,
      signal: ac.signal,
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('interrupted');
    expect(ctx.log).toEqual(['run a', 'run slow', 'rollback slow', 'rollback a']);
  });
});
