import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatIpv6, normalizeIp, normalizeMac, parseIpv4, parseIpv6 } from '../../../src/util/ip.js';
import { ExitCode, UserError } from '../../../src/errors.js';
import {
  assertSubnetFree,
  cidrContains,
  cidrIncludes,
  cidrsOverlap,
  defaultCandidates,
  describeConflicts,
  formatCidr,
  hostRoutesAndAddresses,
  networkAddresses,
  networkXmlSubnets,
  parseCidr,
  parseIpAddrJson,
  parseIpRouteJson,
  parseProcNetIpv6Route,
  parseProcNetRoute,
  pickFreeSubnet,
  subnetConflicts,
  type Cidr,
  type HostDataProblem,
  type RunCommand,
  type UsedPrefix,
  SubnetInUseError,
} from '../../../src/net/subnet.js';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const c = (text: string): Cidr => {
  const v = parseCidr(text);
  if (v === undefined) throw new Error(`bad cidr ${text}`);
  return v;
};
const route = (dst: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ dst, flags: [], ...extra });
const routes = (...entries: Record<string, unknown>[]): UsedPrefix[] => parseIpRouteJson(JSON.stringify(entries));

describe('addresses', () => {
  it('parses and formats IPv4 and IPv6', () => {
    expect(parseIpv4('192.168.121.1')).toBe(0xc0a87901);
    for (const bad of ['192.168.1', '192.168.1.256', '01.2.3.4', '1.2.3.4.5', '1.2.3.-4', '']) expect(parseIpv4(bad)).toBeUndefined();
    expect(parseIpv6('::')).toBe(0n);
    expect(parseIpv6('::1')).toBe(1n);
    expect(formatIpv6(parseIpv6('FD00:0:0:0:0:0:0:2') as bigint)).toBe('fd00::2');
    expect(formatIpv6(parseIpv6('2001:db8:0:0:1:0:0:1') as bigint)).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6(parseIpv6('2001:db8:1:2:3:4:5:6') as bigint)).toBe('2001:db8:1:2:3:4:5:6');
    expect(formatIpv6(parseIpv6('::ffff:192.0.2.1') as bigint)).toBe('::ffff:c000:201');
    for (const bad of [':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', 'fe80::1%eth0', 'g::1', ':1::']) {
      expect(parseIpv6(bad), bad).toBeUndefined();
    }
    expect(normalizeIp('010.1.1.1')).toBeUndefined();
    expect(normalizeMac('52-54-00-AB-cd-EF')).toBe('52:54:00:ab:cd:ef');
    expect(normalizeMac('52:54:00:ab:cd')).toBeUndefined();
  });

  it('parses CIDRs and tells overlaps at every prefix length', () => {
    expect(parseCidr('192.168.1.77/24')).toEqual({ address: '192.168.1.77', prefix: 24 });
    expect(formatCidr(c('192.168.1.77/24'))).toBe('192.168.1.0/24');
    expect(parseCidr('10.0.0.1')).toEqual({ address: '10.0.0.1', prefix: 32 });
    expect(parseCidr('default')).toEqual({ address: '0.0.0.0', prefix: 0 });
    expect(parseCidr('default', 'ipv6')).toEqual({ address: '::', prefix: 0 });
    expect(parseCidr('fd00::/64')).toEqual({ address: 'fd00::', prefix: 64 });
    for (const bad of ['10.0.0.0/33', '10.0.0.0/x', 'fd00::/129', 'nonsense', '10.0.0.0/']) expect(parseCidr(bad), bad).toBeUndefined();

    const table: [string, string, boolean][] = [
      ['192.168.121.0/24', '192.168.121.0/24', true],
      ['192.168.121.0/24', '192.168.0.0/16', true], // wider route covers it
      ['192.168.121.0/24', '192.168.121.128/25', true], // narrower route inside it
      ['192.168.121.0/24', '192.168.121.77/32', true], // a host route
      ['192.168.121.0/24', '192.168.120.0/24', false],
      ['192.168.121.0/24', '192.168.122.0/23', false], // 122-123
      ['192.168.121.0/24', '192.168.120.0/23', true], // 120-121
      ['192.168.121.0/24', '192.168.128.0/17', false],
      ['10.100.0.0/24', '10.0.0.0/8', true],
      ['10.100.0.0/24', '11.0.0.0/8', false],
      ['172.16.5.0/24', '172.16.0.0/12', true],
      ['192.168.121.0/24', 'fd00::/8', false], // families never overlap
      ['fd00::/64', 'fd00::/8', true],
    ];
    for (const [a, b, want] of table) {
      expect(cidrsOverlap(c(a), c(b)), `${a} ~ ${b}`).toBe(want);
      expect(cidrsOverlap(c(b), c(a)), `${b} ~ ${a}`).toBe(want);
    }
    expect(cidrContains(c('10.0.0.0/8'), c('10.1.0.0/16'))).toBe(true);
    expect(cidrContains(c('10.1.0.0/16'), c('10.0.0.0/8'))).toBe(false);
    expect(cidrIncludes(c('192.168.121.0/24'), '192.168.121.200')).toBe(true);
    expect(cidrIncludes(c('192.168.121.0/24'), '192.168.122.1')).toBe(false);
  });

  it('lays out a network: gateway first, DHCP range after it', () => {
    expect(networkAddresses(c('192.168.121.0/24'))).toEqual({ gateway: '192.168.121.1', prefix: 24, dhcpStart: '192.168.121.2', dhcpEnd: '192.168.121.254' });
    expect(networkAddresses(c('10.0.0.0/8'))).toEqual({ gateway: '10.0.0.1', prefix: 8, dhcpStart: '10.0.0.2', dhcpEnd: '10.1.0.0' });
    expect(() => networkAddresses(c('10.0.0.0/31'))).toThrow(/\/8 to \/30/);
  });
});

