import { describe, expect, it } from 'vitest';
import { doctorExitCode, staleCheck, type Check, type DoctorReport } from '../../../../src/services/doctor/doctor.js';
import { renderDoctorReport } from '../../../../src/services/doctor/report.js';
import type { StaleResources } from '../../../../src/inventory/stale.js';

const ok = (name: string, detail = 'fine'): Check => ({ name, status: 'ok', detail, fix: null });

function report(checks: Check[]): DoctorReport {
  const exitCode = doctorExitCode(checks);
  return { ok: exitCode === 0, exitCode, domainType: 'qemu', uri: 'qemu:///system', checks };
}

describe('doctor exit code', () => {
  it('is 0 with warnings only, 3 when libvirt fails, 1 for another failure', () => {
    expect(doctorExitCode([ok('node'), { ...ok('pool'), status: 'warn', fix: 'x' }, { ...ok('stale'), status: 'skip' }])).toBe(0);
    expect(doctorExitCode([ok('node'), { ...ok('pool'), status: 'fail', fix: 'x' }])).toBe(1);
    expect(doctorExitCode([{ ...ok('libvirt'), status: 'fail', fix: 'x' }, { ...ok('pool'), status: 'fail', fix: 'x' }])).toBe(3);
  });
});

describe('doctor report text', () => {
  it('one line per check with its mark, the items, and a Fix line under each check that is not ok', () => {
    const text = renderDoctorReport(
      report([
        ok('node', 'node 20.1.0'),
        { name: 'virtualization', status: 'warn', detail: 'qemu: software emulation', fix: 'enable VT-x' },
        { name: 'pool', status: 'fail', detail: 'cannot search /root', fix: 'chmod o+x /root' },
        { name: 'stale', status: 'warn', detail: '1 domain', fix: 'vmenv prune', items: ['domain a: project folder is gone (/p)'] },
        { name: 'network', status: 'skip', detail: 'not checked', fix: null },
      ]),
    );
    expect(text.split('\n')).toEqual([
      '[ ok ] node            node 20.1.0',
      '[warn] virtualization  qemu: software emulation',
      '                       Fix: enable VT-x',
      '[FAIL] pool            cannot search /root',
      '                       Fix: chmod o+x /root',
      '[warn] stale           1 domain',
      '                       - domain a: project folder is gone (/p)',
      '                       Fix: vmenv prune',
      '[skip] network         not checked',
      '',
      '1 problem to fix, 2 warnings.',
    ]);
  });

  it('says ready when nothing failed, and to fix libvirt first when it cannot be reached', () => {
    expect(renderDoctorReport(report([ok('node'), { ...ok('pool'), status: 'warn', fix: 'f' }]))).toMatch(/\nReady: guests will run as 'qemu' domains on qemu:\/\/\/system \(1 warning\)\.$/);
    expect(renderDoctorReport(report([ok('node')]))).toMatch(/\nReady: guests will run as 'qemu' domains on qemu:\/\/\/system\.$/);
    const down = renderDoctorReport(report([{ name: 'libvirt', status: 'fail', detail: 'socket missing', fix: 'start it' }, { ...ok('tool'), status: 'fail', fix: 'x' }]));
    expect(down).toMatch(/\nlibvirt cannot be reached at qemu:\/\/\/system: fix that first \(2 problems in all\)\.$/);
  });

  it('colours the marks only when asked', () => {
    expect(renderDoctorReport(report([ok('node')]), { color: true })).toContain('[\u001B[32m ok \u001B[0m] node');
    expect(renderDoctorReport(report([ok('node')]))).not.toContain('\u001B[');
  });
});

describe('stale check', () => {
  const none: StaleResources = { uri: 'qemu:///system', domains: [], volumes: [], networks: [], kept: [] };

  it('is ok when nothing is stale', () => {
    expect(staleCheck(none, [])).toMatchObject({ status: 'ok', fix: null });
  });

  it('warns with every stale resource listed and the prune command', () => {
    const c = staleCheck(
      {
        ...none,
        domains: [{ name: 'shop_web_1', uuid: 'u', projectPath: '/p', machine: 'web', active: false, reason: 'project folder is gone (/p)' }],
        volumes: [{ pool: 'default', name: 'shop_web_1.qcow2', resourceName: 'shop_web_1', reason: 'its domain shop_web_1 is stale' }],
        networks: [],
      },
      [{ machine: 'web', project: '/p', reason: 'project folder is gone' }],
      "vmenv prune --uri 'qemu:///system'",
    );
    expect(c).toMatchObject({ status: 'warn', detail: 'left behind by projects that are gone, on qemu:///system: 1 domain, 1 volume, 1 machine index entry' });
    expect(c.items).toEqual([
      'domain shop_web_1: project folder is gone (/p)',
      'volume default/shop_web_1.qcow2: its domain shop_web_1 is stale',
      'index entry web (/p): project folder is gone',
    ]);
    expect(c.fix).toBe("vmenv prune --uri 'qemu:///system' (vmenv prune --uri 'qemu:///system' --dry-run lists what it would remove)");
  });

  it('counts index entries in the plural as entries', () => {
    const entries = [
      { machine: 'web', project: '/p', reason: 'project folder is gone' },
      { machine: 'db', project: '/p', reason: 'project folder is gone' },
    ];
    expect(staleCheck(none, entries).detail).toBe('left behind by projects that are gone, on qemu:///system: 2 machine index entries');
  });
});
