/**
 * Stale vmenv resources on one libvirt: domains whose project is gone, the volumes of
 * those domains (and volumes whose domain is gone), and vmenv's networks that no
 * machine uses any more. `vmenv doctor` reports them and `vmenv prune` removes them.
 *
 * What is vmenv's:
 * - a domain carrying vmenv's `<metadata>` element (the project path and machine name,
 *   see src/libvirt/xml/domain.ts);
 * - a volume named after a machine (`<dir>_<machine>_<hash>.qcow2`, `-seed.iso`,
 *   `-diskN.qcow2`, `-disk-<name>.qcow2`, `-boxN.qcow2`, see src/project/names.ts). Box volumes (`vmenv-box_…`) are never;
 * - a network whose bridge is `vmenv-<hash>` (src/net/network.ts).
 *
 * Judging is pure (`findStale`) over an inventory read from libvirt and the liveness of
 * the projects read from the file system.
 */
import { isVmenvNetworkXml } from '../net/network.js';
import { VMENV_DOMAIN_XMLNS } from '../libvirt/xml/domain.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { isNotFound } from '../libvirt/errors.js';
import { formatUuid } from '../libvirt/protocol/types.js';
import { readLocalMachine, type StaleReason } from './global-status.js';
import { readMachineIndex, type MachineIndexEntry } from '../project/machine-index.js';
import type { StoreOptions } from '../box/store-paths.js';
import { unescapeXml } from '../libvirt/xml/writer.js';

/** An orphan volume younger than this may belong to an `up` under way (volumes come before the domain). */
export const ORPHAN_VOLUME_GRACE_MS = 10 * 60_000;

export interface VmenvDomainMark {
  projectPath: string;
  machine: string;
  box?: string;
}

export interface DomainItem {
  name: string;
  uuid: string;
  active: boolean;
  /** vmenv's metadata; undefined for a domain vmenv did not make. */
  mark?: VmenvDomainMark;
  /** libvirt networks its interfaces join. */
  networks: string[];
}

export interface VolumeItem {
  pool: string;
  name: string;
  /** The machine's resource name the volume belongs to. */
  resourceName: string;
  role: 'root' | 'seed' | 'disk' | 'box-disk';
  /**
   * Last modification, ms since the epoch (libvirt's `<timestamps><mtime>`). readInventory
   * reads it only where findStale looks at it: on this host, for a volume whose domain is gone.
   */
  mtimeMs?: number;
}

export interface NetworkItem {
  name: string;
  /** Not read when judging (readInventory leaves it unset). */
  active?: boolean;
}

export interface Inventory {
  uri: string;
  /** libvirt runs on this host, where the projects' paths can be checked. */
  local: boolean;
  /** When it was read, ms since the epoch. */
  readAt: number;
  domains: DomainItem[];
  /** vmenv-named volumes only. */
  volumes: VolumeItem[];
  /** vmenv's networks only. */
  networks: NetworkItem[];
}

/** What the file system says of the projects behind the inventory's domains. */
export interface Liveness {
  /** By domain name: undefined when its project and machine state are there. */
  domains: Map<string, StaleReason | undefined>;
  /** `pool/name` of volumes some live project's machine state lists. */
  liveVolumes: Set<string>;
  /** Networks some live project's machine state lists. */
  liveNetworks: Set<string>;
  /** Domain names in this host's machine index (made from here). */
  indexed: Set<string>;
}

export interface StaleDomain {
  name: string;
  uuid: string;
  projectPath: string;
  machine: string;
  active: boolean;
  reason: string;
}

export interface StaleVolume {
  pool: string;
  name: string;
  /** The machine it belongs to (its domain's name). */
  resourceName: string;
  reason: string;
}

export interface StaleNetwork {
  name: string;
  reason: string;
}

