/**
 * `vmenv prune`: finds on one libvirt what projects that are gone left behind (see
 * inventory/stale.ts) and removes it (inventory/prune.ts), with the stale entries of the
 * global machine index.
 */
import { projectCwd } from '../config/project-file.js';
import { ExitCode, UserError } from '../errors.js';
import { plannedPrune, prune, staleIndexEntries, type PruneResult } from '../inventory/prune.js';
import { detectStale } from '../inventory/stale.js';
import { closeLibvirt, reachLibvirt, type LibvirtProbe } from './doctor/libvirt-probe.js';
import { checkTarget } from './doctor/target.js';

export type { PruneResult } from '../inventory/prune.js';

export interface FindStaleOptions {
  /** --cwd: the folder whose project's uri and machines count (default: $VMENV_CWD, else the current folder). */
  cwd?: string | undefined;
  /** --uri: the libvirt to clean up (default: the project's uri, else vmenv's default choice). */
  uri?: string | undefined;
  /** How long libvirt, and each libvirt of the machine index, may take to answer. */
  timeoutMs: number;
}

/**
 * The stale resources found on one libvirt, while its connection is open. Each step takes
 * the signal only when it is called: until then a Ctrl-C quits at once, as neither
 * reaching libvirt nor reading its resources can be cancelled.
 */
export interface StaleOnLibvirt {
  /** The libvirt's URI, as its client names it. */
  uri: string;
  /** Every stale resource and stale index entry, none removed: a dry run's result. */
  plan(signal: AbortSignal): Promise<PruneResult>;
  /** Removes them, judging each again just before. */
  remove(signal: AbortSignal): Promise<PruneResult>;
}

/** Why libvirt could not be reached, as the user's error. Pure. */
export function unreachableError(probe: LibvirtProbe): UserError {
  return new UserError(`cannot reach libvirt at ${probe.uri}: ${probe.error ?? 'unknown error'}`, {
    ...(probe.hint !== undefined ? { hint: probe.hint } : {}),
    exitCode: probe.cause === 'bad-uri' ? ExitCode.usage : ExitCode.unavailable,
  });
}

/** How many resources and index entries a prune names. Pure. */
export function pruneCount(r: PruneResult): number {
  return r.domains.length + r.volumes.length + r.networks.length + r.index.length;
}

/** How many of them a prune removed. Pure. */
export function removedCount(r: PruneResult): number {
  return [...r.domains, ...r.volumes, ...r.networks, ...r.index].filter((x) => x.removed).length;
}

/** Connects to the libvirt to clean up, finds what is stale there and hands it to `use`; closes the connection after. */
export async function withStaleResources<T>(options: FindStaleOptions, use: (found: StaleOnLibvirt) => Promise<T>): Promise<T> {
  const { timeoutMs } = options;
  const target = await checkTarget(projectCwd(options.cwd), options.uri);
  const reached = await reachLibvirt({
    timeoutMs,
    ...(target.uri !== undefined ? { uri: target.uri } : {}),
    ...(target.uriReason !== undefined ? { uriReason: target.uriReason } : {}),
  });
  if (reached.client === undefined || reached.target === undefined) throw unreachableError(reached.probe);
  const client = reached.client;
  try {
    const projects = target.project === undefined ? [] : [{ dir: target.project.dir, machines: target.project.machines }];
    const { inventory, stale } = await detectStale(client, { local: reached.target.transport === 'unix', projects });
    return await use({
      uri: client.uri,
      plan: async (signal) => plannedPrune(stale, await staleIndexEntries({ signal, indexTimeoutMs: timeoutMs })),
      remove: (signal) => prune(client, stale, { signal, readAt: inventory.readAt, indexTimeoutMs: timeoutMs }),
    });
  } finally {
    await closeLibvirt(client);
  }
}
