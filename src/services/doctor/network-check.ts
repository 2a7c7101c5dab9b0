/**
 * The management network check of `vmenv doctor`: is the subnet of the NAT network
 * vmenv uses (or would create) free, or does a host route, address or another libvirt
 * network overlap it? vmenv's own networks (marked by their bridge name) are checked
 * too: a host route that appeared after one was made (a VPN) breaks its guests.
 */
import type { LibvirtClient } from '../../libvirt/client.js';
import { isVmenvNetworkXml } from '../../net/network.js';
import {
  describeConflicts,
  formatCidr,
  hostRoutesAndAddresses,
  networkXmlSubnets,
  parseCidr,
  pickFreeSubnet,
  subnetConflicts,
  type Cidr,
  type UsedPrefix,
} from '../../net/subnet.js';
import type { Check } from './doctor.js';

export interface LibvirtNetworkFacts {
  name: string;
  xml: string;
  active: boolean;
}

export interface NetworkFacts {
  uri: string;
  /** `user`: QEMU user-mode networking, no libvirt network. */
  mode: 'nat' | 'user';
  /** Why this mode: "vmenv.yaml", or the URI's default. */
  modeSource: string;
  /** The libvirt network vmenv uses for NAT machines. */
  name: string;
  configuredSubnet?: string;
  networks: LibvirtNetworkFacts[];
  /** The host's routes and addresses where the guests' networks live, or why they were not read. */
  host: { used: UsedPrefix[]; where: string } | { skipped: string };
}

function ipv4Subnets(n: LibvirtNetworkFacts): UsedPrefix[] {
  return networkXmlSubnets(n.xml, n.name).filter((u) => !u.address.includes(':'));
}

function bridgeOf(xml: string): string | undefined {
  return /<bridge\b[^>]*\bname=['"]([^'"]+)['"]/.exec(xml)?.[1];
}

/** What a network's subnets may not overlap: host prefixes (but its own bridge's) and the other libvirt networks. */
function othersFor(f: NetworkFacts, own: LibvirtNetworkFacts | undefined): UsedPrefix[] {
  const hostUsed = 'used' in f.host ? f.host.used : [];
  const bridge = own === undefined ? undefined : bridgeOf(own.xml);
  const nets = f.networks.filter((n) => n.name !== own?.name).flatMap(ipv4Subnets);
  return [...hostUsed.filter((u) => bridge === undefined || u.dev !== bridge), ...nets];
}

function conflictsOf(f: NetworkFacts, n: LibvirtNetworkFacts): string[] {
  const others = othersFor(f, n);
  return ipv4Subnets(n)
    .map((s) => describeConflicts(s, subnetConflicts(s, others)))
    .filter((t) => t !== '');
}

function sameCidr(a: Cidr, b: Cidr): boolean {
  return formatCidr(a) === formatCidr(b);
}

