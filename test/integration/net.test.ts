/**
 * The network helpers against the harness: a NAT network on a subnet picked from the
 * routes inside the harness netns, a domain on it, and a real DHCP lease from dnsmasq.
 *
 * No box exists yet, so no guest OS can take a lease. A DHCP client stands in for one:
 * busybox udhcpc on a veth whose peer is plugged into the network's bridge, all inside
 * the netns (network rule: nothing from the host's namespace to a private address).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DomainUndefineFlags,
  LibvirtError,
  openLibvirt,
  type DomainRef,
  type LibvirtClient,
  type NetworkRef,
} from '../../src/libvirt/index.js';
import { domainXml, networkXml } from '../../src/libvirt/xml/index.js';
import { leasesForMac, parseLibvirtStatus } from '../../src/net/dnsmasq-leases.js';
import { discoverIp, IpDiscoveryTimeoutError, type IpAttempt } from '../../src/net/ip-discovery.js';
import {
  describeConflicts,
  formatCidr,
  hostRoutesAndAddresses,
  networkAddresses,
  networkXmlSubnets,
  pickFreeSubnet,
  subnetConflicts,
  type Cidr,
  type UsedPrefix,
} from '../../src/net/subnet.js';
import { testHost } from '../support/harness.js';

const exec = promisify(execFile);
const host = testHost();
const suffix = randomBytes(3).toString('hex');
const netName = `vmenv-it-ipnet-${suffix}`;
const domName = `vmenv-it-ipdom-${suffix}`;
/** veth pair inside the netns: `client` runs udhcpc, `port` is plugged into the bridge. */
const veth = { client: `vmc${suffix}`, port: `vmp${suffix}` };
const domMac = `52:54:00:${suffix.slice(0, 2)}:${suffix.slice(2, 4)}:${suffix.slice(4, 6)}`;
const vethMac = `52:54:00:${suffix.slice(4, 6)}:${suffix.slice(2, 4)}:fe`;
const dnsmasqDir = join(host.state, 'lib', 'dnsmasq');

/** Runs a command inside the harness netns; resolves with its stdout and stderr together. */
async function inNetns(argv: string[], timeoutMs = 20_000): Promise<string> {
  const { stdout, stderr } = await exec('ip', ['netns', 'exec', host.netns, ...argv], { timeout: timeoutMs });
  return stdout + stderr;
}

async function usedInNetns(client: LibvirtClient): Promise<UsedPrefix[]> {
  const view = await hostRoutesAndAddresses({ netns: host.netns });
  // Defined but inactive networks have no route yet; they take their subnet all the same.
  const networks = await client.connectListAllNetworks();
  const xmls = await Promise.all(networks.map((n) => client.networkGetXmlDesc(n).catch(() => '')));
  return [...view.used, ...xmls.flatMap((x) => networkXmlSubnets(x))];
}

let client: LibvirtClient;
let net: NetworkRef | undefined;
let dom: DomainRef | undefined;
let subnet: Cidr;
let bridge: string;

beforeAll(async () => {
  client = await openLibvirt(host.uri);
});

afterAll(async () => {
  await inNetns(['ip', 'link', 'del', veth.client]).catch(() => undefined);
  if (dom) {
    await client.domainDestroy(dom).catch(() => undefined);
    await client.domainUndefine(dom, DomainUndefineFlags.managedSave).catch(() => undefined);
  }
  if (net) {
    await client.networkDestroy(net).catch(() => undefined);
    await client.networkUndefine(net).catch(() => undefined);
  }
  await client?.close();
});

describe('host routes', () => {
  it('reads the routes and addresses inside the harness netns and of the host, with ip -j', async () => {
    const inside = await hostRoutesAndAddresses({ netns: host.netns });
    expect(inside.via).toBe('ip -j');
    expect(inside.problems).toEqual([]);
    expect(inside.addresses.map((a) => a.text)).toContain('address 127.0.0.1/8 on lo');
    const outside = await hostRoutesAndAddresses();
    expect(outside.via).toBe('ip -j');
    expect(outside.problems).toEqual([]);
  });
});

