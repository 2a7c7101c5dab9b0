import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DhcpLease, DomainInterfaceInfo } from '../../../src/libvirt/client.js';
import { DomainInterfaceAddressSource, IpAddrType } from '../../../src/libvirt/constants.js';
import { ErrorCode, LibvirtConnectionClosedError, LibvirtError } from '../../../src/libvirt/errors.js';
import type { DomainRef, NetworkRef } from '../../../src/libvirt/protocol/types.js';
import {
  discoverIp,
  IpDiscoveryTimeoutError,
  IpSourcesExhaustedError,
  type IpAttempt,
  type IpDiscoveryClient,
} from '../../../src/net/ip-discovery.js';
import { ExitCode, TimeoutError, UserError } from '../../../src/errors.js';

const MAC = '52:54:00:12:34:56';
const domain: DomainRef = { name: 'proj_web_abc123', uuid: Buffer.alloc(16, 1), id: 7 };
const network: NetworkRef = { name: 'vmenv-mgmt', uuid: Buffer.alloc(16, 2) };

type Answer<T> = T | Error | (() => T | Promise<T>);

/** A fake client whose answers are scripted per source; `calls` records what was asked. */
class FakeClient implements IpDiscoveryClient {
  calls: string[] = [];
  leaseApi: Answer<DhcpLease[]> = [];
  domainLease: Answer<DomainInterfaceInfo[]> = [];
  agent: Answer<DomainInterfaceInfo[]> = agentError(ErrorCode.agentUnresponsive, 'Guest agent is not responding: QEMU guest agent is not connected');
  arp: Answer<DomainInterfaceInfo[]> = [];
  bridge = 'virbr7';
  networks = new Map<string, NetworkRef>([[network.name, network]]);

  private async answer<T>(a: Answer<T>): Promise<T> {
    if (a instanceof Error) throw a;
    if (typeof a === 'function') return (a as () => T | Promise<T>)();
    return a;
  }
  networkGetDhcpLeases(n: NetworkRef, mac?: string): Promise<DhcpLease[]> {
    this.calls.push(`leases ${n.name} ${mac ?? ''}`);
    return this.answer(this.leaseApi);
  }
  domainInterfaceAddresses(d: DomainRef, source: number): Promise<DomainInterfaceInfo[]> {
    const name = source === DomainInterfaceAddressSource.agent ? 'agent' : source === DomainInterfaceAddressSource.arp ? 'arp' : 'lease';
    this.calls.push(`ifaddr ${d.name} ${name}`);
    return this.answer(name === 'agent' ? this.agent : name === 'arp' ? this.arp : this.domainLease);
  }
  async networkLookupByName(name: string): Promise<NetworkRef> {
    this.calls.push(`lookup ${name}`);
    const n = this.networks.get(name);
    if (n === undefined) throw libvirtError(ErrorCode.noNetwork, `Network not found: no network with matching name '${name}'`);
    return n;
  }
  async networkGetBridgeName(n: NetworkRef): Promise<string> {
    this.calls.push(`bridge ${n.name}`);
    return this.bridge;
  }
}

