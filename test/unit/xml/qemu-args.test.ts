import { describe, expect, it } from 'vitest';
import { XmlSpecError, qemuOptValue, userNetQemuArgs } from '../../../src/libvirt/xml/index.js';

describe('userNetQemuArgs', () => {
  it('builds -netdev user with hostfwd and a -device for the model', () => {
    expect(
      userNetQemuArgs({
        id: 'net0',
        mac: '52:54:00:12:34:56',
        portForwards: [{ hostPort: 2222, guestPort: 22 }, { protocol: 'udp', hostAddress: '0.0.0.0', hostPort: 53, guestPort: 53 }],
      }),
    ).toEqual([
      '-netdev',
      'user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:0.0.0.0:53-:53',
      '-device',
      'virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56',
    ]);
  });

  it('maps models and boot order', () => {
    expect(userNetQemuArgs({ id: 'n', model: 'rtl8139', bootOrder: 2 })).toEqual([
      '-netdev',
      'user,id=n',
      '-device',
      'rtl8139,netdev=n,bootindex=2',
    ]);
  });

  it('rejects bad ids, MACs and ports', () => {
    expect(() => userNetQemuArgs({ id: 'a,b' })).toThrow(XmlSpecError);
    expect(() => userNetQemuArgs({ id: '0n' })).toThrow(XmlSpecError);
    expect(() => userNetQemuArgs({ id: 'n', mac: 'x' })).toThrow(XmlSpecError);
    expect(() => userNetQemuArgs({ id: 'n', portForwards: [{ hostPort: 0, guestPort: 22 }] })).toThrow(XmlSpecError);
    expect(() => userNetQemuArgs({ id: 'n', portForwards: [{ hostPort: 1, guestPort: 65536 }] })).toThrow(XmlSpecError);
  });

  it('doubles commas in option values', () => {
    expect(qemuOptValue('a,b,,c')).toBe('a,,b,,,,c');
  });
});
