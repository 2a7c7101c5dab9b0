import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addressesClash, parseProcNet, procHexAddress, socketsHoldingPort, TCP_LISTEN } from '../../../../src/net/forward/proc-net.js';

/**
 * Real tables from Linux 6.x on x86-64 (little-endian), taken while a node process held
 * tcp 127.0.0.1:8080 (with one connection to it), tcp [::1]:8443, tcp 0.0.0.0:9000,
 * tcp [::]:9001, udp 127.0.0.1:5353, udp [::]:5354 and udp [::ffff:127.0.0.1]:5355.
 */
const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const tcp = [...parseProcNet(fixture('proc-net-tcp'), 'LE'), ...parseProcNet(fixture('proc-net-tcp6'), 'LE')];
const udp = [...parseProcNet(fixture('proc-net-udp'), 'LE'), ...parseProcNet(fixture('proc-net-udp6'), 'LE')];

describe('/proc/net socket tables', () => {
  it('reads every socket line of the real files and skips the headers', () => {
    expect(parseProcNet(fixture('proc-net-tcp'), 'LE')).toHaveLength(10);
    expect(parseProcNet(fixture('proc-net-tcp6'), 'LE')).toHaveLength(2);
    expect(udp).toHaveLength(3);
  });

  it('reads a listening IPv4 socket: address, port, state, uid, inode', () => {
    expect(tcp.find((s) => s.inode === 2181504)).toEqual({
      family: 4,
      localIp: '127.0.0.1',
      localPort: 8080,
      remoteIp: '0.0.0.0',
      remotePort: 0,
      state: TCP_LISTEN,
      uid: 0,
      inode: 2181504,
    });
  });

  it('reads an established connection with both ends', () => {
    const c = tcp.find((s) => s.inode === 2181512);
    expect(c).toMatchObject({ localIp: '127.0.0.1', localPort: 56298, remoteIp: '127.0.0.1', remotePort: 8080, state: 1 });
  });

  it('reads IPv6 addresses word by word, and IPv4-mapped ones as ::ffff:a.b.c.d', () => {
    expect(tcp.find((s) => s.inode === 2181505)).toMatchObject({ family: 6, localIp: '::1', localPort: 8443 });
    expect(tcp.find((s) => s.inode === 2181508)).toMatchObject({ family: 6, localIp: '::', localPort: 9001 });
    expect(udp.find((s) => s.inode === 2181511)).toMatchObject({ family: 6, localIp: '::ffff:127.0.0.1', localPort: 5355, state: 7 });
  });

  it('keeps TIME_WAIT entries with inode 0', () => {
    expect(tcp.filter((s) => s.state === 6).every((s) => s.inode === 0)).toBe(true);
    expect(tcp.filter((s) => s.state === 6)).toHaveLength(4);
  });

  it('reads words in the byte order it is told', () => {
    expect(procHexAddress('0100007F', 'LE')).toEqual({ family: 4, ip: '127.0.0.1' });
    expect(procHexAddress('7F000001', 'BE')).toEqual({ family: 4, ip: '127.0.0.1' });
    expect(procHexAddress('00000000000000000000000000000001', 'BE')).toEqual({ family: 6, ip: '::1' });
    expect(procHexAddress('FE800000000000000000000000000001', 'BE')?.ip).toBe('fe80::1');
    expect(procHexAddress('0100007', 'LE')).toBeUndefined();
    expect(procHexAddress('XX00007F', 'LE')).toBeUndefined();
  });

  it('skips lines it cannot read instead of guessing', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1',
      '   1: 0100007F:1F9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 78 1',
      '   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 x 1',
      '   3: 0100007F:1F90 00000000:0000 0A',
      'garbage',
      '',
    ].join('\n');
    expect(parseProcNet(text, 'LE').map((s) => s.inode)).toEqual([77]);
  });
});

describe('which sockets hold a port', () => {
  const inodes = (list: { inode: number }[]): number[] => list.map((s) => s.inode).sort();

  it('TCP: only listening sockets, not connections on the same port', () => {
    expect(inodes(socketsHoldingPort(tcp, 8080, 'tcp', '127.0.0.1'))).toEqual([2181504]);
    expect(inodes(socketsHoldingPort(tcp, 8080, 'tcp'))).toEqual([2181504]);
  });

  it('a wildcard socket holds the port for a specific address, and the other way round', () => {
    expect(inodes(socketsHoldingPort(tcp, 9000, 'tcp', '127.0.0.1'))).toEqual([2181507]);
    expect(inodes(socketsHoldingPort(tcp, 9001, 'tcp', '127.0.0.1'))).toEqual([2181508]);
    expect(inodes(socketsHoldingPort(tcp, 8080, 'tcp', '0.0.0.0'))).toEqual([2181504]);
  });

  it('an address of the other family does not hold it', () => {
    expect(socketsHoldingPort(tcp, 8443, 'tcp', '127.0.0.1')).toEqual([]);
    expect(inodes(socketsHoldingPort(tcp, 8443, 'tcp', '::1'))).toEqual([2181505]);
    expect(socketsHoldingPort(tcp, 9000, 'tcp', '::1')).toEqual([]);
  });

  it('UDP: any bound socket, IPv4-mapped ones as their IPv4 address', () => {
    expect(inodes(socketsHoldingPort(udp, 5353, 'udp', '127.0.0.1'))).toEqual([2181509]);
    expect(inodes(socketsHoldingPort(udp, 5355, 'udp', '127.0.0.1'))).toEqual([2181511]);
    expect(inodes(socketsHoldingPort(udp, 5354, 'udp', '127.0.0.2'))).toEqual([2181510]);
    expect(socketsHoldingPort(udp, 5353, 'tcp', '127.0.0.1')).toEqual([]);
  });

  it('address clashes', () => {
    const cases: Array<[string, string, boolean]> = [
      ['127.0.0.1', '127.0.0.1', true],
      ['127.0.0.1', '127.0.0.2', false],
      ['0.0.0.0', '10.0.0.1', true],
      ['10.0.0.1', '0.0.0.0', true],
      ['0.0.0.0', '::1', false],
      ['::', '127.0.0.1', true],
      ['127.0.0.1', '::', true],
      ['::ffff:127.0.0.1', '127.0.0.1', true],
      ['::1', '127.0.0.1', false],
      ['::1', '::', true],
    ];
    for (const [a, b, want] of cases) expect([a, b, addressesClash(a, b)]).toEqual([a, b, want]);
  });
});