describe('pickFreeSubnet', () => {
  const table: { name: string; used: UsedPrefix[]; want: string | undefined }[] = [
    { name: 'nothing in use', used: [], want: '192.168.121.0/24' },
    {
      name: 'a default route, a /1 split default and ::/0 are not conflicts',
      used: routes(
        route('default', { gateway: '192.168.121.1', dev: 'eth0' }),
        route('0.0.0.0/1', { gateway: '10.8.0.1', dev: 'tun0' }),
        route('128.0.0.0/1', { gateway: '10.8.0.1', dev: 'tun0' }),
      ),
      want: '192.168.121.0/24',
    },
    {
      name: 'vagrant-libvirt already there and libvirt default network',
      used: routes(route('192.168.121.0/24', { dev: 'virbr1' }), route('192.168.122.0/24', { dev: 'virbr0' })),
      want: '192.168.123.0/24',
    },
    {
      name: 'a wider LAN route covering 192.168.120.0-123.255',
      used: routes(route('192.168.120.0/22', { dev: 'eth0' })),
      want: '192.168.124.0/24',
    },
    {
      name: 'a host route inside a candidate',
      used: routes(route('192.168.121.77', { dev: 'wg0' })),
      want: '192.168.122.0/24',
    },
    {
      name: 'a narrower route (/26) inside a candidate',
      used: routes(route('192.168.121.192/26', { dev: 'docker0' })),
      want: '192.168.122.0/24',
    },
    {
      name: 'all of 192.168/16 through a VPN in a policy table: then 10.100',
      used: routes(route('192.168.0.0/16', { dev: 'tun0', table: '220' })),
      want: '10.100.0.0/24',
    },
    {
      name: 'all of 192.168/16 and 10.100-10.101/15 taken',
      used: routes(route('192.168.0.0/16', { dev: 'tun0' }), route('10.100.0.0/15', { dev: 'tun1' })),
      want: '10.102.0.0/24',
    },
    {
      name: 'a blackhole route reserves its range',
      used: routes(route('192.168.121.0/24', { type: 'blackhole' })),
      want: '192.168.122.0/24',
    },
    {
      name: 'broadcast and multicast routes in table local do not',
      used: routes(route('192.168.121.255', { type: 'broadcast', dev: 'eth0', table: 'local' }), route('224.0.0.0/4', { type: 'multicast', dev: 'eth0' })),
      want: '192.168.121.0/24',
    },
    {
      name: 'an interface address (no route left for it)',
      used: parseIpAddrJson(JSON.stringify([{ ifname: 'br0', addr_info: [{ family: 'inet', local: '192.168.121.5', prefixlen: 24 }] }])),
      want: '192.168.122.0/24',
    },
    {
      name: 'IPv6 routes do not take IPv4 candidates',
      used: parseIpRouteJson(JSON.stringify([route('fd00::/8', { dev: 'eth0' })]), [], 'ipv6'),
      want: '192.168.121.0/24',
    },
    {
      name: 'everything private taken',
      used: routes(route('192.168.0.0/16', { dev: 'a' }), route('10.0.0.0/8', { dev: 'b' })),
      want: undefined,
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const got = pickFreeSubnet(t.used);
      expect(got === undefined ? undefined : formatCidr(got)).toBe(t.want);
      if (got !== undefined) expect(subnetConflicts(got, t.used)).toEqual([]);
    });
  }

  it('takes plain Cidrs as used, candidates of the caller in their order, and normalizes the result', () => {
    expect(pickFreeSubnet([c('172.20.0.0/16')], [c('172.20.3.0/24'), c('172.21.7.9/24'), c('172.22.0.0/24')])).toEqual({
      address: '172.21.7.0',
      prefix: 24,
    });
    expect(pickFreeSubnet([c('0.0.0.0/0')], [c('172.20.3.0/24')])).toEqual(c('172.20.3.0/24'));
    expect(pickFreeSubnet([c('172.16.0.0/12')], [c('172.20.3.0/24')])).toBeUndefined();
  });

  it('runs through every default candidate quickly when they are all taken', () => {
    const used = routes(route('192.168.0.0/16', { dev: 'a' }), route('10.0.0.0/8', { dev: 'b' }));
    const t0 = performance.now();
    expect(pickFreeSubnet(used)).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(2000);
    const all = [...defaultCandidates()];
    expect(all[0]).toEqual(c('192.168.121.0/24'));
    expect(all[133]).toEqual(c('192.168.254.0/24'));
    expect(all[134]).toEqual(c('10.100.0.0/24'));
    expect(all.length).toBe(134 + 255 * 256);
    expect(new Set(all.map(formatCidr)).size).toBe(all.length);
  });
});

