/**
 * `vmenv global-status`: every machine in the global machine index, from every project,
 * with its state asked from libvirt just now; entries whose project, state or domain
 * vanished are pruned from the index (as Vagrant's global-status does).
 */
import { domainStatus } from '../hosts/machine-status.js';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BoxRef, StoreOptions } from '../box/store-paths.js';
import { readMachineIndex, type MachineIndexEntry } from '../project/machine-index.js';
import { PROJECT_FILE } from '../config/load.js';
import { DomainState, domainStateName, isNotFound, openLibvirt } from '../libvirt/index.js';
import type { LibvirtClient } from '../libvirt/index.js';
import { pruneMachineIndex } from '../project/machine-index.js';
import { ProjectState, type MachineState } from '../project/state.js';
import { untilAborted } from '../util/until-aborted.js';
import { errorMessage } from '../util/format.js';

/** Why an index entry no longer points at a machine. */
export type StaleReason = 'project folder is gone' | 'vmenv.yaml is gone' | 'machine state is gone' | 'domain is gone';

/** The state shown for every machine of a libvirt that could not be reached. */
export const UNREACHABLE_STATE = 'unknown (libvirt unreachable)';

export interface GlobalMachine {
  id: string;
  machine: string;
  project: string;
  box: BoxRef;
  uri: string;
  domain: string;
  /** running, shutoff, paused, suspended, crashed, shutting down, or `unknown (…)`; `stale` for a stale entry. */
  state: string;
  /** Set on an entry that points at nothing any more and was kept (pruning off). */
  stale?: StaleReason;
}

export interface PrunedMachine {
  id: string;
  machine: string;
  project: string;
  uri: string;
  domain: string;
  reason: StaleReason;
}

export interface GlobalStatus {
  machines: GlobalMachine[];
  pruned: PrunedMachine[];
}

/** What global-status asks of a libvirt connection. */
export type GlobalStatusLibvirt = Pick<LibvirtClient, 'domainLookupByName' | 'domainGetState' | 'domainHasManagedSaveImage' | 'close'>;
export type GlobalStatusOpener = (uri: string, signal: AbortSignal) => Promise<GlobalStatusLibvirt>;

export interface GlobalStatusOptions extends StoreOptions {
  /** Remove stale entries from the index (default true); otherwise list them marked stale. */
  prune?: boolean;
  signal?: AbortSignal;
  /** How long one libvirt URI may take to connect and answer (default 10 s). */
  uriTimeoutMs?: number;
  openLibvirt?: GlobalStatusOpener;
}

const DEFAULT_URI_TIMEOUT_MS = 10_000;

const defaultOpener: GlobalStatusOpener = (uri, signal) => openLibvirt(uri, { signal, keepalive: false });

/** A domain's state in the words of `vmenv status` (libvirt's name for a state it has no word for). */
export function domainStateWord(state: number, managedSave: boolean): string {
  return domainStatus(state, managedSave) ?? domainStateName(state);
}

async function isMissing(path: string, kind: 'dir' | 'file'): Promise<boolean> {
  try {
    const s = await stat(path);
    return kind === 'dir' ? !s.isDirectory() : false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Anything else (no permission, I/O error) cannot prove the project gone.
    return code === 'ENOENT' || code === 'ENOTDIR';
  }
}

/**
 * What the file system tells of an entry's machine: why it is stale, or else its machine
 * state (undefined when the state file is there but cannot be read).
 */
export type LocalMachine = { stale: StaleReason } | { stale?: undefined; state: MachineState | undefined };

export async function readLocalMachine(entry: Pick<MachineIndexEntry, 'project' | 'machine'>): Promise<LocalMachine> {
  if (await isMissing(entry.project, 'dir')) return { stale: 'project folder is gone' };
  if (await isMissing(join(entry.project, PROJECT_FILE), 'file')) return { stale: 'vmenv.yaml is gone' };
  let state: MachineState | undefined;
  try {
    state = await new ProjectState(entry.project).read(entry.machine);
  } catch {
    // A state file that cannot be read is still there: not stale.
    return { state: undefined };
  }
  return state === undefined ? { stale: 'machine state is gone' } : { state };
}

/** Why the entry is stale as far as the file system tells, or undefined. */
export async function localStaleReason(entry: Pick<MachineIndexEntry, 'project' | 'machine'>): Promise<StaleReason | undefined> {
  return (await readLocalMachine(entry)).stale;
}

type Answer = { state: string } | { gone: true };