describe('IP discovery against a real dnsmasq lease', () => {
  it('starts a NAT network on a free subnet of the netns, and explains the subnet is taken afterwards', async () => {
    const used = await usedInNetns(client);
    // Another test run may take the same subnet between picking and starting: pick again.
    for (let attempt = 1; ; attempt++) {
      const picked = pickFreeSubnet(used);
      if (picked === undefined) throw new Error('no free subnet in the harness netns');
      subnet = picked;
      const a = networkAddresses(subnet);
      net = await client.networkDefineXml(
        networkXml({
          name: netName,
          forward: { mode: 'nat' },
          // No STP: the veth port forwards at once instead of after 2 x 2 s of listening/learning.
          bridge: { stp: false, delay: 0 },
          ipv4: { address: a.gateway, prefix: a.prefix, dhcp: { range: { start: a.dhcpStart, end: a.dhcpEnd } } },
        }),
      );
      try {
        await client.networkCreate(net);
        break;
      } catch (err) {
        await client.networkUndefine(net).catch(() => undefined);
        net = undefined;
        if (!(err instanceof LibvirtError && /already in use/i.test(err.message)) || attempt >= 5) throw err;
        used.push({ ...subnet, kind: 'network', text: `${formatCidr(subnet)} (${err.message})` });
      }
    }
    bridge = await client.networkGetBridgeName(net);
    expect(bridge).toMatch(/^virbr\d+$/);

    const after = await usedInNetns(client);
    const conflicts = subnetConflicts(subnet, after);
    expect(describeConflicts(subnet, conflicts)).toMatch(
      new RegExp(`^${formatCidr(subnet).replaceAll('.', '\\.')} is used by ${bridge} \\(route ${formatCidr(subnet).replaceAll('.', '\\.')} dev ${bridge} proto kernel`),
    );
    expect(conflicts.map((c) => c.used.kind)).toEqual(expect.arrayContaining(['route', 'address', 'network']));
    const next = pickFreeSubnet(after);
    expect(next).toBeDefined();
    expect(formatCidr(next as Cidr)).not.toBe(formatCidr(subnet));
  });

  it('finds a lease given by the network\'s dnsmasq through the lease API, while the client is still asking', async () => {
    if (net === undefined) throw new Error('no network (the previous test failed)');
    dom = await client.domainDefineXml(
      domainXml({
        name: domName,
        type: 'qemu',
        memoryMiB: 32,
        vcpus: 1,
        rng: false,
        guestAgent: true,
        // In the boot order, so the NIC keeps its iPXE ROM (vmenv leaves it out otherwise).
        interfaces: [{ type: 'network', network: netName, mac: domMac, bootOrder: 1 }],
      }),
    );
    await client.domainCreate(dom);

    await inNetns(['ip', 'link', 'add', veth.client, 'type', 'veth', 'peer', 'name', veth.port]);
    await inNetns(['ip', 'link', 'set', veth.client, 'address', vethMac]);
    await inNetns(['ip', 'link', 'set', veth.port, 'master', bridge]);
    await inNetns(['ip', 'link', 'set', veth.port, 'up']);
    await inNetns(['ip', 'link', 'set', veth.client, 'up']);

    // Discovery starts before there is any lease, and picks the lease up as it appears.
    const attempts: IpAttempt[] = [];
    const found = discoverIp({
      client,
      domain: dom,
      mac: vethMac.toUpperCase(),
      network: netName,
      sources: ['lease-api'],
      timeoutMs: 60_000,
      pollMs: 100,
      onAttempt: (a) => attempts.push(a),
    });
    // -s /bin/true: take the lease, configure nothing. -T 3 (seconds between tries): dnsmasq
    // 2.89 pings an address before offering it and answers nothing else meanwhile (up to
    // 3 s), and the domain's firmware (iPXE) asks for a lease of its own at the same time.
    const out = await inNetns(
      ['busybox', 'udhcpc', '-i', veth.client, '-n', '-q', '-t', '5', '-T', '3', '-s', '/bin/true', '-x', `hostname:probe-${suffix}`],
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`udhcpc got no lease: ${String((err as { stderr?: string }).stderr ?? err)}`);
    });
    const leased = /lease of (\S+) obtained/.exec(out)?.[1];
    expect(leased, out).toBeDefined();

    const got = await found;
    expect(got).toMatchObject({ ip: leased, source: 'lease-api', label: 'lease API' });
    expect(attempts[0]?.answer).toBe(`no lease for ${vethMac} on ${netName}`);
    expect(attempts.at(-1)?.ip).toBe(leased);
    const a = networkAddresses(subnet);
    const ipNum = (ip: string): number => ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
    expect(ipNum(got.ip)).toBeGreaterThanOrEqual(ipNum(a.dhcpStart));
    expect(ipNum(got.ip)).toBeLessThanOrEqual(ipNum(a.dhcpEnd));

    // The same lease in libvirt's status file, read from where the harness keeps the daemon's /var/lib/libvirt.
    const status = parseLibvirtStatus(await readFile(join(dnsmasqDir, `${bridge}.status`)));
    expect(status.state).toBe('leases');
    if (status.state !== 'leases') return;
    expect(status.problems).toEqual([]);
    const mine = leasesForMac(status.leases, vethMac);
    expect(mine.current).toHaveLength(1);
    expect(mine.current[0]).toMatchObject({
      family: 'ipv4',
      ip: leased,
      mac: vethMac,
      hostname: `probe-${suffix}`,
      clientId: `01:${vethMac}`,
    });
    const nowSeconds = Date.now() / 1000;
    expect(mine.current[0]?.expiry).toBeGreaterThan(nowSeconds + 3000); // libvirt's default lease time: 1 h
    expect(mine.current[0]?.expiry).toBeLessThan(nowSeconds + 3700);

    // And the libvirt API agrees with the file.
    const apiLeases = await client.networkGetDhcpLeases(net, vethMac);
    expect(apiLeases.map((l) => [l.ipaddr, l.mac, l.hostname, Number(l.expiryTime)])).toEqual([
      [leased, vethMac, `probe-${suffix}`, mine.current[0]?.expiry],
    ]);
  });

  it('finds the same lease in the status file, naming the bridge itself', async () => {
    if (dom === undefined) throw new Error('no domain (the previous test failed)');
    const got = await discoverIp({
      client,
      domain: dom,
      mac: vethMac,
      network: netName,
      leaseFiles: dnsmasqDir,
      sources: ['lease-file'],
      timeoutMs: 10_000,
    });
    expect(got.source).toBe('lease-file');
    expect(got.label).toBe(`status file ${join(dnsmasqDir, `${bridge}.status`)}`);
    const api = await client.networkGetDhcpLeases(net as NetworkRef, vethMac);
    expect(got.ip).toBe(api[0]?.ipaddr);
  });

  it("finds the domain's own lease, taken by its firmware (iPXE), through the domain's interface addresses", async () => {
    if (dom === undefined) throw new Error('no domain (the previous test failed)');
    // With no disk, SeaBIOS boots from the NIC: iPXE asks the network's dnsmasq for a lease.
    const byDomain = await discoverIp({ client, domain: dom, mac: domMac, network: netName, sources: ['domain-lease'], timeoutMs: 90_000 });
    expect(byDomain.source).toBe('domain-lease');
    const byApi = await discoverIp({ client, domain: dom, mac: domMac, network: netName, sources: ['lease-api'], timeoutMs: 5000 });
    expect(byApi.ip).toBe(byDomain.ip);
    expect(byApi.ip).not.toBe((await client.networkGetDhcpLeases(net as NetworkRef, vethMac))[0]?.ipaddr);
  });

  it('reports what every source answered when none knows the address', async () => {
    if (dom === undefined) throw new Error('no domain (the previous test failed)');
    const other = '52:54:00:00:00:01';
    const err = await discoverIp({
      client,
      domain: dom,
      mac: other,
      network: netName,
      leaseFiles: dnsmasqDir,
      timeoutMs: 1500,
      pollMs: 150,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpDiscoveryTimeoutError);
    const lines = (err as IpDiscoveryTimeoutError).lines();
    expect(lines).toEqual([
      `lease API: no lease for ${other} on ${netName}`,
      expect.stringMatching(new RegExp(`^domain leases: no interface with ${other}`)),
      expect.stringMatching(new RegExp(`^status file ${join(dnsmasqDir, bridge)}\\.status: no lease for ${other} \\(\\d+ other leases?\\)$`)),
      // The domain has an agent channel, and nothing in the guest answers on it.
      'agent: not connected',
      // libvirt's ARP source reads the neighbour table over netlink; in some containers
      // that fails ("internal error: wrong nlmsg len"): the answer says so, and polling goes on.
      expect.stringMatching(new RegExp(`^ARP: (no interface with ${other}|error: )`)),
    ]);
    expect((err as IpDiscoveryTimeoutError).message).toMatch(/^Timed out after 1\.5 s waiting for an IP address for domain vmenv-it-ipdom-/);
  });
});
