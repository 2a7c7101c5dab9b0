/**
 * `vmenv rsync-auto`: watches the rsync synced folders of running machines and syncs
 * each change into the guest as it happens. Per folder, a watcher (chokidar) feeds a
 * SyncScheduler (debounce, coalescing, no overlap, retries); per machine, an OpenSSH
 * connection master that the syncs share, re-made (with the machine's state read again,
 * for a new IP) after the guest went away, e.g. across a reboot.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { MachineConfig, ProjectConfig, SyncedFolder } from '../config/types.js';
import { rsyncRemoteShell } from '../ssh/config.js';
import { UserError } from '../errors.js';
import { openMachine, type MachineHandle } from '../hosts/handle.js';
import { writeMachineSshConfig } from '../access/machine-ssh-config.js';
import { machineStatus } from '../hosts/machine-status.js';
import { controlPathArgs, SshMaster, SshMasterError, sshRun } from '../access/ssh-master.js';
import { ensureFolderSource, guestFolderCommand, lookedUpGroups, rsyncArgs, RsyncError, rsyncFoldersOf, runRsync } from './sync.js';
import { backoffMs, SyncScheduler, type SyncBatch } from './sync-scheduler.js';
import { watchIgnore } from './watch-ignore.js';
import { untilAborted } from '../util/until-aborted.js';

export interface RsyncAutoOptions {
  /** Poll the folders instead of inotify (file systems without it: NFS, some FUSE). */
  poll: boolean;
  signal: AbortSignal;
  /** One line per sync. */
  log(line: string): void;
  /** Notes and problems. */
  warn(line: string): void;
  /** Quiet time before a sync (default 100 ms) and longest wait under a stream of changes (1 s). */
  quietMs?: number;
  maxWaitMs?: number;
}

/** The guest cannot be reached now; retried. */
class GuestUnreachable extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'GuestUnreachable';
  }
}

const CONNECT_TIMEOUT_MS = 20_000;
const STATE_TIMEOUT_MS = 15_000;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5_000;
/** rsync exit codes that no retry can mend: usage, protocol incompatibility, unsupported action. */
const RSYNC_FATAL = new Set([1, 2, 4]);

/**
 * Watches and syncs until `options.signal` aborts (then rejects with its reason, every
 * watcher closed and no rsync or ssh of its own left running) or a failure that
 * retrying cannot mend (rejects with it).
 */
