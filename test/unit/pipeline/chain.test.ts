import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { chain, runChain, type Step } from '../../../src/pipeline/run.js';

interface Base {
  log: string[];
}

describe('runChain', () => {
  it('adds what each step returns to the context, for the steps after it and the caller', async () => {
    const box: Step<Base, { box: string }> = {
      title: 'box',
      run: async (ctx) => {
        ctx.log.push('box');
        return { box: 'debian' };
      },
    };
    const disk: Step<Base & { box: string }, { disk: string }> = {
      title: 'disk',
      run: async (ctx) => ({ disk: `${ctx.box}.qcow2` }),
    };
    const done = await runChain(chain<Base>().then(box).then(disk), { log: [] }, { renderer: 'silent' });
    expect(done).toMatchObject({ log: ['box'], box: 'debian', disk: 'debian.qcow2' });
  });

  it("a failed step's rollback sees what it set on the context before failing", async () => {
    const seen: (string | undefined)[] = [];
    const define: Step<Base, { domain: string }> = {
      title: 'define',
      run: async (ctx) => {
        ctx.domain = 'dom';
        throw new Error('start failed');
      },
      rollback: async (ctx) => void seen.push(ctx.domain),
    };
    await expect(runChain(chain<Base>().then(define), { log: [] }, { renderer: 'silent' })).rejects.toThrow('start failed');
    expect(seen).toEqual(['dom']);
  });

  it('tells how long each step that ran took', async () => {
    const times: string[] = [];
    const a: Step<Base> = { title: 'a', run: async () => undefined };
    const b: Step<Base> = { title: 'b', skip: () => true, run: async () => undefined };
    await runChain(chain<Base>().then(a).then(b), { log: [] }, { renderer: 'silent', onStepEnd: (t, ms) => times.push(`${t} ${ms >= 0}`) });
    expect(times).toEqual(['a true']);
  });
});

describe('the types of a chain', () => {
  it('refuse a step whose needs no earlier step met, a skippable step that adds a required field, and a step that returns less than it says', () => {
    const file = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'chain-types.ts');
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      exactOptionalPropertyTypes: false,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      skipLibCheck: true,
      types: [],
    });
    // An @ts-expect-error whose line compiles is itself an error (TS2578): weaker types fail here.
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
  }, 30_000);
});