/** Asks one libvirt for the domains of its entries, over one connection. */
async function askLibvirt(uri: string, entries: readonly MachineIndexEntry[], opener: GlobalStatusOpener, signal: AbortSignal): Promise<Map<string, Answer>> {
  const answers = new Map<string, Answer>();
  let client: GlobalStatusLibvirt;
  const opening = opener(uri, signal);
  try {
    client = await untilAborted(opening, signal);
  } catch {
    // A connection that completes after the deadline is closed, not left holding the process open.
    opening.then((late) => void late.close().catch(() => undefined), () => undefined);
    for (const e of entries) answers.set(e.id, { state: UNREACHABLE_STATE });
    return answers;
  }
  try {
    for (const e of entries) {
      try {
        const dom = await untilAborted(client.domainLookupByName(e.domain), signal);
        const { state } = await untilAborted(client.domainGetState(dom), signal);
        const saved = state === DomainState.shutoff && (await untilAborted(client.domainHasManagedSaveImage(dom), signal));
        answers.set(e.id, { state: domainStateWord(state, saved) });
      } catch (err) {
        if (isNotFound(err)) answers.set(e.id, { gone: true });
        else if (signal.aborted) break;
        else answers.set(e.id, { state: `unknown (${errorMessage(err)})` });
      }
    }
  } finally {
    // A daemon that stopped answering may not answer the close either: do not wait on it.
    if (signal.aborted) void client.close().catch(() => undefined);
    else await client.close().catch(() => undefined);
  }
  for (const e of entries) if (!answers.has(e.id)) answers.set(e.id, { state: 'unknown (libvirt did not answer in time)' });
  return answers;
}

function sameEntry(a: MachineIndexEntry, b: MachineIndexEntry): boolean {
  return a.id === b.id && a.project === b.project && a.machine === b.machine && a.uri === b.uri && a.domain === b.domain;
}

/**
 * Lists the machines of the global index with their live state, one libvirt connection
 * per URI (the URIs asked in parallel; one that cannot be reached leaves its machines
 * `unknown (libvirt unreachable)`), and prunes the stale entries unless `prune` is false.
 * Only an answer proves a domain gone: nothing is pruned for an unreachable libvirt.
 */
export async function globalStatus(options: GlobalStatusOptions = {}): Promise<GlobalStatus> {
  const { signal } = options;
  signal?.throwIfAborted();
  const entries = await readMachineIndex(options);
  const stale = new Map<string, StaleReason>();
  for (const e of entries) {
    const reason = await localStaleReason(e);
    if (reason !== undefined) stale.set(e.id, reason);
  }

  const byUri = new Map<string, MachineIndexEntry[]>();
  for (const e of entries) {
    if (stale.has(e.id)) continue;
    byUri.set(e.uri, [...(byUri.get(e.uri) ?? []), e]);
  }
  const timeout = AbortSignal.timeout(options.uriTimeoutMs ?? DEFAULT_URI_TIMEOUT_MS);
  const querySignal = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  const opener = options.openLibvirt ?? defaultOpener;
  const answers = new Map<string, Answer>();
  for (const part of await Promise.all([...byUri].map(([uri, group]) => askLibvirt(uri, group, opener, querySignal)))) {
    for (const [id, answer] of part) answers.set(id, answer);
  }
  signal?.throwIfAborted();
  for (const [id, answer] of answers) if ('gone' in answer) stale.set(id, 'domain is gone');

  let dropped: MachineIndexEntry[] = [];
  if (options.prune !== false && stale.size > 0) {
    const judged = entries.filter((e) => stale.has(e.id));
    // Only entries unchanged since they were judged: one that `up` re-registered meanwhile stays.
    dropped = await pruneMachineIndex(async (e) => judged.some((j) => sameEntry(j, e)), options);
  }
  const droppedIds = new Set(dropped.map((e) => e.id));

  const machines: GlobalMachine[] = entries
    .filter((e) => !droppedIds.has(e.id))
    .map((e) => {
      const reason = stale.get(e.id);
      const answer = answers.get(e.id);
      const base = { id: e.id, machine: e.machine, project: e.project, box: e.box, uri: e.uri, domain: e.domain };
      if (reason !== undefined) return { ...base, state: 'stale', stale: reason };
      return { ...base, state: answer !== undefined && 'state' in answer ? answer.state : 'unknown' };
    })
    .sort((a, b) => a.project.localeCompare(b.project) || a.machine.localeCompare(b.machine));
  const pruned: PrunedMachine[] = dropped.map((e) => ({
    id: e.id,
    machine: e.machine,
    project: e.project,
    uri: e.uri,
    domain: e.domain,
    reason: stale.get(e.id) ?? 'domain is gone',
  }));
  return { machines, pruned };
}

/** The id as the table shows it: the first 7 characters, as Vagrant does. */
export function shortId(id: string): string {
  return id.slice(0, 7);
}
