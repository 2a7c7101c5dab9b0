/**
 * `vmenv prune`: removes what projects that are gone left on a libvirt — their domains
 * (with nvram, snapshot metadata and managed save), their volumes, vmenv's networks that
 * no machine uses any more — and prunes the global machine index. The stale resources
 * are found by src/inventory/stale.ts; each is judged again just before it is removed, so
 * a project that came back (or an `up` that started) meanwhile keeps its resources.
 * Box volumes are never touched: they are not machine-named.
 */
import type { LibvirtClient } from '../libvirt/client.js';
import { DomainUndefineFlags } from '../libvirt/constants.js';
import { isNotFound, isOperationInvalid } from '../libvirt/errors.js';
import { parseUuid } from '../libvirt/protocol/types.js';
import { removeNetworkIfUnused } from '../net/network.js';
import { parseVmenvMetadata, type StaleDomain, type StaleNetwork, type StaleResources, type StaleVolume } from './stale.js';
import { sleep } from '../util/sleep.js';
import { globalStatus, localStaleReason, type StaleReason } from './global-status.js';
import { errorMessage } from '../util/format.js';

/**
 * A network unused at the inventory is removed only once this long has passed since: an
 * `up` creates its network a moment before it defines the domain that uses it, and
 * removeNetworkIfUnused looks at the domains again when it removes.
 */
export const NETWORK_SETTLE_MS = 3_000;

export interface Outcome {
  /** Removed (or, in a dry run, would be). */
  removed: boolean;
  /** Why it was left after all. */
  skipped?: string;
  error?: string;
}

export type PrunedDomain = StaleDomain & Outcome;
export type PrunedVolume = StaleVolume & Outcome;
export type PrunedNetwork = StaleNetwork & Outcome;

export interface IndexEntryOutcome {
  id: string;
  machine: string;
  project: string;
  uri: string;
  reason: StaleReason;
  removed: boolean;
}

export interface PruneResult {
  uri: string;
  dryRun: boolean;
  domains: PrunedDomain[];
  volumes: PrunedVolume[];
  networks: PrunedNetwork[];
  index: IndexEntryOutcome[];
  /** Resources that looked stale but were kept, and why. */
  kept: string[];
  /** How many removals failed. */
  failed: number;
}


async function removeDomain(client: LibvirtClient, d: StaleDomain): Promise<Outcome> {
  let dom;
  try {
    dom = await client.domainLookupByUuid(parseUuid(d.uuid));
  } catch (err) {
    if (isNotFound(err)) return { removed: false, skipped: 'already gone' };
    throw err;
  }
  const mark = parseVmenvMetadata(await client.domainGetXmlDesc(dom));
  if (mark === undefined || mark.projectPath !== d.projectPath || mark.machine !== d.machine) {
    return { removed: false, skipped: 'its definition changed since it was judged' };
  }
  if ((await localStaleReason({ project: d.projectPath, machine: d.machine })) === undefined) return { removed: false, skipped: 'its project is back' };
  await client.domainDestroy(dom).catch((err: unknown) => {
    if (!isOperationInvalid(err)) throw err;
  });
  await client.domainUndefine(dom, DomainUndefineFlags.nvram | DomainUndefineFlags.snapshotsMetadata | DomainUndefineFlags.managedSave);
  return { removed: true };
}

async function removeVolume(client: LibvirtClient, v: StaleVolume, removedDomains: ReadonlySet<string>, resourceName: string): Promise<Outcome> {
  // A domain of the volume's name that is not one just removed: an `up` made it meanwhile.
  const owner = await client.domainLookupByName(resourceName).then(
    () => true,
    (err: unknown) => {
      if (isNotFound(err)) return false;
      throw err;
    },
  );
  if (owner && !removedDomains.has(resourceName)) return { removed: false, skipped: `domain ${resourceName} exists now` };
  try {
    const pool = await client.storagePoolLookupByName(v.pool);
    await client.storageVolDelete(await client.storageVolLookupByName(pool, v.name));
    return { removed: true };
  } catch (err) {
    if (isNotFound(err)) return { removed: false, skipped: 'already gone' };
    throw err;
  }
}

