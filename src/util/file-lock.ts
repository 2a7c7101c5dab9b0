/**
 * Inter-process locks on files, with flock-like use: one holder at a time, others wait
 * (bounded), and a lock whose holder died is taken over.
 *
 * A lock is a file created with O_EXCL holding its holder's identity: pid, host, the
 * process's start time (so a reused pid is not taken for the holder) and a random
 * token. A waiter that finds the holder gone (same host, no such process, or another
 * process now under that pid) moves the stale file aside, checks by inode that it moved
 * the very file it judged stale, and deletes it. Locks are not re-entrant: the same
 * process taking the same lock twice waits for itself.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { TimeoutError } from '../errors.js';
import { processStartTicks } from './proc-identity.js';
import { sleep } from './sleep.js';

export interface LockOwner {
  pid: number;
  host: string;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), when known. */
  start?: number;
  token: string;
  /** What the holder is doing, for the messages of those who wait. */
  purpose?: string;
  since: string;
}

export interface LockOptions {
  /** How long to wait for the holder before giving up (default 10 minutes). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** What the lock protects, for messages ("adding box debian-12 1.0"). */
  purpose?: string;
  /** Called once when the lock is held by someone else and the wait begins. */
  onWait?: (holder: LockOwner | undefined) => void;
  /** A lock file from another host counts as stale after this long (default 1 hour). */
  foreignStaleMs?: number;
}

export interface LockHandle {
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock file if it is still ours. Safe to call twice. */
  release(): Promise<void>;
}

const selfStart = processStartTicks(process.pid);

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the lock's holder is certainly gone. */
export function isStale(owner: LockOwner | undefined, mtimeMs: number, options: Pick<LockOptions, 'foreignStaleMs'> = {}): boolean {
  if (owner === undefined) {
    // Unreadable or half-written: stale once it has sat there a while (a writer takes microseconds).
    return Date.now() - mtimeMs > 5_000;
  }
  if (owner.host !== hostname()) return Date.now() - mtimeMs > (options.foreignStaleMs ?? 3_600_000);
  if (!processAlive(owner.pid)) return true;
  if (owner.start !== undefined) {
    const now = processStartTicks(owner.pid);
    if (now !== undefined && now !== owner.start) return true; // the pid was reused
  }
  return false;
}

async function readOwner(path: string): Promise<{ owner: LockOwner | undefined; ino: number; mtimeMs: number } | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await fh.stat();
    const text = await fh.readFile('utf8');
    let owner: LockOwner | undefined;
    try {
      const parsed = JSON.parse(text) as LockOwner;
      if (typeof parsed.pid === 'number' && typeof parsed.host === 'string') owner = parsed;
    } catch {
      owner = undefined;
    }
    return { owner, ino: st.ino, mtimeMs: st.mtimeMs };
  } finally {
    await fh.close();
  }
}

/** Moves a stale lock aside and deletes it, unless it was replaced meanwhile (then puts it back). */
async function breakStale(path: string, ino: number): Promise<void> {
  const grave = `${path}.stale-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, grave);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else broke it
    throw err;
  }
  const st = await stat(grave);
  if (st.ino !== ino) {
    // A live lock was created between our look and our move: put it back where it was.
    await link(grave, path).catch(() => undefined);
  }
  await unlink(grave).catch(() => undefined);
}

function describeHolder(owner: LockOwner | undefined): string {
  if (owner === undefined) return 'another process';
  const what = owner.purpose === undefined ? '' : ` (${owner.purpose})`;
  return `vmenv process ${owner.pid}${owner.host === hostname() ? '' : ` on ${owner.host}`}${what}`;
}

/** Takes the lock at `path`, waiting for its holder up to the timeout. */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<LockHandle> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const deadline = Date.now() + timeoutMs;
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    ...(selfStart === undefined ? {} : { start: selfStart }),
    token: randomBytes(8).toString('hex'),
    ...(options.purpose === undefined ? {} : { purpose: options.purpose }),
    since: new Date().toISOString(),
  };
  const body = `${JSON.stringify(owner)}\n`;
  await mkdir(dirname(path), { recursive: true });
  let waited = false;
  let delay = 25;
  let lastHolder: LockOwner | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const fh = await open(path, 'wx', 0o644);
      try {
        await fh.writeFile(body);
      } finally {
        await fh.close();
      }
      return makeHandle(path, owner);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const current = await readOwner(path);
    if (current === undefined) continue; // released between our two looks
    lastHolder = current.owner;
    if (isStale(current.owner, current.mtimeMs, options)) {
      await breakStale(path, current.ino);
      continue;
    }
    if (!waited) {
      waited = true;
      options.onWait?.(current.owner);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new TimeoutError(`${describeHolder(lastHolder)} to release ${path}`, timeoutMs, `If no vmenv is running any more, delete ${path} and try again.`);
    }
    await sleep(Math.min(delay, left), options.signal);
    delay = Math.min(delay * 2, 500);
  }
}

function makeHandle(path: string, owner: LockOwner): LockHandle {
  let released = false;
  return {
    path,
    owner,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      try {
        const text = await readFile(path, 'utf8');
        if ((JSON.parse(text) as LockOwner).token !== owner.token) return; // not ours any more
        await unlink(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        if (err instanceof SyntaxError) return;
        throw err;
      }
    },
  };
}

/** Runs fn while holding the lock at `path`. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const handle = await acquireLock(path, options);
  try {
    return await fn();
  } finally {
    await handle.release();
  }
}
