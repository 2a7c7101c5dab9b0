import { describe, expect, it } from 'vitest';
import { LibvirtHost } from '../../../src/hosts/libvirt-host.js';

const host = (uri: string, env: NodeJS.ProcessEnv = {}): LibvirtHost => LibvirtHost.of(uri, env);

describe("files of libvirt that vmenv reads on this host", () => {
  it("dnsmasq's lease folder only for a system libvirt on this host", () => {
    expect(host('qemu:///system').leaseDir).toBe('/var/lib/libvirt/dnsmasq');
    expect(host('qemu:///system?socket=/run/x/libvirt-sock').leaseDir).toBe('/var/lib/libvirt/dnsmasq');
    expect(host('qemu+unix:///system').leaseDir).toBe('/var/lib/libvirt/dnsmasq');
    expect(host('qemu:///session').leaseDir).toBeUndefined();
    expect(host('qemu+ssh://me@far/system').leaseDir).toBeUndefined();
    expect(host('qemu+tcp://127.0.0.1/system').leaseDir).toBeUndefined();
  });

  it('the serial console log, not for a remote host', () => {
    expect(host('qemu:///system').serialLogPath('app_default_1234')).toBe('/var/log/libvirt/qemu/app_default_1234-serial.log');
    expect(host('qemu+ssh://me@far/system').serialLogPath('x')).toBeUndefined();
  });

  it("a remote host's console log is not read", async () => {
    expect(await host('qemu+ssh://me@far/system').consoleTail('x')).toEqual(['(the console log is on the remote libvirt host)']);
  });

  it('a guest agent socket of its own only for a local session daemon', () => {
    expect(host('qemu:///session').agentSocketPath('p_default_1')).toMatch(/\/[0-9a-f]{16}\.agent$/);
    expect(host('qemu:///system').agentSocketPath('p_default_1')).toBeUndefined();
    expect(host('qemu+ssh://me@far/session').agentSocketPath('p_default_1')).toBeUndefined();
  });

  it('new pools: libvirt\'s image folder on a system daemon, the data folder on a session one', () => {
    expect(host('qemu:///system').newPoolPath('default')).toBe('/var/lib/libvirt/images');
    expect(host('qemu+ssh://me@far/system').newPoolPath('mine')).toBe('/var/lib/libvirt/vmenv-pools/mine');
    expect(host('qemu:///session').newPoolPath('mine')).toMatch(/\/pools\/mine$/);
  });
});

describe('how guests are reached', () => {
  it('directly, unless VMENV_GUEST_NETNS names the namespace libvirtd runs in', () => {
    const direct = host('qemu:///system');
    expect(direct.reach).toEqual({ via: 'direct' });
    expect(direct.guestNetns).toBeUndefined();
    expect(direct.sshProxyCommand).toBeUndefined();
    const inside = host('qemu:///system', { VMENV_GUEST_NETNS: 'vmenv-test' });
    expect(inside.reach).toEqual({ via: 'netns', netns: 'vmenv-test' });
    expect(inside.guestNetns).toBe('vmenv-test');
    expect(inside.sshProxyCommand).toBe('ip netns exec vmenv-test nc %h %p');
  });

  it('user-mode networking is the default on a session daemon, NAT elsewhere', () => {
    expect(host('qemu:///session').defaultNetworkMode).toBe('user');
    expect(host('qemu:///system').defaultNetworkMode).toBe('nat');
  });
});
