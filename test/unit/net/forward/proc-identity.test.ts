import { describe, expect, it } from 'vitest';
import { parseCmdline, parseProcStat, processIdentity, processStartTicks } from '../../../../src/util/proc-identity.js';

describe('process identity from /proc', () => {
  it('reads the state and start time, past a command name with spaces and parentheses', () => {
    const stat = '4242 (node) (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 10 3 0 0 20 0 11 0 1190248 1000000 5000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0';
    expect(parseProcStat(stat)).toEqual({ state: 'S', startTicks: 1190248 });
    expect(parseProcStat('4242 (zombie) Z 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 77 0 0')).toEqual({ state: 'Z', startTicks: 77 });
    expect(parseProcStat('garbage')).toBeUndefined();
    expect(parseProcStat('1 (x) S 1 2')).toBeUndefined();
  });

  it('splits the NUL-separated command line', () => {
    expect(parseCmdline('node\0/opt/vmenv/dist/net/forward/main.js\0--vmenv-forwarder\0{"mappings":[]}\0')).toEqual([
      'node',
      '/opt/vmenv/dist/net/forward/main.js',
      '--vmenv-forwarder',
      '{"mappings":[]}',
    ]);
    expect(parseCmdline('')).toEqual([]);
  });

  it('reads this very process, and nothing for a pid that cannot exist', () => {
    const me = processIdentity(process.pid);
    expect(me?.argv[0]).toMatch(/node/);
    expect(me?.state).toMatch(/^[RS]$/);
    expect(me?.startTicks).toBeGreaterThan(0);
    expect(processIdentity(0)).toBeUndefined();
    expect(processIdentity(2 ** 22 + 1)).toBeUndefined();
  });

  it('reads the start time alone, the same as the identity has it', () => {
    expect(processStartTicks(process.pid)).toBe(processIdentity(process.pid)?.startTicks);
    expect(processStartTicks(0)).toBeUndefined();
    expect(processStartTicks(2 ** 22 + 1)).toBeUndefined();
  });
});
