import { describe, expect, it } from 'vitest';
import { run, ToolError } from '../../../src/build/exec.js';
import { UserError } from '../../../src/errors.js';

describe('run', () => {
  it('returns the output of a tool that succeeds, and feeds it stdin', async () => {
    const lines: string[] = [];
    const r = await run('sh', ['-c', 'cat; echo err >&2'], { input: 'a\nb\n', onLine: (l) => lines.push(l) });
    expect(r.stdout).toBe('a\nb\n');
    expect(r.stderr).toBe('err\n');
    expect(lines.sort()).toEqual(['a', 'b', 'err']);
  });

  it('fails with the step, the command, the error lines first, the last output, and a hint', async () => {
    const err = (await run('sh', ['-c', 'echo one; echo "E: broken"; echo two; exit 3'], {
      what: 'doing the thing',
      display: 'thing-tool …',
      isErrorLine: (l) => l.startsWith('E: '),
      hintFor: (out) => (out.includes('E: broken') ? 'fix it' : undefined),
    }).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.exitStatus).toBe(3);
    expect(err.message).toBe("Doing the thing failed: 'thing-tool …' exited with status 3.\nErrors:\n  E: broken\nLast output:\n  one\n  two");
    expect(err.hint).toBe('fix it');
  });

  it('says which package to install when the tool is missing', async () => {
    const err = (await run('mmdebstrap-not-here', []).catch((e: unknown) => e)) as UserError;
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain("'mmdebstrap-not-here' is not installed");
  });

  it('stops the tool and its children when cancelled, and rejects with the reason', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const p = run('sh', ['-c', 'sleep 30 & sleep 30; wait'], { signal: controller.signal, killGraceMs: 1000 });
    setTimeout(() => controller.abort(new Error('stop')), 200);
    await expect(p).rejects.toThrow('stop');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
