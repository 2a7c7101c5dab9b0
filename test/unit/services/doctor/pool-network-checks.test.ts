import { describe, expect, it } from 'vitest';
import { networkCheck, type NetworkFacts } from '../../../../src/services/doctor/network-check.js';
import { poolCheck, poolTargetPath, poolType, type PoolFacts } from '../../../../src/services/doctor/pool-check.js';
import type { Identity } from '../../../../src/hosts/qemu-user.js';
import { vmenvBridgeName } from '../../../../src/net/network.js';
import { networkXml, poolXml } from '../../../../src/libvirt/xml/index.js';
import type { UsedPrefix } from '../../../../src/net/subnet.js';

const qemu: Identity = { name: 'libvirt-qemu', uid: 64055, gid: 64055, groups: [64055] };
const base: PoolFacts = { name: 'default', source: 'default', uri: 'qemu:///system', state: 'active', type: 'dir', path: '/var/lib/libvirt/images', availableBytes: 20 * 1024 ** 3, access: { who: qemu, needWrite: false } };

describe('pool check', () => {
  it('an active pool QEMU can reach is ok, with its folder and free space', () => {
    expect(poolCheck(base)).toEqual({
      name: 'pool',
      status: 'ok',
      detail: "pool 'default' (the default) (dir at /var/lib/libvirt/images, 20 GiB free) is active; libvirt-qemu (QEMU's user) can reach files there",
      fix: null,
    });
  });

  it('a missing pool is a warning: vmenv up creates it, and the fix says how to make it by hand', () => {
    const c = poolCheck({ ...base, name: 'p', source: 'vmenv.yaml', state: 'missing', path: '/home/me/.local/share/vmenv/pools/p', access: { who: qemu, needWrite: false, missing: '/home/me/.local/share/vmenv' } });
    expect(c.status).toBe('warn');
    expect(c.detail).toContain("pool 'p' (from vmenv.yaml) does not exist on qemu:///system; 'vmenv up' creates it at /home/me/.local/share/vmenv/pools/p");
    expect(c.fix).toContain("virsh -c 'qemu:///system': pool-define-as p dir --target <folder>, pool-build p, pool-start p, pool-autostart p");
  });

  it('fails when QEMU could not reach the folder, naming it, its mode and owner', () => {
    const problem = { path: '/home/me', need: 'search' as const, mode: 'drwx------', uid: 1000, gid: 1000, owner: 'me', group: 'me' };
    const missing = poolCheck({ ...base, state: 'missing', path: '/home/me/.local/share/vmenv/pools/default', access: { who: qemu, needWrite: false, problem } });
    expect(missing.status).toBe('fail');
    expect(missing.detail).toContain("but libvirt-qemu (QEMU's user) cannot search /home/me (drwx------ me:me), so guests could not open their disks");
    expect(missing.fix).toMatch(/^sudo chmod o\+x \/home\/me \(or: sudo setfacl -m u:libvirt-qemu:x \/home\/me\)/);
    const active = poolCheck({ ...base, access: { who: qemu, needWrite: true, problem: { ...problem, path: '/var/lib/libvirt/images', need: 'write' } } });
    expect(active).toMatchObject({ status: 'fail', fix: expect.stringMatching(/^sudo chown libvirt-qemu \/var\/lib\/libvirt\/images/) });
  });

  it('an inactive pool is a warning that up starts it; a nearly full one is a warning too', () => {
    expect(poolCheck({ ...base, state: 'inactive' })).toMatchObject({ status: 'warn', fix: "virsh -c 'qemu:///system' pool-start default && virsh -c 'qemu:///system' pool-autostart default" });
    expect(poolCheck({ ...base, availableBytes: 100 * 1024 ** 2 })).toMatchObject({ status: 'warn', detail: expect.stringContaining('nearly full') });
  });

  it('says when file permissions could not be checked, and why', () => {
    expect(poolCheck({ ...base, access: { skipped: 'the pool is on another host' } }).detail).toContain('file permissions not checked: the pool is on another host');
    expect(poolCheck({ ...base, type: 'logical', path: undefined, access: undefined }).detail).toContain('not a folder, file permissions not checked');
  });

  it("reads a pool's type and target folder from its XML", () => {
    const xml = poolXml({ name: 'p', path: '/srv/pool' });
    expect(poolTargetPath(xml)).toBe('/srv/pool');
    expect(poolType(xml)).toBe('dir');
  });
});

