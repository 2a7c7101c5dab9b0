import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DnsmasqLeaseParser,
  leasesForMac,
  macFromDuid,
  parseDnsmasqLeases,
  parseLibvirtStatus,
  type DnsmasqLeaseFile,
} from '../../../src/net/dnsmasq-leases.js';

const fixture = (name: string): Buffer => readFileSync(join(import.meta.dirname, 'fixtures', name));

/**
 * Both fixtures are real: `dnsmasq-v4v6.leases` was written by dnsmasq 2.89 (run inside
 * the harness netns on a veth, DHCPv4 from busybox udhcpc, DHCPv6 from a small client),
 * `libvirt-virbr.status` by libvirt 9's leases helper for a NAT network of the harness.
 */
const LEASES = fixture('dnsmasq-v4v6.leases');
const STATUS = fixture('libvirt-virbr.status');

function parseSplit(input: Buffer, cuts: number[]): DnsmasqLeaseFile {
  const p = new DnsmasqLeaseParser();
  let at = 0;
  for (const c of [...cuts, input.length]) {
    p.push(input.subarray(at, c));
    at = c;
  }
  return p.end();
}

describe('dnsmasq lease files', () => {
  it('reads a real file with IPv4 leases, the duid line and an IPv6 lease', () => {
    const f = parseDnsmasqLeases(LEASES);
    expect(f.problems).toEqual([]);
    expect(f.incomplete).toBe(false);
    expect(f.serverDuid).toBe('00:01:00:01:32:95:31:a6:52:54:00:ea:4f:ff');
    expect(f.leases).toEqual([
      { family: 'ipv4', ip: '10.199.0.5', mac: '52:54:00:77:00:05', hostname: 'fixed', clientId: '01:52:54:00:77:00:05', expiry: 0, line: 1 },
      { family: 'ipv4', ip: '10.199.0.24', mac: '52:54:00:77:00:04', hostname: null, clientId: null, expiry: 1795326803, line: 2 },
      { family: 'ipv4', ip: '10.199.0.23', mac: '52:54:00:77:00:03', hostname: 'alpha', clientId: '01:52:54:00:77:00:03', expiry: 1795326779, line: 3 },
      {
        family: 'ipv6',
        ip: 'fd99::21',
        // from the client's DUID-LL
        mac: '52:54:00:77:00:03',
        hostname: 'beta',
        clientId: '00:03:00:01:52:54:00:77:00:03',
        expiry: 1795326793,
        iaid: 1234567,
        line: 5,
      },
    ]);
  });

  it('gives the same result for the input split at every offset, and byte by byte', () => {
    const whole = parseDnsmasqLeases(LEASES);
    for (let i = 0; i <= LEASES.length; i++) expect(parseSplit(LEASES, [i])).toEqual(whole);
    for (let i = 0; i <= LEASES.length; i += 7) {
      for (let j = i; j <= LEASES.length; j += 11) expect(parseSplit(LEASES, [i, j])).toEqual(whole);
    }
    expect(parseSplit(LEASES, Array.from({ length: LEASES.length }, (_, i) => i))).toEqual(whole);
  });

  it('never takes a cut-off last line: every prefix gives a prefix of the leases, never a wrong address', () => {
    const whole = parseDnsmasqLeases(LEASES);
    for (let i = 0; i <= LEASES.length; i++) {
      const part = parseDnsmasqLeases(LEASES.subarray(0, i));
      expect(whole.leases.slice(0, part.leases.length)).toEqual(part.leases);
      const complete = i === 0 || LEASES[i - 1] === 0x0a;
      expect(part.incomplete).toBe(!complete);
      if (!complete) expect(part.problems.at(-1)?.reason).toMatch(/no newline/);
    }
    // "…10.199.0.2" of "10.199.0.24" is a valid address, and must not be read as one.
    const cut = LEASES.indexOf('10.199.0.24') + '10.199.0.2'.length;
    expect(parseDnsmasqLeases(LEASES.subarray(0, cut)).leases.map((l) => l.ip)).toEqual(['10.199.0.5']);
  });

  it('decodes UTF-8 split inside a character', () => {
    const input = Buffer.from('1700000000 52:54:00:aa:bb:cc 192.168.121.9 h\u00e9te *\n');
    const whole = parseDnsmasqLeases(input);
    expect(whole.leases[0]?.hostname).toBe('h\u00e9te');
    for (let i = 0; i <= input.length; i++) expect(parseSplit(input, [i])).toEqual(whole);
  });

  it('skips and reports junk lines, and reads the rest', () => {
    const text = [
      '1700000000 52:54:00:aa:bb:01 192.168.121.10 web *',
      'garbage',
      '1700000000 52:54:00:aa:bb:02 192.168.121.300 x *',
      'soon 52:54:00:aa:bb:03 192.168.121.12 x *',
      '1700000000 zz:54:00:aa:bb:04 192.168.121.13 x *',
      '1700000000 52:54:00:aa:bb:05 192.168.121.14 x not-hex',
      '1700000000 52:54:00:aa:bb:06 192.168.121.15 x * extra',
      '',
      '   ',
      'duid nothex',
      '1700000000 T12x fd00::5 x *',
      '1700000000\t52:54:00:AA:BB:07\t192.168.121.16\tTab\t*\r',
      '',
    ].join('\n');
    const f = parseDnsmasqLeases(text);
    expect(f.leases.map((l) => [l.ip, l.mac, l.line])).toEqual([
      ['192.168.121.10', '52:54:00:aa:bb:01', 1],
      ['192.168.121.16', '52:54:00:aa:bb:07', 12],
    ]);
    expect(f.problems.map((p) => [p.at, p.reason])).toEqual([
      [2, expect.stringMatching(/expected 5 fields.*found 1/)],
      [3, expect.stringMatching(/not an IP address/)],
      [4, expect.stringMatching(/expiry time "soon"/)],
      [5, expect.stringMatching(/hardware address/)],
      [6, expect.stringMatching(/client id "not-hex"/)],
      [7, expect.stringMatching(/found 6/)],
      [10, expect.stringMatching(/duid line/)],
      [11, expect.stringMatching(/IAID/)],
    ]);
    expect(f.incomplete).toBe(false);
  });

  it('reads non-Ethernet hardware addresses, temporary IPv6 addresses and DUIDs without a MAC', () => {
    const f = parseDnsmasqLeases(
      [
        '1700000000 20-80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:6b:31 10.0.0.7 ib *',
        '1700000000 01- 10.0.0.8 empty *',
        'duid 00:01:00:01:2c:4f:ad:e1:52:54:00:00:00:01',
        '1700000000 T42 fd00::7 * 00:01:00:01:2c:4f:ad:e1:52:54:00:00:00:09',
        '1700000000 7 fd00::8 * 00:02:00:00:ab:11:aa:bb',
        '1700000000 8 FD00:0:0::9 * *',
        '',
      ].join('\n'),
    );
    expect(f.problems).toEqual([]);
    expect(f.leases.map((l) => ({ ip: l.ip, mac: l.mac, hwaddr: l.hwaddr, iaid: l.iaid, temporary: l.temporary }))).toEqual([
      { ip: '10.0.0.7', mac: null, hwaddr: '20-80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:6b:31', iaid: undefined, temporary: undefined },
      { ip: '10.0.0.8', mac: null, hwaddr: '01-', iaid: undefined, temporary: undefined },
      { ip: 'fd00::7', mac: '52:54:00:00:00:09', hwaddr: undefined, iaid: 42, temporary: true },
      { ip: 'fd00::8', mac: null, hwaddr: undefined, iaid: 7, temporary: undefined },
      { ip: 'fd00::9', mac: null, hwaddr: undefined, iaid: 8, temporary: undefined },
    ]);
  });

  it('finds the MAC in DUID-LLT and DUID-LL only', () => {
    expect(macFromDuid('00:01:00:01:2c:4f:ad:e1:52:54:00:12:34:56')).toBe('52:54:00:12:34:56');
    expect(macFromDuid('00:03:00:01:52:54:00:12:34:56')).toBe('52:54:00:12:34:56');
    expect(macFromDuid('00:02:00:00:ab:11:aa:bb')).toBeNull(); // DUID-EN
    expect(macFromDuid('00:03:00:20:52:54:00:12:34:56')).toBeNull(); // not Ethernet
    expect(macFromDuid('00:03:00:01:52:54')).toBeNull();
    expect(macFromDuid('nonsense')).toBeNull();
  });

  it('refuses push after end', () => {
    const p = new DnsmasqLeaseParser();
    p.end();
    expect(() => p.push('x')).toThrow(/after end/);
  });
});