export interface StaleResources {
  uri: string;
  domains: StaleDomain[];
  volumes: StaleVolume[];
  networks: StaleNetwork[];
  /** Resources that look stale but are kept, and why. */
  kept: string[];
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** vmenv's metadata in a domain's XML, whatever prefix libvirt gives its namespace. Pure. */
export function parseVmenvMetadata(domainXml: string): VmenvDomainMark | undefined {
  const meta = /<metadata>([\s\S]*?)<\/metadata>/.exec(domainXml)?.[1];
  if (meta === undefined) return undefined;
  const ns = escapeRe(VMENV_DOMAIN_XMLNS);
  const el = new RegExp(`<(\\w+):(\\w+)\\b[^>]*\\bxmlns:\\1=['"]${ns}['"][^>]*>([\\s\\S]*?)</\\1:\\2>`).exec(meta);
  if (el === null) return undefined;
  const [, prefix, , body] = el;
  const field = (local: string): string | undefined => {
    const m = new RegExp(`<${prefix}:${local}>([^<]*)</${prefix}:${local}>`).exec(body ?? '');
    return m === null ? undefined : unescapeXml(m[1] ?? '');
  };
  const projectPath = field('project');
  const machine = field('name');
  if (projectPath === undefined || machine === undefined || !projectPath.startsWith('/')) return undefined;
  const box = field('box');
  return box === undefined ? { projectPath, machine } : { projectPath, machine, box };
}

/** The libvirt networks a domain's interfaces join. Pure. */
export function domainNetworks(domainXml: string): string[] {
  const out = new Set<string>();
  for (const m of domainXml.matchAll(/<interface\b[^>]*\btype=['"]network['"][^>]*>([\s\S]*?)<\/interface>/g)) {
    const source = /<source\b[^>]*\bnetwork=['"]([^'"]+)['"]/.exec(m[1] ?? '');
    if (source !== null) out.add(unescapeXml(source[1]!));
  }
  return [...out];
}

/** `<dir>_<machine>_<8 hex>` as machineResourceName makes it. */
const RESOURCE_NAME = '[A-Za-z0-9][A-Za-z0-9.-]{0,39}_[a-z0-9][a-z0-9-]{0,62}_[0-9a-f]{8}';
/** The suffixes of machineVolumeNames: the root, the seed, an extra disk by position or by name, an overlay on a box's other disk. */
const VOLUME_RE = new RegExp(`^(${RESOURCE_NAME})(?:(\\.qcow2)|(-seed\\.iso)|(-disk(?:\\d+|-[a-z0-9][a-z0-9_-]{0,62})\\.qcow2)|-box(\\d+)\\.qcow2)$`);

/** The machine a volume belongs to, from its name; undefined for any other volume (box volumes included). Pure. */
export function parseMachineVolumeName(name: string): { resourceName: string; role: VolumeItem['role'] } | undefined {
  if (name.startsWith('vmenv-box_')) return undefined;
  const m = VOLUME_RE.exec(name);
  if (m === null) return undefined;
  return { resourceName: m[1]!, role: m[2] !== undefined ? 'root' : m[3] !== undefined ? 'seed' : m[5] !== undefined ? 'box-disk' : 'disk' };
}

/** libvirt's `<mtime>` of a volume's XML (seconds with a fraction), in ms. Pure. */
export function volumeMtimeMs(volumeXml: string): number | undefined {
  const m = /<timestamps>[\s\S]*?<mtime>(\d+)(?:\.(\d+))?<\/mtime>/.exec(volumeXml);
  if (m === null) return undefined;
  return Number(m[1]) * 1000 + Math.floor(Number(`0.${m[2] ?? '0'}`) * 1000);
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

/**
 * Which resources of the inventory are stale. Pure.
 * - A domain is stale when its project folder, vmenv.yaml or machine state is gone. On a
 *   libvirt on another host only the domains this host's machine index lists count: a
 *   project path that does not exist here may be another client's.
 * - A volume is stale when it belongs to a stale domain, or when no domain of its name
 *   exists and no live project's state lists it (and, on this host, it is older than
 *   the grace period: an `up` makes volumes before the domain).
 * - A network is stale when no domain that stays and no live project's state uses it.
 */
export function findStale(inv: Inventory, live: Liveness, now: number = Date.now(), graceMs = ORPHAN_VOLUME_GRACE_MS): StaleResources {
  const out: StaleResources = { uri: inv.uri, domains: [], volumes: [], networks: [], kept: [] };
  const staleNames = new Set<string>();
  for (const d of inv.domains) {
    if (d.mark === undefined) continue;
    const reason = live.domains.get(d.name);
    if (reason === undefined) continue;
    if (!inv.local && !live.indexed.has(d.name)) {
      out.kept.push(`domain ${d.name}: ${d.mark.projectPath} is not on this host, and this host's machine index does not list it (another client's?)`);
      continue;
    }
    staleNames.add(d.name);
    out.domains.push({ name: d.name, uuid: d.uuid, projectPath: d.mark.projectPath, machine: d.mark.machine, active: d.active, reason: `${reason} (${d.mark.projectPath})` });
  }

  const byName = new Map(inv.domains.map((d) => [d.name, d]));
  for (const v of inv.volumes) {
    const key = `${v.pool}/${v.name}`;
    if (live.liveVolumes.has(key)) continue;
    const owner = byName.get(v.resourceName);
    if (owner !== undefined) {
      if (staleNames.has(owner.name)) out.volumes.push({ pool: v.pool, name: v.name, resourceName: v.resourceName, reason: `its domain ${owner.name} is stale` });
      continue;
    }
    if (!inv.local) {
      out.kept.push(`volume ${key}: no domain ${v.resourceName}, but libvirt is on another host (another client's machine being made?)`);
      continue;
    }
    if (v.mtimeMs !== undefined && now - v.mtimeMs < graceMs) {
      out.kept.push(`volume ${key}: no domain ${v.resourceName}, but it changed ${ago(now - v.mtimeMs)} ago (an 'up' under way?)`);
      continue;
    }
    out.volumes.push({ pool: v.pool, name: v.name, resourceName: v.resourceName, reason: `no domain ${v.resourceName}` });
  }

  const used = new Set(inv.domains.filter((d) => !staleNames.has(d.name)).flatMap((d) => d.networks));
  for (const n of inv.networks) {
    if (used.has(n.name) || live.liveNetworks.has(n.name)) continue;
    const formerly = inv.domains.filter((d) => staleNames.has(d.name) && d.networks.includes(n.name)).map((d) => d.name);
    out.networks.push({ name: n.name, reason: formerly.length > 0 ? `only stale domains use it (${formerly.join(', ')})` : 'no machine uses it' });
  }
  return out;
}

/** Reads the domains, vmenv-named volumes and vmenv networks of one libvirt. */
export async function readInventory(client: LibvirtClient, local: boolean): Promise<Inventory> {
  const readAt = Date.now();
  const present = <T>(x: T | undefined): x is T => x !== undefined;
  const [domains, volumes, networks] = await Promise.all([
    client.connectListAllDomains().then((refs) =>
      Promise.all(
        refs.map(async (ref): Promise<DomainItem | undefined> => {
          try {
            const [xml, active] = await Promise.all([client.domainGetXmlDesc(ref), client.domainIsActive(ref)]);
            const mark = parseVmenvMetadata(xml);
            return { name: ref.name, uuid: formatUuid(ref.uuid), active, networks: domainNetworks(xml), ...(mark ? { mark } : {}) };
          } catch (err) {
            if (isNotFound(err)) return undefined; // removed meanwhile
            throw err;
          }
        }),
      ),
    ).then((items) => items.filter(present)),
    client.connectListAllStoragePools().then(async (pools) => {
      const lists = await Promise.all(
        pools.map(async (pool) => {
          if (!(await client.storagePoolIsActive(pool))) return [];
          const vols = await client.storagePoolListAllVolumes(pool);
          return vols.flatMap((ref) => {
            const parsed = parseMachineVolumeName(ref.name);
            if (parsed === undefined) return [];
            const item: VolumeItem = { pool: pool.name, name: ref.name, ...parsed };
            return [{ ref, item }];
          });
        }),
      );
      return lists.flat();
    }),
    client.connectListAllNetworks().then((refs) =>
      Promise.all(
        refs.map(async (ref): Promise<NetworkItem | undefined> => {
          try {
            return isVmenvNetworkXml(await client.networkGetXmlDesc(ref)) ? { name: ref.name } : undefined;
          } catch (err) {
            if (isNotFound(err)) return undefined;
            throw err;
          }
        }),
      ),
    ),
  ]);
  // Only an orphan volume's age counts (see findStale), and only on this host.
  if (local) {
    const domainNames = new Set(domains.map((d) => d.name));
    await Promise.all(
      volumes
        .filter(({ item }) => !domainNames.has(item.resourceName))
        .map(async ({ ref, item }) => {
          const mtime = volumeMtimeMs(await client.storageVolGetXmlDesc(ref).catch(() => ''));
          if (mtime !== undefined) item.mtimeMs = mtime;
        }),
    );
  }
  return { uri: client.uri, local, readAt, domains, volumes: volumes.map((v) => v.item), networks: networks.filter(present) };
}

export interface LivenessOptions extends StoreOptions {
  /** Projects known to be live (the current one), with their machine names. */
  projects?: ReadonlyArray<{ dir: string; machines: readonly string[] }>;
}

/** An entry of the machine index whose project, vmenv.yaml or machine state is gone. */
export interface StaleIndexEntry {
  machine: string;
  project: string;
  reason: StaleReason;
}

/**
 * Asks the file system about every project the inventory's domains name, and reads the
 * machine state of every live project vmenv knows (those, the machine index's, the
 * current one) for the volumes and networks they own. Also says which entries of the
 * machine index are stale, in the index's order.
 */
export async function readLiveness(inv: Inventory, options: LivenessOptions = {}): Promise<{ live: Liveness; staleIndex: StaleIndexEntry[] }> {
  const index = await readMachineIndex(options).catch((): MachineIndexEntry[] => []);
  const live: Liveness = { domains: new Map(), liveVolumes: new Set(), liveNetworks: new Set(), indexed: new Set(index.map((e) => e.domain)) };
  const key = (project: string, machine: string): string => `${project}\0${machine}`;
  const known = new Map<string, { project: string; machine: string }>();
  const add = (project: string, machine: string): void => void known.set(key(project, machine), { project, machine });
  for (const d of inv.domains) if (d.mark) add(d.mark.projectPath, d.mark.machine);
  for (const e of index) add(e.project, e.machine);
  for (const p of options.projects ?? []) for (const m of p.machines) add(p.dir, m);

  const verdicts = new Map<string, StaleReason | undefined>();
  await Promise.all(
    [...known].map(async ([k, entry]) => {
      const found = await readLocalMachine(entry);
      verdicts.set(k, found.stale);
      if (found.stale !== undefined) return;
      const { state } = found;
      for (const v of state?.volumes ?? []) live.liveVolumes.add(`${v.pool}/${v.name}`);
      for (const n of state?.networks ?? []) live.liveNetworks.add(n.name);
      for (const nic of state?.nics ?? []) if (nic.mode === 'nat') live.liveNetworks.add(nic.network);
    }),
  );
  for (const d of inv.domains) {
    if (d.mark) live.domains.set(d.name, verdicts.get(key(d.mark.projectPath, d.mark.machine)));
  }
  const staleIndex: StaleIndexEntry[] = [];
  for (const e of index) {
    const reason = verdicts.get(key(e.project, e.machine));
    if (reason !== undefined) staleIndex.push({ machine: e.machine, project: e.project, reason });
  }
  return { live, staleIndex };
}

/** Reads and judges one libvirt's resources, and says which entries of the machine index are stale. */
export async function detectStale(
  client: LibvirtClient,
  options: LivenessOptions & { local: boolean; now?: number },
): Promise<{ inventory: Inventory; stale: StaleResources; staleIndex: StaleIndexEntry[] }> {
  const inventory = await readInventory(client, options.local);
  const { live, staleIndex } = await readLiveness(inventory, options);
  return { inventory, stale: findStale(inventory, live, options.now ?? Date.now()), staleIndex };
}
