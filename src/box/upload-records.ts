/**
 * Uploads of stored boxes into pools: where a box's disks were uploaded
 * (uploads.json beside it), the lock that serializes uploads of one volume between
 * vmenv processes, and the box as `ensureBoxVolumes` (upload.ts) takes it.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { withFileLock, type LockOwner } from '../util/file-lock.js';
import { METADATA_FILE } from './metadata.js';
import { exists, readJson, writeJsonAtomic } from './store-files.js';
import { boxDir, boxLockPath, lockPath, UPLOADS_FILE, type BoxRef, type StoreOptions } from './store-paths.js';
import type { StoredBox } from './stored-boxes.js';
import type { BoxToUpload, WithLock } from './upload.js';

/** A volume holding one of the box's disks: the same shape as upload.ts's UploadRecord. */
export interface BoxUpload {
  uri: string;
  pool: string;
  volume: string;
}

const sameUpload = (a: BoxUpload, b: BoxUpload): boolean => a.uri === b.uri && a.pool === b.pool && a.volume === b.volume;

function noSuchBox(ref: BoxRef): UserError {
  return new UserError(`There is no box '${ref.name}' version ${ref.version} in the box store.`, {
    hint: "'vmenv box list' shows what is stored.",
  });
}

export async function readUploads(dir: string): Promise<BoxUpload[]> {
  const raw = await readJson<unknown>(join(dir, UPLOADS_FILE));
  if (raw === undefined) return [];
  const list = Array.isArray(raw) ? raw : Array.isArray((raw as { uploads?: unknown }).uploads) ? (raw as { uploads: unknown[] }).uploads : [];
  return list.filter(
    (u): u is BoxUpload => typeof u === 'object' && u !== null && typeof (u as BoxUpload).uri === 'string' && typeof (u as BoxUpload).pool === 'string' && typeof (u as BoxUpload).volume === 'string',
  );
}

/** Where the box's disks were uploaded. */
export async function listUploads(box: BoxRef, options: StoreOptions = {}): Promise<BoxUpload[]> {
  return readUploads(boxDir(box, options));
}

/** Notes that one of the box's disks now lives in a pool (idempotent). */
export async function recordUpload(box: BoxRef, entry: BoxUpload, options: StoreOptions = {}): Promise<void> {
  await withFileLock(
    boxLockPath(box, options),
    async () => {
      const dir = boxDir(box, options);
      if (!(await exists(join(dir, METADATA_FILE)))) throw noSuchBox(box);
      const uploads = await readUploads(dir);
      if (uploads.some((u) => sameUpload(u, entry))) return;
      uploads.push({ uri: entry.uri, pool: entry.pool, volume: entry.volume });
      await writeJsonAtomic(join(dir, UPLOADS_FILE), uploads);
    },
    { purpose: `recording an upload of box ${box.name} ${box.version}`, timeoutMs: 120_000 },
  );
}

/** Forgets an upload (its volume was deleted). */
export async function forgetUpload(box: BoxRef, entry: BoxUpload, options: StoreOptions = {}): Promise<void> {
  await withFileLock(boxLockPath(box, options), () => forgetUploadsUnlocked(box, [entry], options), {
    purpose: `updating the uploads of box ${box.name} ${box.version}`,
    timeoutMs: 120_000,
  });
}

export async function forgetUploadsUnlocked(box: BoxRef, entries: BoxUpload[], options: StoreOptions): Promise<void> {
  const dir = boxDir(box, options);
  if (!(await exists(dir))) return;
  const uploads = await readUploads(dir);
  const left = uploads.filter((u) => !entries.some((e) => sameUpload(u, e)));
  if (left.length !== uploads.length) await writeJsonAtomic(join(dir, UPLOADS_FILE), left);
}

/**
 * A lock for `ensureBoxVolumes` (upload.ts): serializes uploads of the same volume
 * between vmenv processes on this host.
 */
export function uploadLock(options: StoreOptions & { signal?: AbortSignal; onWait?: (holder: LockOwner | undefined) => void } = {}): WithLock {
  return <T>(key: string, fn: () => Promise<T>): Promise<T> =>
    withFileLock(lockPath(`upload-${createHash('sha256').update(key).digest('hex').slice(0, 24)}`, options), fn, {
      purpose: `uploading ${key}`,
      timeoutMs: 3_600_000,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onWait ? { onWait: options.onWait } : {}),
    });
}

/** The box as `ensureBoxVolumes` (upload.ts) takes it. */
export function toUploadBox(box: StoredBox): BoxToUpload {
  return { name: box.name, version: box.version, disks: box.disks.map((d) => ({ path: d.path, virtualSize: BigInt(d.virtualSize), format: d.format })) };
}