describe('libvirt status files', () => {
  it('reads a real status file', () => {
    expect(parseLibvirtStatus(STATUS)).toEqual({
      state: 'leases',
      problems: [],
      leases: [
        { family: 'ipv4', ip: '192.168.177.11', mac: '52:54:00:77:00:02', hostname: null, clientId: '01:52:54:00:77:00:02', expiry: 1795326763, index: 0 },
        { family: 'ipv4', ip: '192.168.177.15', mac: '52:54:00:77:00:06', hostname: 'web-1', clientId: '01:52:54:00:77:00:06', expiry: 1795326819, index: 1 },
      ],
    });
  });

  it('answers "empty" for no bytes or whitespace, and an empty list for []', () => {
    expect(parseLibvirtStatus('')).toEqual({ state: 'empty' });
    expect(parseLibvirtStatus(Buffer.alloc(0))).toEqual({ state: 'empty' });
    expect(parseLibvirtStatus(' \n\t ')).toEqual({ state: 'empty' });
    expect(parseLibvirtStatus('[]\n')).toEqual({ state: 'leases', leases: [], problems: [] });
  });

  it('treats every cut-short prefix as "no answer yet", never as a partial list', () => {
    for (let i = 0; i < STATUS.length; i++) {
      const r = parseLibvirtStatus(STATUS.subarray(0, i));
      if (STATUS.subarray(0, i).toString().trim() === '') expect(r.state).toBe('empty');
      else if (STATUS.subarray(0, i).toString().trimEnd() === STATUS.toString().trimEnd()) expect(r.state).toBe('leases');
      else {
        expect(r.state).toBe('incomplete');
        if (r.state === 'incomplete') expect(r.reason).toMatch(/not valid JSON.*cut short or being rewritten/);
      }
    }
  });

  it('says when the JSON is not an array', () => {
    expect(parseLibvirtStatus('{"ip-address":"1.2.3.4"}')).toEqual({ state: 'invalid', reason: 'a JSON object where an array of leases belongs' });
    expect(parseLibvirtStatus('null')).toMatchObject({ state: 'invalid', reason: expect.stringMatching(/null/) });
  });

  it('skips and reports bad entries, and takes numeric-string or absent expiry times and IPv6 fields', () => {
    const r = parseLibvirtStatus(
      JSON.stringify([
        'nope',
        { 'mac-address': '52:54:00:00:00:01' },
        { 'ip-address': '192.168.121.400', 'mac-address': '52:54:00:00:00:02' },
        { 'ip-address': '192.168.121.3', 'mac-address': 'not-a-mac' },
        { 'ip-address': '192.168.121.4', 'mac-address': '52:54:00:00:00:04', 'expiry-time': 'later' },
        { 'ip-address': '192.168.121.5', 'mac-address': '52:54:00:00:00:05', 'expiry-time': '1700000000' },
        { 'ip-address': '192.168.121.6', 'mac-address': '52:54:00:00:00:06' },
        {
          iaid: '1234567',
          'ip-address': 'FD99:0::21',
          'mac-address': '52:54:00:00:00:07',
          'client-id': '00:03:00:01:52:54:00:00:00:07',
          'server-duid': '00:01:00:01:32:95:31:A6:52:54:00:EA:4F:FF',
          'expiry-time': 1700000001,
        },
      ]),
    );
    expect(r.state).toBe('leases');
    if (r.state !== 'leases') return;
    expect(r.leases).toEqual([
      { family: 'ipv4', ip: '192.168.121.5', mac: '52:54:00:00:00:05', hostname: null, clientId: null, expiry: 1700000000, index: 5 },
      { family: 'ipv4', ip: '192.168.121.6', mac: '52:54:00:00:00:06', hostname: null, clientId: null, expiry: 0, index: 6 },
      {
        family: 'ipv6',
        ip: 'fd99::21',
        mac: '52:54:00:00:00:07',
        hostname: null,
        clientId: '00:03:00:01:52:54:00:00:00:07',
        expiry: 1700000001,
        index: 7,
        iaid: '1234567',
        serverDuid: '00:01:00:01:32:95:31:a6:52:54:00:ea:4f:ff',
      },
    ]);
    expect(r.problems.map((p) => [p.at, p.reason])).toEqual([
      [0, 'not an object'],
      [1, 'no "ip-address"'],
      [2, expect.stringMatching(/is not an IP address/)],
      [3, expect.stringMatching(/is not a MAC address/)],
      [4, expect.stringMatching(/"expiry-time" "later"/)],
    ]);
  });
});

