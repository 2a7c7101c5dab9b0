import { describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../../src/errors.js';
import { plannedPrune } from '../../../src/inventory/prune.js';
import { pruneCount, removedCount, unreachableError, type PruneResult } from '../../../src/services/prune.js';

const stale = {
  uri: 'qemu:///session',
  domains: [{ name: 'p_web_1', uuid: '00000000-0000-0000-0000-000000000001', projectPath: '/gone', machine: 'web', active: false, reason: 'project gone' }],
  volumes: [
    { pool: 'default', name: 'p_web_1.qcow2', resourceName: 'p_web_1', reason: 'domain gone' },
    { pool: 'default', name: 'p_web_1-seed.iso', resourceName: 'p_web_1', reason: 'domain gone' },
  ],
  networks: [{ name: 'vmenv-nat', reason: 'unused' }],
  kept: ['volume default/x: may be an up under way'],
};
const index = [{ id: 'abc', machine: 'web', project: '/gone', uri: 'qemu:///session', reason: 'project folder is gone' as const, removed: false }];

describe('pruneCount', () => {
  it('counts the domains, volumes, networks and index entries a plan names', () => {
    expect(pruneCount(plannedPrune(stale, index))).toBe(5);
  });
  it('is 0 for nothing stale (kept resources do not count)', () => {
    expect(pruneCount(plannedPrune({ ...stale, domains: [], volumes: [], networks: [] }, []))).toBe(0);
  });
});

describe('removedCount', () => {
  it('counts only what was removed', () => {
    const planned = plannedPrune(stale, index);
    const result: PruneResult = {
      ...planned,
      dryRun: false,
      domains: planned.domains.map((d) => ({ ...d, removed: true })),
      volumes: [{ ...planned.volumes[0]!, removed: true }, { ...planned.volumes[1]!, removed: false, error: 'busy' }],
      networks: planned.networks.map((n) => ({ ...n, removed: false, skipped: 'a domain uses it now' })),
      index: planned.index.map((e) => ({ ...e, removed: true })),
      failed: 1,
    };
    expect(removedCount(result)).toBe(3);
  });
  it('is 0 for a dry run', () => {
    expect(removedCount(plannedPrune(stale, index))).toBe(0);
  });
});

describe('unreachableError', () => {
  it("names the URI and libvirt's error, with the probe's hint", () => {
    const err = unreachableError({ ok: false, uri: 'qemu:///system', reason: 'default', cause: 'permission-denied', error: 'EACCES', hint: 'Join the libvirt group.' });
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe('cannot reach libvirt at qemu:///system: EACCES');
    expect(err.hint).toBe('Join the libvirt group.');
    expect(err.exitCode).toBe(ExitCode.unavailable);
  });
  it('is a usage error for a URI that does not parse, and says so when libvirt gave no error', () => {
    const err = unreachableError({ ok: false, uri: 'nope://', reason: '--uri', cause: 'bad-uri' });
    expect(err.message).toBe('cannot reach libvirt at nope://: unknown error');
    expect(err.hint).toBeUndefined();
    expect(err.exitCode).toBe(ExitCode.usage);
  });
});