const route = (address: string, prefix: number, dev: string): UsedPrefix => ({ address, prefix, dev, kind: 'route', text: `route ${address}/${prefix} dev ${dev}` });

function vmenvNet(name: string, subnet: string, active = true): NetworkFacts['networks'][number] {
  const [address] = subnet.split('/');
  const gw = address!.replace(/\.0$/, '.1');
  return {
    name,
    active,
    xml: networkXml({ name, bridge: { name: vmenvBridgeName(name) }, forward: { mode: 'nat' }, ipv4: { address: gw, prefix: 24, dhcp: { range: { start: gw.replace(/\.1$/, '.2'), end: gw.replace(/\.1$/, '.254') } } } }),
  };
}

const nat: NetworkFacts = { uri: 'qemu:///system', mode: 'nat', modeSource: 'default', name: 'vmenv', networks: [], host: { used: [route('10.0.0.0', 8, 'eth0')], where: 'this host' } };

describe('network check', () => {
  it('user-mode networking has no subnet to conflict', () => {
    expect(networkCheck({ ...nat, mode: 'user', modeSource: 'network.mode in vmenv.yaml' })).toMatchObject({ status: 'ok', detail: expect.stringContaining('user-mode networking (network.mode in vmenv.yaml)') });
  });

  it('a network to be created gets a free subnet; a configured one is checked against host routes', () => {
    expect(networkCheck(nat)).toMatchObject({ status: 'ok', detail: expect.stringContaining("creates network 'vmenv' on a free subnet (192.168.121.0/24 is free now)") });
    const taken = networkCheck({ ...nat, configuredSubnet: '10.1.2.0/24' });
    expect(taken.status).toBe('fail');
    expect(taken.detail).toBe('subnet conflict: network.subnet 10.1.2.0/24 is used by eth0 (route 10.0.0.0/8 dev eth0)');
    expect(taken.fix).toContain('(192.168.121.0/24 is free)');
    expect(networkCheck({ ...nat, configuredSubnet: '192.168.200.0/24' })).toMatchObject({ status: 'ok' });
  });

  it("an existing vmenv network is not in conflict with its own bridge's route, but is with another's", () => {
    const net = vmenvNet('vmenv', '192.168.121.0');
    const own = { ...nat, networks: [net], host: { used: [route('192.168.121.0', 24, vmenvBridgeName('vmenv'))], where: 'this host' } };
    expect(networkCheck(own)).toMatchObject({ status: 'ok', detail: expect.stringContaining("network 'vmenv' exists (192.168.121.0/24, active), no conflict") });
    const vpn = { ...nat, networks: [net], host: { used: [route('192.168.0.0', 16, 'tun0')], where: 'this host' } };
    const c = networkCheck(vpn);
    expect(c.status).toBe('fail');
    expect(c.detail).toBe("subnet conflict: network 'vmenv': 192.168.121.0/24 is used by tun0 (route 192.168.0.0/16 dev tun0)");
    expect(c.fix).toContain("'vmenv prune' removes unused vmenv networks");
  });

  it('checks every network vmenv owns, also against the other libvirt networks', () => {
    const c = networkCheck({ ...nat, name: 'other', networks: [vmenvNet('vmenv-a', '192.168.130.0'), vmenvNet('vmenv-b', '192.168.130.0', false)] });
    expect(c.status).toBe('fail');
    expect(c.detail).toContain("network 'vmenv-a': 192.168.130.0/24 is used by libvirt network 'vmenv-b'");
  });

  it('warns when network.subnet differs from the existing network, which keeps its own', () => {
    const c = networkCheck({ ...nat, configuredSubnet: '192.168.140.0/24', networks: [vmenvNet('vmenv', '192.168.121.0')] });
    expect(c.status).toBe('warn');
    expect(c.detail).toContain('network.subnet 192.168.140.0/24 is not used');
  });

  it('says when host routes were not read (libvirt on another host)', () => {
    expect(networkCheck({ ...nat, host: { skipped: 'libvirt is on another host' } }).detail).toContain('host routes not checked (libvirt is on another host)');
  });
});
