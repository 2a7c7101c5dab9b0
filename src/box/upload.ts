import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { LibvirtClient } from '../libvirt/client.js';
import { isAlreadyExists, isNotFound } from '../libvirt/errors.js';
import type { StoragePoolRef, StorageVolRef } from '../libvirt/protocol/types.js';
import { volumeXml, type VolumeFormat } from '../libvirt/xml/index.js';
import { UserError } from '../errors.js';

/** One disk of a stored box, as the upload needs it. */
export interface BoxDiskFile {
  /** The image file in the box store. */
  path: string;
  /** Its virtual size in bytes (from the box metadata or `qemu-img info`). */
  virtualSize: bigint;
  /** The image's format (default qcow2): the volume gets the same, its bytes as they are. */
  format?: VolumeFormat;
}

export interface BoxToUpload {
  name: string;
  version: string;
  disks: readonly BoxDiskFile[];
}

/** Where a box disk went: recorded so that `box remove` can delete it later. */
export interface UploadRecord {
  uri: string;
  pool: string;
  volume: string;
}

export type WithLock = <T>(key: string, fn: () => Promise<T>) => Promise<T>;

export interface EnsureOptions {
  signal?: AbortSignal;
  /** Bytes sent of one disk so far, and its size. */
  onProgress?: (disk: number, sent: number, total: number) => void;
  /** Serializes uploads of the same volume between vmenv processes on this host. */
  withLock?: WithLock;
  /** Called once per volume this call created and filled. */
  onUploaded?: (record: UploadRecord) => Promise<void>;
}

const noLock: WithLock = (_key, fn) => fn();

/**
 * The volume name of a box disk: readable, and different whenever the box file is
 * different (re-added with --force), so a stale volume is never taken for a new box.
 */
export async function boxVolumeName(box: Pick<BoxToUpload, 'name' | 'version'>, index: number, path: string, format: VolumeFormat = 'qcow2'): Promise<string> {
  const s = await stat(path);
  const identity = createHash('sha256')
    .update(`${box.name}\0${box.version}\0${index}\0${s.size}\0${s.mtimeMs}\0${s.ino}`)
    .digest('hex')
    .slice(0, 10);
  const slug = (v: string): string => v.replace(/[^A-Za-z0-9._-]+/g, '-');
  return `vmenv-box_${slug(box.name)}_${slug(box.version)}_${index}_${identity}.${format === 'raw' ? 'raw' : 'qcow2'}`;
}

/**
 * Whether the volume's file (libvirt's `<physical>` size) holds all `size` bytes. A raw
 * volume's file has its full length from the start (sparse), so there the bytes written
 * (`<allocation>`: every byte is sent, holes too) must reach it as well.
 */
async function isComplete(client: LibvirtClient, vol: StorageVolRef, size: number, format: VolumeFormat): Promise<boolean> {
  const xml = await client.storageVolGetXmlDesc(vol);
  const physical = /<physical unit='bytes'>(\d+)<\/physical>/.exec(xml);
  if (physical === null || BigInt(physical[1]!) !== BigInt(size)) return false;
  if (format !== 'raw') return true;
  const allocation = /<allocation unit='bytes'>(\d+)<\/allocation>/.exec(xml);
  return allocation !== null && BigInt(allocation[1]!) >= BigInt(size);
}

async function uploadOne(
  client: LibvirtClient,
  pool: StoragePoolRef,
  name: string,
  disk: BoxDiskFile,
  index: number,
  options: EnsureOptions,
): Promise<StorageVolRef> {
  const size = (await stat(disk.path)).size;
  // A refresh picks up volume files made behind libvirt's back. libvirt refuses it while
  // any volume of the pool is being uploaded (another box, another project): the
  // volumes it lists then are current enough, since it made them itself.
  await client.storagePoolRefresh(pool).catch((err: unknown) => {
    if (!(err instanceof Error) || !/asynchronous jobs running/.test(err.message)) throw err;
  });
  try {
    const existing = await client.storageVolLookupByName(pool, name);
    if (await isComplete(client, existing, size, disk.format ?? 'qcow2')) return existing;
    // Left behind by an upload that did not finish: never reuse it.
    await client.storageVolDelete(existing);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }

  let vol: StorageVolRef;
  try {
    vol = await client.storageVolCreateXml(pool, volumeXml({ name, capacityBytes: disk.virtualSize, format: disk.format ?? 'qcow2' }));
  } catch (err) {
    if (isAlreadyExists(err)) {
      throw new UserError(`another upload of box volume ${name} into pool ${pool.name} is under way`, {
        hint: 'It comes from another host or a vmenv without the shared lock; run the command again once it has finished.',
        cause: err,
      });
    }
    throw err;
  }
  try {
    await client.storageVolUploadFile(vol, disk.path, {
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (sent) => options.onProgress?.(index, sent, size),
    });
    if (!(await isComplete(client, vol, size, disk.format ?? 'qcow2'))) {
      throw new UserError(`the upload of ${disk.path} into ${pool.name}/${name} ended short`, {
        hint: 'Check the free space of the storage pool (vmenv doctor), then run the command again.',
      });
    }
  } catch (err) {
    await client.storageVolDelete(vol).catch(() => undefined);
    throw err;
  }
  await options.onUploaded?.({ uri: client.uri, pool: pool.name, volume: name });
  return vol;
}

/**
 * Makes sure every disk of the box is in the pool as a volume of its format (qcow2, or
 * raw) holding the box file's bytes as they are (never converted), uploading what is
 * missing. A qcow2 image goes as it is, sparse; a raw one is sent whole (its holes as
 * zeros: the stream does not send holes). Parallel
 * callers upload each volume once; a half-uploaded volume is deleted, never reused.
 * Returns the volumes in the order of the box's disks.
 */
export async function ensureBoxVolumes(
  client: LibvirtClient,
  poolName: string,
  box: BoxToUpload,
  options: EnsureOptions = {},
): Promise<StorageVolRef[]> {
  const withLock = options.withLock ?? noLock;
  const pool = await client.storagePoolLookupByName(poolName);
  const volumes: StorageVolRef[] = [];
  for (const [index, disk] of box.disks.entries()) {
    options.signal?.throwIfAborted();
    const name = await boxVolumeName(box, index, disk.path, disk.format);
    volumes.push(await withLock(`upload:${client.uri}:${poolName}:${name}`, () => uploadOne(client, pool, name, disk, index, options)));
  }
  return volumes;
}