describe('leasesForMac', () => {
  const leases = [
    { family: 'ipv4' as const, ip: '10.0.0.1', mac: '52:54:00:00:00:01', hostname: null, clientId: null, expiry: 100 },
    { family: 'ipv4' as const, ip: '10.0.0.2', mac: '52:54:00:00:00:01', hostname: null, clientId: null, expiry: 300 },
    { family: 'ipv6' as const, ip: 'fd00::2', mac: '52:54:00:00:00:01', hostname: null, clientId: null, expiry: 0 },
    { family: 'ipv4' as const, ip: '10.0.0.3', mac: '52:54:00:00:00:01', hostname: null, clientId: null, expiry: 50 },
    { family: 'ipv4' as const, ip: '10.0.0.9', mac: '52:54:00:00:00:09', hostname: null, clientId: null, expiry: 0 },
  ];

  it('matches any spelling of the MAC, orders by expiry, splits off expired leases', () => {
    const m = leasesForMac(leases, '52-54-00-00-00-01', { nowSeconds: 80 });
    expect(m.current.map((l) => l.ip)).toEqual(['10.0.0.2', '10.0.0.1']);
    expect(m.expired.map((l) => l.ip)).toEqual(['10.0.0.3']);
  });

  it('takes IPv6 when asked, IPv4 first for any, and never-ending leases first', () => {
    expect(leasesForMac(leases, '52:54:00:00:00:01', { nowSeconds: 80, family: 'ipv6' }).current.map((l) => l.ip)).toEqual(['fd00::2']);
    expect(leasesForMac(leases, '52:54:00:00:00:01', { nowSeconds: 80, family: 'any' }).current.map((l) => l.ip)).toEqual([
      '10.0.0.2',
      '10.0.0.1',
      'fd00::2',
    ]);
    expect(leasesForMac(leases, '52:54:00:00:00:09', { nowSeconds: 1e12 }).current.map((l) => l.ip)).toEqual(['10.0.0.9']);
  });
});
