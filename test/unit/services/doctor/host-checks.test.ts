import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { libvirtCheck, nodeCheck, toolCheck, virtualizationCheck } from '../../../../src/services/doctor/doctor.js';
import { describeDefaultUri, formatLibvirtVersion } from '../../../../src/services/doctor/libvirt-probe.js';
import { findOnPath, hostTools, lookupTool } from '../../../../src/hosts/tools.js';
import { cpuVirtFlag, detectVirtualization, explainKvmOpenError } from '../../../../src/hosts/virtualization.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmenv-cli-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const intelCpuinfo = `processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr vmx ept\n\nprocessor\t: 1\nflags\t\t: fpu vme vmx\n`;
const amdCpuinfo = `processor\t: 0\nflags\t\t: fpu svm npt\n`;
const plainCpuinfo = `processor\t: 0\nflags\t\t: fpu vme de pse tsc msr hypervisor\nvmx flags\t: ept\n`;

describe('virtualization', () => {
  it('finds vmx or svm in the flags line only', () => {
    expect(cpuVirtFlag(intelCpuinfo)).toBe('vmx');
    expect(cpuVirtFlag(amdCpuinfo)).toBe('svm');
    // "vmx flags" is a different line and does not mean the CPU offers VT-x to us.
    expect(cpuVirtFlag(plainCpuinfo)).toBeUndefined();
    expect(cpuVirtFlag('')).toBeUndefined();
  });

  it('explains why /dev/kvm does not open', () => {
    expect(explainKvmOpenError('ENOENT').reason).toContain('does not exist');
    expect(explainKvmOpenError('EACCES').fix).toContain('kvm');
    expect(explainKvmOpenError(undefined).reason).toContain('unknown error');
  });

  it('says kvm when the CPU has the flag and the device opens read-write', async () => {
    const cpuinfoPath = join(dir, 'cpuinfo-intel');
    const kvmPath = join(dir, 'kvm');
    await writeFile(cpuinfoPath, intelCpuinfo);
    await writeFile(kvmPath, '');
    expect(await detectVirtualization({ cpuinfoPath, kvmPath })).toEqual({ domainType: 'kvm', cpuFlag: 'vmx' });
  });

  it('says qemu, with the reason, otherwise', async () => {
    const cpuinfoPath = join(dir, 'cpuinfo-amd');
    await writeFile(cpuinfoPath, amdCpuinfo);
    const missing = await detectVirtualization({ cpuinfoPath, kvmPath: join(dir, 'no-such-kvm') });
    expect(missing).toMatchObject({ domainType: 'qemu', cpuFlag: 'svm' });
    expect(missing.reason).toContain('does not exist');

    const plainPath = join(dir, 'cpuinfo-plain');
    await writeFile(plainPath, plainCpuinfo);
    const noFlag = await detectVirtualization({ cpuinfoPath: plainPath, kvmPath: join(dir, 'kvm') });
    expect(noFlag.domainType).toBe('qemu');
    expect(noFlag.reason).toContain('vmx or svm');

    const unreadable = await detectVirtualization({ cpuinfoPath: join(dir, 'none') });
    expect(unreadable.domainType).toBe('qemu');
  });

  it('turns the result into a check: ok for kvm, warn for qemu', () => {
    expect(virtualizationCheck({ domainType: 'kvm', cpuFlag: 'svm' }).status).toBe('ok');
    const warn = virtualizationCheck({ domainType: 'qemu', reason: 'the CPU does not advertise vmx or svm', fix: 'f' });
    expect(warn).toEqual({ name: 'virtualization', status: 'warn', detail: expect.stringContaining('the CPU does not advertise vmx or svm'), fix: 'f' });
    // The consequence is said: software emulation, domain type qemu, slower.
    expect(warn.detail).toMatch(/software emulation \(domain type 'qemu'\), many times slower/);
  });
});

describe('host tools', () => {
  it('finds executables on PATH, like command -v', async () => {
    const bin = join(dir, 'bin');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'xorriso'), '#!/bin/sh\n');
    await chmod(join(bin, 'xorriso'), 0o755);
    await writeFile(join(bin, 'genisoimage'), 'not executable');
    const path = `/nonexistent::${bin}`;
    expect(await findOnPath('xorriso', path)).toBe(join(bin, 'xorriso'));
    expect(await findOnPath('genisoimage', path)).toBeUndefined();
    expect(await findOnPath('bin', dir)).toBeUndefined(); // a directory is not a program

    const iso = hostTools.find((t) => t.name === 'iso-tool');
    expect(iso).toBeDefined();
    const lookup = await lookupTool(iso!, path);
    expect(lookup.found).toEqual({ program: 'xorriso', path: join(bin, 'xorriso') });
    expect(toolCheck(lookup).status).toBe('ok');
  });

  it('fails a missing required tool and warns for an optional one, with the package', async () => {
    const qemuImg = hostTools.find((t) => t.name === 'qemu-img')!;
    const virsh = hostTools.find((t) => t.name === 'virsh')!;
    const missing = toolCheck(await lookupTool(qemuImg, '/nonexistent'));
    expect(missing).toMatchObject({ status: 'fail', fix: 'sudo apt-get install qemu-utils' });
    expect(toolCheck(await lookupTool(virsh, '/nonexistent')).status).toBe('warn');
  });

  it('lists the tools the brief requires', () => {
    expect(hostTools.map((t) => t.name)).toEqual([
      'qemu-system-x86_64',
      'qemu-img',
      'virsh',
      'rsync',
      'ssh',
      'iso-tool',
    ]);
  });
});

describe('node and libvirt checks', () => {
  it('needs node 20 or newer', () => {
    expect(nodeCheck('20.1.0').status).toBe('ok');
    expect(nodeCheck('22.3.0').status).toBe('ok');
    expect(nodeCheck('18.19.0')).toMatchObject({ status: 'fail', fix: expect.stringContaining('20') });
  });

  it('decodes libvirt versions', () => {
    expect(formatLibvirtVersion(9_000_000n)).toBe('9.0.0');
    expect(formatLibvirtVersion(10_010_002n)).toBe('10.10.2');
    expect(formatLibvirtVersion(8_000_123)).toBe('8.0.123');
  });

  it('describes the default URI from the environment', () => {
    expect(describeDefaultUri({ VMENV_LIBVIRT_URI: 'qemu:///session' })).toBe('qemu:///session');
    expect(describeDefaultUri({ LIBVIRT_DEFAULT_URI: 'qemu:///system' })).toBe('qemu:///system');
    expect(describeDefaultUri({})).toMatch(/^default/);
  });

  it('turns a probe into a check, with why this URI and why it failed', () => {
    expect(libvirtCheck({ ok: true, uri: 'qemu:///session', reason: 'set by $VMENV_LIBVIRT_URI', version: '9.0.0', hostname: 'h' })).toEqual({
      name: 'libvirt',
      status: 'ok',
      detail: 'libvirt 9.0.0 at qemu:///session on h (set by $VMENV_LIBVIRT_URI)',
      fix: null,
    });
    const fail = libvirtCheck({ ok: false, uri: 'qemu:///system', reason: 'given with --uri', cause: 'daemon-down', error: 'daemon down: …', hint: 'start it' });
    expect(fail).toMatchObject({ status: 'fail', fix: 'start it', cause: 'daemon-down' });
    expect(fail.detail).toBe('cannot use libvirt at qemu:///system (given with --uri): daemon down: …');
    expect(libvirtCheck({ ok: false, uri: 'u', reason: 'r', error: 'e' }).fix).toContain('apt-get install');
  });
});