/** The check from the facts. Pure. */
export function networkCheck(f: NetworkFacts): Check {
  const name = 'network';
  if (f.mode === 'user') {
    return {
      name,
      status: 'ok',
      detail: `user-mode networking (${f.modeSource}): QEMU forwards SSH from 127.0.0.1, no libvirt network and no subnet to conflict`,
      fix: null,
    };
  }
  const scope = 'skipped' in f.host ? `; host routes not checked (${f.host.skipped})` : `; checked against the routes and addresses of ${f.host.where}`;
  const target = f.networks.find((n) => n.name === f.name);
  const checked = f.networks.filter((n) => n === target || isVmenvNetworkXml(n.xml));
  const problems = checked.flatMap((n) => conflictsOf(f, n).map((c) => `network '${n.name}': ${c}`));
  if (problems.length > 0) {
    const free = pickFreeSubnet([...('used' in f.host ? f.host.used : []), ...f.networks.flatMap(ipv4Subnets)]);
    return {
      name,
      status: 'fail',
      detail: `subnet conflict: ${problems.join('; ')}`,
      fix:
        `Remove the network once no machine uses it (virsh -c '${f.uri}' net-destroy <name> && virsh -c '${f.uri}' net-undefine <name>; 'vmenv prune' removes unused vmenv networks) ` +
        `and let 'vmenv up' pick a free subnet${free !== undefined ? `, or set network.subnet: ${formatCidr(free)} (free now)` : ''}.`,
    };
  }

  if (target !== undefined) {
    const subnets = ipv4Subnets(target).map((u) => formatCidr(u));
    const state = target.active ? 'active' : "inactive, 'vmenv up' starts it";
    const base = `network '${f.name}' exists (${subnets.join(', ') || 'no IPv4 subnet'}, ${state}), no conflict${scope}`;
    const wanted = f.configuredSubnet !== undefined ? parseCidr(f.configuredSubnet) : undefined;
    if (wanted !== undefined && !ipv4Subnets(target).some((u) => sameCidr(u, wanted))) {
      return {
        name,
        status: 'warn',
        detail: `${base}; network.subnet ${formatCidr(wanted)} is not used: the existing network keeps its subnet`,
        fix: `Remove the network once no machine uses it ('vmenv prune', or virsh -c '${f.uri}' net-destroy ${f.name} && virsh -c '${f.uri}' net-undefine ${f.name}) so that 'vmenv up' makes it on ${formatCidr(wanted)}, or drop network.subnet.`,
      };
    }
    return { name, status: 'ok', detail: base, fix: null };
  }

  const taken = othersFor(f, undefined);
  if (f.configuredSubnet !== undefined) {
    const wanted = parseCidr(f.configuredSubnet);
    if (wanted === undefined) {
      return { name, status: 'fail', detail: `network.subnet '${f.configuredSubnet}' is not a subnet`, fix: 'Write it as an IPv4 CIDR, e.g. 192.168.121.0/24.' };
    }
    const conflict = describeConflicts(wanted, subnetConflicts(wanted, taken));
    if (conflict !== '') {
      const free = pickFreeSubnet(taken);
      return {
        name,
        status: 'fail',
        detail: `subnet conflict: network.subnet ${conflict}`,
        fix: `Set network.subnet to a free subnet${free !== undefined ? ` (${formatCidr(free)} is free)` : ''}, or leave it out and vmenv picks one.`,
      };
    }
    return { name, status: 'ok', detail: `'vmenv up' creates network '${f.name}' on ${formatCidr(wanted)}, which is free${scope}`, fix: null };
  }
  const free = pickFreeSubnet(taken);
  if (free === undefined) {
    return { name, status: 'fail', detail: `no free private subnet left for network '${f.name}'${scope}`, fix: "Set one with 'network: { subnet: … }' in vmenv.yaml." };
  }
  return { name, status: 'ok', detail: `'vmenv up' creates network '${f.name}' on a free subnet (${formatCidr(free)} is free now)${scope}`, fix: null };
}

export interface NetworkFactsOptions {
  uri: string;
  mode: 'nat' | 'user';
  modeSource: string;
  name: string;
  configuredSubnet: string | undefined;
  /** libvirt runs on this host: its guests' routes are this host's (or those of `netns`). */
  local: boolean;
  netns: string | undefined;
}

export async function gatherNetworkFacts(client: LibvirtClient, o: NetworkFactsOptions): Promise<NetworkFacts> {
  const facts: NetworkFacts = { uri: o.uri, mode: o.mode, modeSource: o.modeSource, name: o.name, networks: [], host: { skipped: 'libvirt is on another host' } };
  if (o.configuredSubnet !== undefined) facts.configuredSubnet = o.configuredSubnet;
  if (o.mode === 'user') return facts;
  const [networks, host] = await Promise.all([
    client.connectListAllNetworks().then((refs) =>
      Promise.all(refs.map(async (r) => ({ name: r.name, xml: await client.networkGetXmlDesc(r), active: await client.networkIsActive(r) }))),
    ),
    o.local
      ? hostRoutesAndAddresses(o.netns !== undefined ? { netns: o.netns } : {}).then(
          (v) => ({ used: v.used, where: o.netns !== undefined ? `network namespace ${o.netns}` : 'this host' }),
          (err: unknown) => ({ skipped: `cannot read them: ${err instanceof Error ? err.message : String(err)}` }),
        )
      : Promise.resolve({ skipped: 'libvirt is on another host' }),
  ]);
  facts.networks = networks;
  facts.host = host;
  return facts;
}