describe('subnetConflicts and describeConflicts', () => {
  const used: UsedPrefix[] = [
    ...parseIpRouteJson(
      JSON.stringify([
        route('default', { gateway: '192.0.2.1', dev: 'eth0' }),
        route('192.168.122.0/24', { dev: 'virbr0', protocol: 'kernel', scope: 'link', prefsrc: '192.168.122.1' }),
        route('192.168.122.1', { type: 'local', dev: 'virbr0', table: 'local', protocol: 'kernel' }),
        route('192.168.122.255', { type: 'broadcast', dev: 'virbr0', table: 'local', protocol: 'kernel' }),
        route('10.8.0.0/16', { gateway: '10.8.0.1', dev: 'tun0', table: '51820' }),
        route('10.9.0.0/16', { type: 'unreachable' }),
      ]),
      [],
      'ipv4',
    ),
    ...parseIpAddrJson(JSON.stringify([{ ifname: 'virbr0', addr_info: [{ family: 'inet', local: '192.168.122.1', prefixlen: 24 }] }])),
    ...networkXmlSubnets(
      "<network><name>other</name><bridge name='virbr9' stp='on'/><ip address='192.168.200.1' netmask='255.255.255.0'><dhcp/></ip><ip family='ipv6' address='fd12::1' prefix='64'/></network>",
    ),
  ];

  it('says which interface uses a subnet, with its routes and addresses', () => {
    const cidr = c('192.168.122.0/24');
    const conflicts = subnetConflicts(cidr, used);
    expect(conflicts.map((x) => x.used.text)).toEqual([
      'route 192.168.122.0/24 dev virbr0 proto kernel',
      'route local 192.168.122.1/32 dev virbr0 table local proto kernel',
      'address 192.168.122.1/24 on virbr0',
    ]);
    expect(describeConflicts(cidr, conflicts)).toBe(
      '192.168.122.0/24 is used by virbr0 (route 192.168.122.0/24 dev virbr0 proto kernel; route local 192.168.122.1/32 dev virbr0 table local proto kernel; address 192.168.122.1/24 on virbr0)',
    );
  });

  it('names routes in other tables, routes without a device, and libvirt networks', () => {
    expect(describeConflicts(c('10.8.3.0/24'), subnetConflicts(c('10.8.3.0/24'), used))).toBe(
      '10.8.3.0/24 is used by tun0 (route 10.8.0.0/16 via 10.8.0.1 dev tun0 table 51820)',
    );
    expect(describeConflicts(c('10.9.0.0/24'), subnetConflicts(c('10.9.0.0/24'), used))).toBe(
      '10.9.0.0/24 is used by an unreachable route (route unreachable 10.9.0.0/16)',
    );
    expect(describeConflicts(c('192.168.200.0/24'), subnetConflicts(c('192.168.200.0/24'), used))).toBe(
      "192.168.200.0/24 is used by libvirt network 'other' (192.168.200.1/24 on virbr9)",
    );
    expect(subnetConflicts(c('fd12::/64'), used).map((x) => x.used.name)).toEqual(['other']);
  });

  it('refuses a configured subnet that is taken, naming the user and a free one', () => {
    let err: unknown;
    try {
      assertSubnetFree(c('192.168.122.0/24'), used, { field: 'machines.web.network.subnet' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SubnetInUseError);
    expect(err).toBeInstanceOf(UserError);
    const e = err as SubnetInUseError;
    expect(e.exitCode).toBe(ExitCode.user);
    expect(e.message).toMatch(/^192\.168\.122\.0\/24 is used by virbr0 \(route 192\.168\.122\.0\/24 dev virbr0 proto kernel; .*\)\.$/);
    expect(e.hint).toBe('Set machines.web.network.subnet to a free subnet (192.168.121.0/24 is free), or leave it out and vmenv picks a free one.');
    expect(e.conflicts).toHaveLength(3);
    // Its own bridge (a second `up`) and its own libvirt network are no conflict.
    expect(() => assertSubnetFree(c('192.168.122.0/24'), used, { ownBridge: 'virbr0' })).not.toThrow();
    expect(() => assertSubnetFree(c('192.168.200.0/24'), used, { ownNetwork: 'other' })).not.toThrow();
    expect(() => assertSubnetFree(c('192.168.200.0/24'), used)).toThrow(SubnetInUseError);
  });

  it('has nothing to say about free subnets and the default route', () => {
    expect(subnetConflicts(c('192.168.121.0/24'), used)).toEqual([]);
    expect(describeConflicts(c('192.168.121.0/24'), [])).toBe('');
    // The default route's gateway subnet is not in `used`; the default itself never conflicts.
    expect(subnetConflicts(c('192.0.2.0/24'), used)).toEqual([]);
  });
});

describe('parsers of the host view', () => {
  it('reads real `ip -j route show table all` output of both families', () => {
    const problems: HostDataProblem[] = [];
    const v4 = parseIpRouteJson(fixture('ip-route4.json'), problems, 'ipv4');
    const v6 = parseIpRouteJson(fixture('ip-route6.json'), problems, 'ipv6');
    expect(problems).toEqual([]);
    expect(v4.map((r) => r.text)).toContain('route default via 192.0.2.1 dev eth0');
    expect(v4.find((r) => r.text.startsWith('route 192.0.2.0/24'))).toMatchObject({ address: '192.0.2.0', prefix: 24, dev: 'eth0', kind: 'route' });
    expect(v6.find((r) => r.text === 'route default via fd00::1 dev eth0')).toMatchObject({ address: '::', prefix: 0 });
    expect(v6.find((r) => r.address === 'ff00::')).toMatchObject({ type: 'multicast', table: 'local' });
    const used = [...v4, ...v6];
    expect(describeConflicts(c('192.0.2.0/24'), subnetConflicts(c('192.0.2.0/24'), used))).toMatch(/^192\.0\.2\.0\/24 is used by eth0 \(route 192\.0\.2\.0\/24 dev eth0 proto kernel/);
    expect(formatCidr(pickFreeSubnet(used) as Cidr)).toBe('192.168.121.0/24');
  });

  it('reads real `ip -j addr` output', () => {
    const addrs = parseIpAddrJson(fixture('ip-addr.json'));
    expect(addrs.map((a) => a.text)).toEqual(expect.arrayContaining(['address 127.0.0.1/8 on lo', 'address 192.0.2.2/24 on eth0', 'address fd00::2/64 on eth0']));
    expect(addrs.find((a) => a.text === 'address 192.0.2.2/24 on eth0')).toMatchObject({ address: '192.0.2.2', prefix: 24, dev: 'eth0' });
  });

  it('reads peers of point-to-point addresses and reports broken entries', () => {
    const problems: HostDataProblem[] = [];
    const addrs = parseIpAddrJson(
      JSON.stringify([
        { ifname: 'ppp0', addr_info: [{ family: 'inet', local: '10.64.64.64', address: '10.112.112.112', prefixlen: 32 }] },
        { ifname: 'odd', addr_info: [{ family: 'inet', local: '10.1.1.1' }, { family: 'inet', local: 'x', prefixlen: 24 }] },
        { ifname: 'nothing' },
      ]),
      problems,
    );
    expect(addrs.map((a) => a.text)).toEqual(['address 10.64.64.64/32 on ppp0', 'address 10.112.112.112/32 (peer of 10.64.64.64) on ppp0']);
    expect(problems.map((p) => p.reason)).toEqual(['an address without local or prefixlen', 'x/24 is not a prefix']);
    const rp: HostDataProblem[] = [];
    expect(parseIpRouteJson(JSON.stringify([{ dev: 'x' }, { dst: 'what' }, route('10.0.0.0/8')]), rp)).toHaveLength(1);
    expect(rp.map((p) => p.reason)).toEqual(['no dst', 'dst "what" is not a prefix']);
    expect(() => parseIpRouteJson('{"not":"array"}')).toThrow(/not a JSON array/);
    expect(() => parseIpRouteJson('[{')).toThrow(/not JSON/);
    expect(parseIpRouteJson('')).toEqual([]);
  });

  it('reads real /proc/net/route and /proc/net/ipv6_route', () => {
    const v4 = parseProcNetRoute(fixture('proc-net-route.txt'));
    expect(v4.map((r) => r.text)).toEqual(['route default via 192.0.2.1 dev eth0', 'route 192.0.2.0/24 dev eth0']);
    const v6 = parseProcNetIpv6Route(fixture('proc-net-ipv6_route.txt'));
    expect(v6.map((r) => r.text)).toContain('route fd00::/64 dev eth0');
    expect(v6.map((r) => r.text)).toContain('route default via fd00::1 dev eth0');
    expect(v6.find((r) => r.address === 'ff00::')?.type).toBe('multicast');
    expect(v6.find((r) => r.address === 'fd00::2' && r.prefix === 128)?.type).toBe('local');
    const problems: HostDataProblem[] = [];
    parseProcNetRoute('Iface\tDestination\nbroken line\n', problems);
    expect(problems).toHaveLength(1);
  });

  it('reads libvirt network XML with prefix, netmask or neither', () => {
    expect(
      networkXmlSubnets(`<network><name>default</name><bridge name="virbr0"/><ip address="192.168.122.1" prefix="24"/><ip address="10.5.0.1"/></network>`).map(
        (u) => [formatCidr(u), u.name, u.dev],
      ),
    ).toEqual([
      ['192.168.122.0/24', 'default', 'virbr0'],
      ['10.5.0.0/24', 'default', 'virbr0'],
    ]);
  });
});

describe('hostRoutesAndAddresses', () => {
  it('runs ip -j for routes of both families and addresses, inside a netns when asked', async () => {
    const calls: string[][] = [];
    const run: RunCommand = async (argv) => {
      calls.push([...argv]);
      if (argv.includes('-4')) return fixture('ip-route4.json');
      if (argv.includes('-6')) return fixture('ip-route6.json');
      return fixture('ip-addr.json');
    };
    const view = await hostRoutesAndAddresses({ run, netns: 'vmenv-test' });
    expect(view.via).toBe('ip -j');
    expect(calls).toEqual([
      ['ip', 'netns', 'exec', 'vmenv-test', 'ip', '-j', '-4', 'route', 'show', 'table', 'all'],
      ['ip', 'netns', 'exec', 'vmenv-test', 'ip', '-j', '-6', 'route', 'show', 'table', 'all'],
      ['ip', 'netns', 'exec', 'vmenv-test', 'ip', '-j', 'addr', 'show'],
    ]);
    expect(view.used).toEqual([...view.routes, ...view.addresses]);
    expect(view.addresses.length).toBeGreaterThan(0);
  });

  it('falls back to /proc when ip is missing or has no -j', async () => {
    for (const failure of [
      Object.assign(new Error('spawn ip ENOENT'), { code: 'ENOENT' }),
      Object.assign(new Error('Command failed'), { code: 255, stderr: 'Option "-j" is unknown, try "ip -help".\n' }),
    ]) {
      const calls: string[][] = [];
      const run: RunCommand = async (argv) => {
        calls.push([...argv]);
        if (argv[0] === 'ip' && !argv.includes('cat')) throw failure;
        return argv.at(-1) === '/proc/net/route' ? fixture('proc-net-route.txt') : fixture('proc-net-ipv6_route.txt');
      };
      const view = await hostRoutesAndAddresses({ run });
      expect(view.via).toBe('/proc');
      expect(view.routes.map((r) => r.text)).toContain('route 192.0.2.0/24 dev eth0');
      expect(calls.slice(-2)).toEqual([
        ['cat', '/proc/net/route'],
        ['cat', '/proc/net/ipv6_route'],
      ]);
    }
  });

  it('passes other failures on', async () => {
    const run: RunCommand = async () => {
      throw Object.assign(new Error('Cannot open network namespace "nope"'), { code: 1, stderr: 'Cannot open network namespace "nope": No such file or directory' });
    };
    await expect(hostRoutesAndAddresses({ run, netns: 'nope' })).rejects.toThrow(/Cannot open network namespace/);
  });
});