export async function rsyncAuto(project: ProjectConfig, machines: readonly MachineConfig[], options: RsyncAutoOptions): Promise<never> {
  const chosen = await runningMachines(project, machines, options);
  const socketDir = await mkdtemp(join(tmpdir(), 'vmenv-rsync-auto-'));
  const stopAll = new AbortController();
  let fatal: unknown;
  const fail = (err: unknown): void => {
    fatal ??= err;
    stopAll.abort(err);
  };
  const links = chosen.map((c, i) => new MachineLink(project, c.machine, c.folders, join(socketDir, `m${i}`)));
  const watches: FolderWatch[] = [];
  try {
    for (const link of links) {
      for (const [folder, source] of link.folders) watches.push(new FolderWatch(link, folder, source, options, fail));
    }
    const stopped = AbortSignal.any([options.signal, stopAll.signal]);
    await Promise.all(watches.map((w) => w.start(stopped)));
    options.warn(`Watching ${watches.map((w) => w.label).join(', ')} (Ctrl-C to stop)`);
    for (const w of watches) w.firstSync();
    await new Promise<void>((resolve) => {
      if (stopped.aborted) resolve();
      else stopped.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    await Promise.all(watches.map((w) => w.stop()));
    await Promise.all(links.map((l) => l.close()));
    await rm(socketDir, { recursive: true, force: true });
  }
  throw fatal ?? options.signal.reason;
}

interface ChosenMachine {
  machine: MachineConfig;
  folders: [SyncedFolder, string][];
}

/** The machines to watch: running, with rsync folders (their host folders made or checked). */
async function runningMachines(project: ProjectConfig, machines: readonly MachineConfig[], options: RsyncAutoOptions): Promise<ChosenMachine[]> {
  const chosen: ChosenMachine[] = [];
  for (const machine of machines) {
    const h = { project, machine };
    const folders = rsyncFoldersOf(h);
    if (folders.length === 0) {
      options.warn(`${machine.name}: no rsync folder to watch`);
      continue;
    }
    const { status } = await withMachine(project, machine, options.signal, machineStatus);
    if (status !== 'running') {
      options.warn(`${machine.name}: ${status}, not watched (run 'vmenv up ${machine.name}', then rsync-auto again)`);
      continue;
    }
    const withSources: [SyncedFolder, string][] = [];
    for (const f of folders) withSources.push([f, await ensureFolderSource(h, f)]);
    chosen.push({ machine, folders: withSources });
  }
  if (chosen.length === 0) {
    throw new UserError('no running machine with an rsync synced folder to watch', {
      hint: "Start the machines with 'vmenv up'; folders of type rsync (the default) that are not disabled are watched.",
    });
  }
  return chosen;
}

/**
 * Runs `fn` with a handle on the machine over a libvirt connection of its own, closed
 * after: rsync-auto holds none while it only syncs. Bounded in time.
 */
async function withMachine<T>(project: ProjectConfig, machine: MachineConfig, signal: AbortSignal, fn: (h: MachineHandle) => Promise<T>): Promise<T> {
  const bounded = AbortSignal.any([signal, AbortSignal.timeout(STATE_TIMEOUT_MS)]);
  const h = await openMachine(project, machine, bounded);
  try {
    return await untilAborted(fn(h), bounded);
  } finally {
    await h.client.close().catch(() => undefined);
  }
}

/**
 * One machine's connection for the syncs: its OpenSSH config (written again from its
 * state at each connect) and a connection master; at each connect the guest folders are
 * made. Shared by the machine's folders; one connect at a time.
 */
class MachineLink {
  private master: SshMaster | undefined;
  private connecting: Promise<string> | undefined;
  private configFile: string | undefined;
  /** The owners' login groups the guest folder commands looked up (see lookedUpGroups). */
  groups = new Map<SyncedFolder, string>();

  constructor(
    readonly project: ProjectConfig,
    readonly machine: MachineConfig,
    readonly folders: [SyncedFolder, string][],
    readonly controlPath: string,
  ) {}

  /** The OpenSSH config file to use, connecting first when there is no live master. */
  async ready(signal: AbortSignal): Promise<string> {
    if (this.master?.alive && this.configFile !== undefined) return this.configFile;
    this.connecting ??= this.connect(signal).finally(() => (this.connecting = undefined));
    return untilAborted(this.connecting, signal);
  }

  /** Drops the master: the next sync connects again (the guest went away). */
  async reset(): Promise<void> {
    const m = this.master;
    this.master = undefined;
    await m?.stop();
  }

  async close(): Promise<void> {
    await this.connecting?.catch(() => undefined);
    await this.reset();
  }

  private async connect(signal: AbortSignal): Promise<string> {
    await this.reset();
    // The state is read again each time: after a reboot or a new `up` the IP may be another.
    let found: { status: string; path?: string };
    try {
      found = await withMachine(this.project, this.machine, signal, async (h) => {
        const { status } = await machineStatus(h);
        return status === 'running' ? { status, path: (await writeMachineSshConfig(h)).path } : { status };
      });
    } catch (err) {
      signal.throwIfAborted();
      throw new GuestUnreachable(`cannot read its state: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const path = found.path;
    if (path === undefined) throw new GuestUnreachable(`machine is ${found.status}`);
    let master: SshMaster;
    try {
      master = await SshMaster.start({ configFile: path, host: this.machine.name, controlPath: this.controlPath, timeoutMs: CONNECT_TIMEOUT_MS, signal });
    } catch (err) {
      if (err instanceof SshMasterError) throw new GuestUnreachable(err.message, { cause: err });
      throw err;
    }
    // Published only once the guest folders exist: until then ready() must not hand out the config.
    try {
      await this.makeGuestFolders(path, signal);
    } catch (err) {
      await master.stop();
      throw err;
    }
    this.master = master;
    this.configFile = path;
    return path;
  }

  /** Makes the guest folders over the master's connection. */
  private async makeGuestFolders(configFile: string, signal: AbortSignal): Promise<void> {
    const command = this.folders.map(([f]) => guestFolderCommand({ machine: this.machine }, f)).join(' && ');
    const made = await sshRun(configFile, this.machine.name, this.controlPath, command, { timeoutMs: CONNECT_TIMEOUT_MS, signal });
    if (made.code === 0) {
      this.groups = lookedUpGroups({ machine: this.machine }, this.folders.map(([f]) => f), made.stdout);
      return;
    }
    if (made.code === 255 || made.code === null) throw new GuestUnreachable(`ssh failed: ${made.stderr.trim() || 'no message'}`);
    throw new UserError(`cannot create the synced folders in machine '${this.machine.name}': ${made.stderr.trim()}`);
  }
}

/** One folder of one machine: its watcher and its sync scheduler. */
class FolderWatch {
  readonly label: string;
  private watcher: FSWatcher | undefined;
  private scheduler: SyncScheduler | undefined;
  private lastProblem: string | undefined;

  constructor(
    private readonly link: MachineLink,
    private readonly folder: SyncedFolder,
    private readonly source: string,
    private readonly options: RsyncAutoOptions,
    private readonly fail: (err: unknown) => void,
  ) {
    this.label = `${link.machine.name}:${folder.guest}`;
  }

  /** Starts watching; resolves once the watcher has seen the whole folder (or on `stopped`). */
  async start(stopped: AbortSignal): Promise<void> {
    const { ignored, unsupported } = watchIgnore(this.folder.exclude);
    if (unsupported.length > 0) {
      this.options.warn(`${this.label}: watching what these excludes leave out (rsync still leaves it out): ${unsupported.join(', ')}`);
    }
    this.scheduler = new SyncScheduler({
      quietMs: this.options.quietMs ?? 100,
      maxWaitMs: this.options.maxWaitMs ?? 1000,
      run: (batch, signal) => this.sync(batch, signal),
      retryDelayMs: (failures, err) => this.retryDelay(failures, err),
      onFatal: (err) => this.fail(err),
    });
    const root = this.source;
    const watcher = watch(root, {
      ignoreInitial: true,
      followSymlinks: false,
      // Unlinks not held back to be told apart from atomic saves: rsync sees the result either way.
      atomic: false,
      ignorePermissionErrors: true,
      usePolling: this.options.poll,
      interval: 200,
      binaryInterval: 500,
      ignored: (path, stats) => ignored(relPath(root, path), stats?.isDirectory()),
    });
    this.watcher = watcher;
    watcher.on('all', (_event, path) => this.scheduler?.change(relPath(root, path)));
    watcher.on('error', (err) => this.watchError(err));
    await new Promise<void>((resolve) => {
      const done = (): void => {
        stopped.removeEventListener('abort', done);
        resolve();
      };
      watcher.once('ready', done);
      stopped.addEventListener('abort', done, { once: true });
    });
  }

  /** The sync at start, after which only changes are synced. */
  firstSync(): void {
    this.scheduler?.request();
  }

  async stop(): Promise<void> {
    await this.scheduler?.stop();
    await this.watcher?.close();
  }

  private watchError(err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EMFILE') {
      this.fail(
        new UserError(`cannot watch ${this.source}: the limit of ${code === 'ENOSPC' ? 'inotify watches' : 'open files'} is reached`, {
          hint:
            code === 'ENOSPC'
              ? 'Raise it (sudo sysctl fs.inotify.max_user_watches=524288), exclude large folders, or use --poll.'
              : 'Raise it (ulimit -n), exclude large folders, or use --poll.',
          cause: err,
        }),
      );
      return;
    }
    this.options.warn(`${this.label}: watch problem: ${err instanceof Error ? err.message : String(err)}`);
  }

  private async sync(batch: SyncBatch, signal: AbortSignal): Promise<void> {
    const configFile = await this.link.ready(signal);
    const t0 = performance.now();
    const shell = rsyncRemoteShell(configFile, 'ssh', controlPathArgs(this.link.controlPath));
    // An I/O timeout: a guest that vanished mid-sync fails this sync instead of hanging it.
    const args = ['--timeout=30', ...rsyncArgs({ machine: this.link.machine }, this.folder, this.source, shell, this.link.groups.get(this.folder))];
    try {
      await runRsync({ machine: this.link.machine }, this.folder, args, signal);
    } catch (err) {
      if (!(err instanceof RsyncError) || err.rsyncExit === null) throw err;
      // Files that vanished while rsync ran: their removal is a change of its own, synced next.
      if (err.rsyncExit === 24) return this.synced(batch, t0);
      if (err.rsyncExit === 23) {
        this.options.warn(`${this.label}: synced in part: ${lastLines(err.stderr)}`);
        return this.synced(batch, t0);
      }
      throw err;
    }
    this.synced(batch, t0);
  }

  private synced(batch: SyncBatch, t0: number): void {
    const n = batch.paths.size;
    const what = batch.requested && n === 0 ? 'initial sync' : `${n} change${n === 1 ? '' : 's'}`;
    if (this.lastProblem !== undefined) this.options.warn(`${this.label}: reachable again`);
    this.lastProblem = undefined;
    this.options.log(`${this.link.machine.name}: synced ${this.folder.guest} (${what}, ${((performance.now() - t0) / 1000).toFixed(2)} s)`);
  }

  private retryDelay(failures: number, err: unknown): number | undefined {
    const retried = isRetried(err);
    if (!retried) return undefined;
    // The connection may be what failed: the next try makes a new one.
    if (!(err instanceof GuestUnreachable)) void this.link.reset();
    const delay = backoffMs(failures, RETRY_FIRST_MS, RETRY_MAX_MS);
    const problem = err instanceof Error ? err.message : String(err);
    if (problem !== this.lastProblem) {
      this.options.warn(`${this.label}: not synced: ${problem}; retrying until it answers (every ${(RETRY_MAX_MS / 1000).toFixed(0)} s at most)`);
      this.lastProblem = problem;
    }
    return delay;
  }
}

/** Whether a failed sync is worth another try: the guest away or the connection lost, not a problem of setup. */
function isRetried(err: unknown): boolean {
  if (err instanceof GuestUnreachable) return true;
  if (err instanceof RsyncError) return err.rsyncExit !== null && !RSYNC_FATAL.has(err.rsyncExit);
  return false;
}

/** `path` under `root` as a relative path with `/` ('' for the root itself). */
function relPath(root: string, path: string): string {
  const rel = relative(root, path);
  return sep === '/' ? rel : rel.split(sep).join('/');
}

function lastLines(s: string): string {
  return s.trim().split(/\r?\n/).slice(-2).join(' / ');
}