async function removeNetwork(client: LibvirtClient, n: StaleNetwork, signal: AbortSignal | undefined): Promise<Outcome> {
  await removeNetworkIfUnused(client, n.name, signal);
  const still = await client.networkLookupByName(n.name).then(
    () => true,
    (err: unknown) => {
      if (isNotFound(err)) return false;
      throw err;
    },
  );
  return still ? { removed: false, skipped: 'a domain uses it now' } : { removed: true };
}

async function attempt<T extends object>(item: T, work: () => Promise<Outcome>): Promise<T & Outcome> {
  try {
    return { ...item, ...(await work()) };
  } catch (err) {
    return { ...item, removed: false, error: errorMessage(err) };
  }
}

export interface PruneOptions {
  signal?: AbortSignal;
  /** When the stale resources were read (their inventory's readAt). */
  readAt?: number;
  /** Deadline for each libvirt of the machine index (pruning it asks each). */
  indexTimeoutMs?: number;
}

/** The index entries that are stale, as global-status judges them (nothing is changed). */
export async function staleIndexEntries(options: Pick<PruneOptions, 'signal' | 'indexTimeoutMs'> = {}): Promise<IndexEntryOutcome[]> {
  const status = await globalStatus({ prune: false, ...(options.signal ? { signal: options.signal } : {}), ...(options.indexTimeoutMs ? { uriTimeoutMs: options.indexTimeoutMs } : {}) });
  return status.machines
    .filter((m) => m.stale !== undefined)
    .map((m) => ({ id: m.id, machine: m.machine, project: m.project, uri: m.uri, reason: m.stale!, removed: false }));
}

/** The result of a dry run: every stale resource, none removed. Pure. */
export function plannedPrune(stale: StaleResources, index: IndexEntryOutcome[]): PruneResult {
  return {
    uri: stale.uri,
    dryRun: true,
    domains: stale.domains.map((d) => ({ ...d, removed: false })),
    volumes: stale.volumes.map((v) => ({ ...v, removed: false })),
    networks: stale.networks.map((n) => ({ ...n, removed: false })),
    index,
    kept: [...stale.kept],
    failed: 0,
  };
}

/** Removes the stale resources (domains, then volumes, then networks) and prunes the machine index. */
export async function prune(client: LibvirtClient, stale: StaleResources, options: PruneOptions): Promise<PruneResult> {
  const signalOpts = options.signal ? { signal: options.signal } : {};
  const result: PruneResult = { uri: stale.uri, dryRun: false, domains: [], volumes: [], networks: [], index: [], kept: [...stale.kept], failed: 0 };

  for (const d of stale.domains) {
    options.signal?.throwIfAborted();
    result.domains.push(await attempt(d, () => removeDomain(client, d)));
  }
  const removedDomains = new Set(result.domains.filter((d) => d.removed).map((d) => d.name));
  const keptDomains = new Set(result.domains.filter((d) => !d.removed).map((d) => d.name));
  for (const v of stale.volumes) {
    options.signal?.throwIfAborted();
    const { resourceName } = v;
    if (keptDomains.has(resourceName)) {
      result.volumes.push({ ...v, removed: false, skipped: `its domain ${resourceName} was kept` });
      continue;
    }
    result.volumes.push(await attempt(v, () => removeVolume(client, v, removedDomains, resourceName)));
  }
  if (stale.networks.length > 0 && options.readAt !== undefined) {
    const wait = options.readAt + NETWORK_SETTLE_MS - Date.now();
    if (wait > 0) await sleep(wait, options.signal);
  }
  for (const n of stale.networks) {
    options.signal?.throwIfAborted();
    result.networks.push(await attempt(n, () => removeNetwork(client, n, options.signal)));
  }

  const status = await globalStatus({ prune: true, ...signalOpts, ...(options.indexTimeoutMs ? { uriTimeoutMs: options.indexTimeoutMs } : {}) });
  result.index = status.pruned.map((p) => ({ id: p.id, machine: p.machine, project: p.project, uri: p.uri, reason: p.reason, removed: true }));
  result.failed = [...result.domains, ...result.volumes, ...result.networks].filter((x) => x.error !== undefined).length;
  return result;
}
