/** The kvm-device check of `vmenv doctor`: its verdict for each device mode and QEMU user. */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatherKvmDeviceFacts, kvmDeviceCheck } from '../../../../src/services/doctor/kvm-device-check.js';
import type { Identity } from '../../../../src/hosts/qemu-user.js';

const qemu: Identity = { name: 'libvirt-qemu', uid: 64055, gid: 107, groups: [107, 64055] };
const device = (mode: number, gid: number, group: string) => ({ mode, uid: 0, gid, owner: 'root', group });

describe('kvmDeviceCheck', () => {
  it("warns when root can open /dev/kvm and QEMU's user cannot (no udev: root:root 0600), with the udev rule's fix", () => {
    const c = kvmDeviceCheck({ path: '/dev/kvm', device: device(0o600, 0, 'root'), qemu });
    expect(c.status).toBe('warn');
    expect(c.cause).toBe('qemu-user-cannot-open-kvm');
    expect(c.detail).toContain('/dev/kvm (crw------- root:root)');
    expect(c.detail).toContain('libvirt-qemu');
    expect(c.detail).toMatch(/probes QEMU again/);
    expect(c.fix).toBe("sudo chgrp kvm /dev/kvm && sudo chmod 0660 /dev/kvm (what Debian's udev rule gives it; a host without udev needs this after each boot)");
  });

  it("warns for a group QEMU's user is not in, and for read without write", () => {
    expect(kvmDeviceCheck({ path: '/dev/kvm', device: device(0o660, 0, 'root'), qemu }).status).toBe('warn');
    expect(kvmDeviceCheck({ path: '/dev/kvm', device: device(0o640, 107, 'kvm'), qemu }).status).toBe('warn');
  });

  it('is ok for root:kvm 0660 (Debian with udev) and for 0666', () => {
    const c = kvmDeviceCheck({ path: '/dev/kvm', device: device(0o660, 107, 'kvm'), qemu });
    expect(c).toMatchObject({ status: 'ok', fix: null });
    expect(c.detail).toContain('/dev/kvm (crw-rw---- root:kvm) opens for libvirt-qemu');
    expect(kvmDeviceCheck({ path: '/dev/kvm', device: device(0o666, 0, 'root'), qemu }).status).toBe('ok');
  });

  it('is ok without a /dev/kvm, and skipped where it does not apply or QEMU’s user is unknown', () => {
    expect(kvmDeviceCheck({ path: '/dev/kvm' })).toMatchObject({ status: 'ok', fix: null });
    expect(kvmDeviceCheck({ path: '/dev/kvm', notApplicable: 'libvirt runs on another host' })).toMatchObject({ status: 'skip', detail: 'libvirt runs on another host' });
    const unknown = kvmDeviceCheck({ path: '/dev/kvm', device: device(0o600, 0, 'root'), qemu: "libvirt's capabilities name no DAC label for QEMU" });
    expect(unknown.status).toBe('skip');
    expect(unknown.detail).toContain('no DAC label');
  });
});

describe('gatherKvmDeviceFacts', () => {
  it("asks for QEMU's user through the function it is given, and only when the device is there", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmenv-kvm-'));
    try {
      const path = join(dir, 'kvm');
      await writeFile(path, '');
      await chmod(path, 0o660);
      let asked = 0;
      const who = async (): Promise<Identity> => {
        asked++;
        return qemu;
      };
      const facts = await gatherKvmDeviceFacts({ local: true, userDaemon: false, qemu: who, path });
      expect(facts.qemu).toEqual(qemu);
      expect(facts.device?.mode).toBe(0o660);
      expect(asked).toBe(1);
      expect(await gatherKvmDeviceFacts({ local: true, userDaemon: false, qemu: who, path: join(dir, 'none') })).toEqual({ path: join(dir, 'none') });
      expect((await gatherKvmDeviceFacts({ local: false, userDaemon: false, qemu: who, path })).notApplicable).toBe('libvirt runs on another host');
      expect(asked).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
