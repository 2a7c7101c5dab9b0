import { describe, expect, it } from 'vitest';
import { localLeaseDir, serialLogPath } from '../../../src/lifecycle/up.js';

describe("files of libvirt that vmenv reads on this host", () => {
  it("dnsmasq's lease folder only for a system libvirt on this host", () => {
    expect(localLeaseDir('qemu:///system')).toBe('/var/lib/libvirt/dnsmasq');
    expect(localLeaseDir('qemu:///system?socket=/run/x/libvirt-sock')).toBe('/var/lib/libvirt/dnsmasq');
    expect(localLeaseDir('qemu+unix:///system')).toBe('/var/lib/libvirt/dnsmasq');
    expect(localLeaseDir('qemu:///session')).toBeUndefined();
    expect(localLeaseDir('qemu+ssh://me@far/system')).toBeUndefined();
    expect(localLeaseDir('qemu+tcp://127.0.0.1/system')).toBeUndefined();
  });

  it('the serial console log, not for a remote host', () => {
    expect(serialLogPath('qemu:///system', 'app_default_1234')).toBe('/var/log/libvirt/qemu/app_default_1234-serial.log');
    expect(serialLogPath('qemu+ssh://me@far/system', 'x')).toBeUndefined();
  });
});
