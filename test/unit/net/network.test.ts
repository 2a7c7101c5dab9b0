import { describe, expect, it } from 'vitest';
import { networkXml } from '../../../src/libvirt/xml/index.js';
import { isVmenvNetworkXml, vmenvBridgeName } from '../../../src/net/network.js';

describe("vmenv's mark on its networks", () => {
  it('is a bridge name of at most 15 characters, stable per network name', () => {
    expect(vmenvBridgeName('vmenv')).toMatch(/^vmenv-[0-9a-f]{8}$/);
    expect(vmenvBridgeName('vmenv').length).toBeLessThanOrEqual(15);
    expect(vmenvBridgeName('vmenv')).toBe(vmenvBridgeName('vmenv'));
    expect(vmenvBridgeName('other')).not.toBe(vmenvBridgeName('vmenv'));
  });

  it("is recognised in the network's XML, and nothing else is", () => {
    const ours = networkXml({ name: 'vmenv', bridge: { name: vmenvBridgeName('vmenv') }, forward: { mode: 'nat' }, ipv4: { address: '192.0.2.1', prefix: 24 } });
    expect(isVmenvNetworkXml(ours)).toBe(true);
    expect(isVmenvNetworkXml(ours.replace(/'/g, '"'))).toBe(true);
    expect(isVmenvNetworkXml(networkXml({ name: 'default', bridge: { name: 'virbr0' }, ipv4: { address: '192.0.2.1', prefix: 24 } }))).toBe(false);
    expect(isVmenvNetworkXml(networkXml({ name: 'x', bridge: { name: 'vmenv-bridge' }, ipv4: { address: '192.0.2.1', prefix: 24 } }))).toBe(false);
    expect(isVmenvNetworkXml("<network><name>vmenv-12345678</name><bridge name='virbr1'/></network>")).toBe(false);
  });

  it('passes dnsmasq options through, and refuses what is not one', () => {
    expect(networkXml({ name: 'n', ipv4: { address: '192.0.2.1', prefix: 24 }, dnsmasqOptions: ['no-ping'] })).toContain("<dnsmasq:option value='no-ping'/>");
    expect(() => networkXml({ name: 'n', ipv4: { address: '192.0.2.1', prefix: 24 }, dnsmasqOptions: ['no-ping; rm -rf'] })).toThrow(/dnsmasqOptions\[0\]/);
  });
});