function libvirtError(code: number, message: string): LibvirtError {
  return new LibvirtError({ code, domain: 10, message, level: 2 });
}
function agentError(code: number, message: string): LibvirtError {
  return libvirtError(code, message);
}
function lease(ip: string, mac = MAC, extra: Partial<DhcpLease> = {}): DhcpLease {
  return {
    iface: 'virbr7',
    expiryTime: 1_900_000_000n,
    type: ip.includes(':') ? IpAddrType.ipv6 : IpAddrType.ipv4,
    mac,
    iaid: null,
    ipaddr: ip,
    prefix: ip.includes(':') ? 64 : 24,
    hostname: null,
    clientId: null,
    ...extra,
  };
}
function iface(mac: string | null, ...addrs: string[]): DomainInterfaceInfo {
  return {
    name: 'vnet0',
    mac,
    addrs: addrs.map((a) => ({ type: a.includes(':') ? IpAddrType.ipv6 : IpAddrType.ipv4, addr: a, prefix: a.includes(':') ? 64 : 24 })),
  };
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let client: FakeClient;
let dir: string;
beforeEach(async () => {
  client = new FakeClient();
  dir = await mkdtemp(join(tmpdir(), 'vmenv-ipd-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('discoverIp: order and first hit', () => {
  it('takes the lease API first when every source knows an address', async () => {
    client.leaseApi = [lease('192.168.121.10')];
    client.domainLease = [iface(MAC, '192.168.121.11')];
    client.agent = [iface(MAC, '192.168.121.12')];
    client.arp = [iface(MAC, '192.168.121.13')];
    await writeFile(join(dir, 'virbr7.status'), JSON.stringify([{ 'ip-address': '192.168.121.14', 'mac-address': MAC, 'expiry-time': 1_900_000_000 }]));
    const got = await discoverIp({ client, domain, mac: MAC, network, leaseFiles: dir, timeoutMs: 2000, pollMs: 20 });
    expect(got).toMatchObject({ ip: '192.168.121.10', source: 'lease-api', label: 'lease API', rounds: 1 });
  });

  it('goes down the list: domain leases, then files, then agent, then ARP', async () => {
    await writeFile(join(dir, 'virbr7.status'), JSON.stringify([{ 'ip-address': '192.168.121.14', 'mac-address': MAC, 'expiry-time': 1_900_000_000 }]));
    client.domainLease = [iface(MAC, '192.168.121.11')];
    client.agent = [iface(MAC, '192.168.121.12')];
    client.arp = [iface(MAC, '192.168.121.13')];
    const base = { client, domain, mac: MAC, network, leaseFiles: dir, timeoutMs: 2000, pollMs: 20 };
    expect(await discoverIp(base)).toMatchObject({ ip: '192.168.121.11', source: 'domain-lease' });
    client.domainLease = [];
    expect(await discoverIp(base)).toMatchObject({ ip: '192.168.121.14', source: 'lease-file', label: `status file ${join(dir, 'virbr7.status')}` });
    await writeFile(join(dir, 'virbr7.status'), '');
    expect(await discoverIp(base)).toMatchObject({ ip: '192.168.121.12', source: 'agent' });
    client.agent = agentError(ErrorCode.agentUnresponsive, 'Guest agent is not responding: QEMU guest agent is not connected');
    expect(await discoverIp(base)).toMatchObject({ ip: '192.168.121.13', source: 'arp' });
  });

  it('follows the order given in `sources`, and asks only those', async () => {
    client.leaseApi = [lease('192.168.121.10')];
    client.arp = [iface(MAC, '192.168.121.13')];
    const got = await discoverIp({ client, domain, mac: MAC, network, sources: ['arp', 'lease-api'], timeoutMs: 2000, pollMs: 20 });
    expect(got).toMatchObject({ ip: '192.168.121.13', source: 'arp' });
    expect(client.calls.filter((c) => c.startsWith('ifaddr')).every((c) => c.endsWith('arp'))).toBe(true);
  });

  it('keeps polling until a lease appears, passing the MAC in libvirt form', async () => {
    let n = 0;
    client.leaseApi = () => (++n >= 4 ? [lease('192.168.121.10')] : []);
    const attempts: IpAttempt[] = [];
    const got = await discoverIp({ client, domain, mac: '52-54-00-12-34-56'.toUpperCase(), network: 'vmenv-mgmt', sources: ['lease-api'], timeoutMs: 5000, pollMs: 20, onAttempt: (a) => attempts.push(a) });
    expect(got).toMatchObject({ ip: '192.168.121.10', rounds: 4 });
    expect(client.calls.filter((c) => c.startsWith('lookup'))).toEqual(['lookup vmenv-mgmt']); // looked up once
    expect(client.calls.filter((c) => c.startsWith('leases'))).toEqual(Array(4).fill(`leases vmenv-mgmt ${MAC}`));
    expect(attempts.map((a) => [a.round, a.answer, a.ip])).toEqual([
      [1, `no lease for ${MAC} on vmenv-mgmt`, undefined],
      [2, `no lease for ${MAC} on vmenv-mgmt`, undefined],
      [3, `no lease for ${MAC} on vmenv-mgmt`, undefined],
      [4, 'lease 192.168.121.10/24 on vmenv-mgmt', '192.168.121.10'],
    ]);
  });

  it('polls about every pollMs', async () => {
    const t0 = Date.now();
    await expect(discoverIp({ client, domain, mac: MAC, network, sources: ['lease-api'], timeoutMs: 1000, pollMs: 100 })).rejects.toThrow(TimeoutError);
    const asked = client.calls.filter((c) => c.startsWith('leases')).length;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
    expect(asked).toBeGreaterThanOrEqual(8);
    expect(asked).toBeLessThanOrEqual(12);
  });

  it('ignores other MACs, loopback and link-local addresses; IPv6 only when asked', async () => {
    client.leaseApi = [lease('192.168.121.50', '52:54:00:00:00:99')];
    client.agent = [iface('00:00:00:00:00:00', '127.0.0.1', '::1'), iface(MAC, '169.254.3.4', 'fe80::5054:ff:fe12:3456', 'fd00::10')];
    const base = { client, domain, mac: MAC, network, timeoutMs: 300, pollMs: 20 };
    const err = await discoverIp(base).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpDiscoveryTimeoutError);
    expect((err as IpDiscoveryTimeoutError).lines()).toContain(`agent: ${MAC} has only 169.254.3.4, fe80::5054:ff:fe12:3456, fd00::10 (not a usable IPv4 address)`);
    expect(await discoverIp({ ...base, family: 'ipv6' })).toMatchObject({ ip: 'fd00::10', source: 'agent' });
    client.agent = [iface(MAC, 'fd00::10', '192.168.121.77')];
    expect(await discoverIp({ ...base, family: 'any' })).toMatchObject({ ip: '192.168.121.77' });
  });

  it('prefers the lease ending last, and IPv4 over IPv6 for any', async () => {
    client.leaseApi = [lease('fd00::3', MAC), lease('192.168.121.5', MAC, { expiryTime: 100n }), lease('192.168.121.6', MAC, { expiryTime: 200n })];
    expect(await discoverIp({ client, domain, mac: MAC, network, family: 'any', sources: ['lease-api'], timeoutMs: 1000, pollMs: 20 })).toMatchObject({ ip: '192.168.121.6' });
  });
});

describe('discoverIp: slow sources, wake-ups, late answers', () => {
  it('does not let a hanging agent hold up the other sources, and asks it only once at a time', async () => {
    let n = 0;
    client.agent = () => new Promise(() => undefined); // never answers
    client.arp = () => (++n >= 3 ? [iface(MAC, '192.168.121.13')] : []);
    const got = await discoverIp({ client, domain, mac: MAC, network, sources: ['agent', 'arp'], timeoutMs: 3000, pollMs: 20 });
    expect(got).toMatchObject({ ip: '192.168.121.13', source: 'arp' });
    expect(client.calls.filter((c) => c.endsWith('agent'))).toHaveLength(1);
  });

  it('takes a late answer of a slow source at once, between rounds', async () => {
    // The agent answers at 350 ms, long before the next round would start (2 s): the
    // answer must end the wait at once. The margins are wide so a loaded machine passes.
    client.agent = async () => {
      await sleep(350);
      return [iface(MAC, '192.168.121.12')];
    };
    const t0 = Date.now();
    const got = await discoverIp({ client, domain, mac: MAC, network, sources: ['agent', 'arp'], timeoutMs: 10_000, pollMs: 2000 });
    expect(got).toMatchObject({ ip: '192.168.121.12', source: 'agent' });
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('starts the next round when the caller wakes it', async () => {
    let wakeUp: (() => void) | undefined;
    let unsubscribed = false;
    let leaseReady = false;
    client.leaseApi = () => (leaseReady ? [lease('192.168.121.10')] : []);
    const p = discoverIp({
      client,
      domain,
      mac: MAC,
      network,
      sources: ['lease-api'],
      timeoutMs: 10_000,
      pollMs: 5000,
      wake: (w) => {
        wakeUp = w;
        return () => {
          unsubscribed = true;
        };
      },
    });
    await sleep(50);
    expect(client.calls.filter((c) => c.startsWith('leases'))).toHaveLength(1);
    leaseReady = true;
    const t0 = Date.now();
    wakeUp?.();
    expect(await p).toMatchObject({ ip: '192.168.121.10', rounds: 2 });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(unsubscribed).toBe(true);
  });
});

describe('discoverIp: what each source said', () => {
  it('on timeout, lists the last answer of every source, files one by one', async () => {
    await writeFile(join(dir, 'virbr7.status'), '');
    client.arp = [iface('52:54:00:00:00:01', '192.168.121.99')];
    const err = await discoverIp({ client, domain, mac: MAC, network: 'vmenv-mgmt', leaseFiles: dir, timeoutMs: 300, pollMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpDiscoveryTimeoutError);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toBeInstanceOf(UserError);
    const e = err as IpDiscoveryTimeoutError;
    expect(e.exitCode).toBe(ExitCode.timeout);
    expect(e.message).toBe(`Timed out after 0.3 s waiting for an IP address for domain proj_web_abc123 (MAC ${MAC}).`);
    expect(e.lines()).toEqual([
      `lease API: no lease for ${MAC} on vmenv-mgmt`,
      'domain leases: no interface with 52:54:00:12:34:56',
      `status file ${join(dir, 'virbr7.status')}: empty`,
      'agent: not connected',
      'ARP: no interface with 52:54:00:12:34:56 (answered for: vnet0)',
    ]);
    expect(e.hint).toBe(`What each source answered last:\n${e.lines().map((l) => `  ${l}`).join('\n')}`);
    expect(e.answers.map((a) => a.source)).toEqual(['lease-api', 'domain-lease', 'lease-file', 'agent', 'arp']);
    expect(e.answers.every((a) => a.attempts >= 3)).toBe(true);
    expect(client.calls.filter((c) => c.startsWith('bridge'))).toEqual(['bridge vmenv-mgmt']);

    const withTail = e.withConsoleTail(['SeaBIOS (version 1.16.2)', 'Booting from Hard Disk...']);
    expect(withTail).toBeInstanceOf(IpDiscoveryTimeoutError);
    expect(withTail.message).toBe(e.message);
    expect(withTail.answers).toBe(e.answers);
    expect(withTail.hint).toBe(`${e.hint}\nLast lines of the serial console:\n  | SeaBIOS (version 1.16.2)\n  | Booting from Hard Disk...`);
    expect(e.withConsoleTail([]).hint).toBe(`${e.hint}\nThe serial console printed nothing.`);
  });

  it('records errors per source and keeps asking the others', async () => {
    let n = 0;
    client.leaseApi = libvirtError(ErrorCode.internalError, 'internal error: something odd');
    client.domainLease = () => (++n >= 3 ? [iface(MAC, '192.168.121.11')] : []);
    const attempts: IpAttempt[] = [];
    const got = await discoverIp({ client, domain, mac: MAC, network, sources: ['lease-api', 'domain-lease'], timeoutMs: 2000, pollMs: 20, onAttempt: (a) => attempts.push(a) });
    expect(got.source).toBe('domain-lease');
    expect(attempts.filter((a) => a.source === 'lease-api').map((a) => a.answer)).toEqual(Array(3).fill('error: internal error: something odd'));
  });

  it('says why a source gave up: agent not configured, ARP unsupported, no network, no files', async () => {
    client.agent = agentError(74, 'argument unsupported: QEMU guest agent is not configured');
    client.arp = libvirtError(ErrorCode.noSupport, 'this function is not supported by the connection driver: ARP');
    const err = await discoverIp({ client, domain, mac: MAC, sources: ['lease-api', 'lease-file', 'agent', 'arp'], timeoutMs: 5000, pollMs: 20 }).catch((e: unknown) => e);
    // Nothing left to ask: no need to wait for the timeout.
    expect(err).toBeInstanceOf(IpSourcesExhaustedError);
    expect((err as IpSourcesExhaustedError).answers.map((a) => `${a.label}: ${a.answer} (${a.attempts})`)).toEqual([
      'lease API: no network given (1)',
      'lease files: none configured (1)',
      'agent: not configured in the domain (argument unsupported: QEMU guest agent is not configured) (1)',
      'ARP: not supported here (this function is not supported by the connection driver: ARP) (1)',
    ]);
  });

  it('reports a missing network and keeps trying', async () => {
    const err = await discoverIp({ client, domain, mac: MAC, network: 'gone', sources: ['lease-api'], timeoutMs: 200, pollMs: 20 }).catch((e: unknown) => e);
    expect((err as IpDiscoveryTimeoutError).lines()).toEqual(['lease API: network gone not found']);
    expect(client.calls.filter((c) => c === 'lookup gone').length).toBeGreaterThan(2);
  });

  it('says when a source has not answered yet', async () => {
    client.agent = () => new Promise(() => undefined);
    const err = await discoverIp({ client, domain, mac: MAC, network, sources: ['agent'], timeoutMs: 150, pollMs: 20 }).catch((e: unknown) => e);
    expect((err as IpDiscoveryTimeoutError).lines()[0]).toMatch(/^agent: no answer yet \(asked 1\d\d ms ago\)$/);
  });

  it('fails at once when the connection or the domain is gone', async () => {
    client.leaseApi = new LibvirtConnectionClosedError();
    const t0 = Date.now();
    await expect(discoverIp({ client, domain, mac: MAC, network, timeoutMs: 5000, pollMs: 20 })).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
    client.leaseApi = [];
    client.domainLease = libvirtError(ErrorCode.noDomain, "Domain not found: no domain with matching uuid");
    await expect(discoverIp({ client, domain, mac: MAC, network, timeoutMs: 5000, pollMs: 20 })).rejects.toMatchObject({ code: ErrorCode.noDomain });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('passes on a throwing onAttempt', async () => {
    await expect(
      discoverIp({ client, domain, mac: MAC, network, timeoutMs: 5000, pollMs: 20, onAttempt: () => {
        throw new Error('callback bug');
      } }),
    ).rejects.toThrow('callback bug');
  });
});

describe('discoverIp: cancelling', () => {
  it('rejects with the abort reason, at once, and stops asking', async () => {
    const ac = new AbortController();
    const p = discoverIp({ client, domain, mac: MAC, network, timeoutMs: 10_000, pollMs: 20, signal: ac.signal });
    await sleep(100);
    const reason = new Error('Interrupted.');
    const t0 = Date.now();
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
    expect(Date.now() - t0).toBeLessThan(50);
    const asked = client.calls.length;
    await sleep(100);
    expect(client.calls.length).toBe(asked);
  });

  it('rejects an already aborted signal without asking anything', async () => {
    const ac = new AbortController();
    ac.abort(new Error('before'));
    await expect(discoverIp({ client, domain, mac: MAC, network, timeoutMs: 1000, signal: ac.signal })).rejects.toThrow('before');
    expect(client.calls).toEqual([]);
  });

  it('stops asking after a timeout too', async () => {
    await expect(discoverIp({ client, domain, mac: MAC, network, timeoutMs: 100, pollMs: 20 })).rejects.toBeInstanceOf(IpDiscoveryTimeoutError);
    const asked = client.calls.length;
    await sleep(100);
    expect(client.calls.length).toBe(asked);
  });
});
