import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { withFileLock } from '../util/file-lock.js';
import { vmenvHome } from '../project/home.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { isNotFound, isOperationInvalid } from '../libvirt/errors.js';
import type { NetworkRef } from '../libvirt/protocol/types.js';
import { networkXml } from '../libvirt/xml/index.js';
import { hostRoutesAndAddresses, networkAddresses, networkXmlSubnets, parseCidr, pickFreeSubnet } from './subnet.js';
import { UserError } from '../errors.js';

/** The management network vmenv creates and shares when `network.name` is not set. */
export const DEFAULT_NETWORK = 'vmenv';

/**
 * vmenv's NAT networks are marked by their bridge's name, `vmenv-<hash>`: libvirt 9.0
 * keeps no metadata on networks, and a mark on the network itself lets whichever
 * machine is destroyed last remove it, whoever created it.
 */
const BRIDGE_PREFIX = 'vmenv-';

export function vmenvBridgeName(network: string): string {
  return `${BRIDGE_PREFIX}${createHash('sha256').update(network).digest('hex').slice(0, 8)}`;
}

export function isVmenvNetworkXml(xml: string): boolean {
  return new RegExp(`<bridge\\b[^>]*\\bname=['"]${BRIDGE_PREFIX}[0-9a-f]{8}['"]`).test(xml);
}

/** Machines of several projects, and parallel `up`s, share a network: its creation and removal are serialized. */
function withNetworkLock<T>(name: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  return withFileLock(join(vmenvHome(), 'locks', `network-${name}.lock`), fn, { purpose: `network ${name}`, ...(signal ? { signal } : {}) });
}

export interface EnsuredNetwork {
  network: NetworkRef;
  /** Whether it is vmenv's (created now or by an earlier machine), so the last machine's destroy removes it. */
  owned: boolean;
  /** Set when this call defined it: "192.168.122.1/24". */
  createdWith?: string;
}

/**
 * Finds the named NAT network (starting it when inactive), or defines one on a private
 * subnet that no host interface, route or other libvirt network uses.
 */
export async function ensureNatNetwork(
  client: LibvirtClient,
  name: string,
  options: { subnet: string | undefined; guestNetns: string | undefined; signal?: AbortSignal },
): Promise<EnsuredNetwork> {
  return withNetworkLock(name, options.signal, async () => {
    try {
      const network = await client.networkLookupByName(name);
      if (!(await client.networkIsActive(network))) await client.networkCreate(network);
      return { network, owned: isVmenvNetworkXml(await client.networkGetXmlDesc(network)) };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const used = [...(await hostRoutesAndAddresses(options.guestNetns ? { netns: options.guestNetns } : {})).used];
    for (const n of await client.connectListAllNetworks()) used.push(...networkXmlSubnets(await client.networkGetXmlDesc(n)));
    const subnet = options.subnet !== undefined ? parseCidr(options.subnet) : pickFreeSubnet(used);
    if (subnet === undefined) throw new UserError('no free private subnet left for the management network', { hint: "Set one with 'network: { subnet: … }'." });
    const a = networkAddresses(subnet);
    const network = await client.networkDefineXml(
      networkXml({
        name,
        bridge: { name: vmenvBridgeName(name) },
        forward: { mode: 'nat' },
        ipv4: { address: a.gateway, prefix: a.prefix, dhcp: { range: { start: a.dhcpStart, end: a.dhcpEnd } } },
        // dnsmasq otherwise pings each address for 3 s before it offers it: every address
        // on this network is its own to give, so a first boot need not wait.
        dnsmasqOptions: ['no-ping'],
      }),
    );
    try {
      await client.networkSetAutostart(network, true);
      await client.networkCreate(network);
    } catch (err) {
      await client.networkUndefine(network).catch(() => undefined);
      throw err;
    }
    return { network, owned: true, createdWith: `${a.gateway}/${a.prefix}` };
  });
}

/** Removes a network vmenv owns once no domain refers to it any more. */
export async function removeNetworkIfUnused(client: LibvirtClient, name: string, signal?: AbortSignal): Promise<void> {
  await withNetworkLock(name, signal, async () => {
    const xmls = await Promise.all((await client.connectListAllDomains()).map((d) => client.domainGetXmlDesc(d).catch(() => '')));
    if (xmls.some((xml) => xml.includes(`<source network='${name}'`) || xml.includes(`<source network="${name}"`))) return;
    const net = await client.networkLookupByName(name).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!net) return;
    await client.networkDestroy(net).catch((err: unknown) => {
      if (!isOperationInvalid(err)) throw err;
    });
    await client.networkUndefine(net);
  });
}
