/**
 * Reading the box store: the stored boxes (StoredBox, and vmenv.json beside each),
 * their versions, the one a name and version choose, and their size on disk.
 */
import { lstat, open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { parseQcow2Header, QCOW2_HEADER_BYTES, type DiskFormat, type UnpackedDisk } from './format.js';
import { METADATA_FILE, metadataDisks, normalizeBoxPath, parseBoxMetadata, type BoxMetadata } from './metadata.js';
import { exists, listDir, readJson } from './store-files.js';
import { boxDir, boxesDir, PROVIDER_DIR, RECORD_FILE, unescapeBoxName, type BoxRef, type StoreOptions } from './store-paths.js';
import { selectVersion, sortVersionsDescending, compareVersions } from './version.js';

/** A disk of a stored box: as the archive reader unpacked it. */
export type StoredBoxDisk = UnpackedDisk;

/** vmenv.json beside a stored box. */
export interface StoredBoxRecord {
  name: string;
  version: string;
  provider: 'libvirt';
  added_at: string;
  /** Where it came from: a file path, or a URL without credentials or query. */
  source?: string;
  /** sha256 of the .box archive as added. */
  archive_sha256?: string;
  /** The checksum verified when it was added. */
  verified_checksum?: string;
  disks: { path: string; name?: string; format: DiskFormat; virtual_size: number; size: number }[];
}

export interface StoredBox extends BoxRef {
  provider: 'libvirt';
  /** The box's folder. */
  dir: string;
  metadata: BoxMetadata;
  disks: StoredBoxDisk[];
  vagrantfile?: string;
  addedAt?: string;
  source?: string;
  archiveSha256?: string;
}

/** A box's disks when it has no vmenv.json (placed by hand): from metadata and image headers. */
async function disksFromFiles(dir: string, metadata: BoxMetadata): Promise<StoredBoxDisk[]> {
  const out: StoredBoxDisk[] = [];
  for (const d of metadataDisks(metadata)) {
    const boxPath = normalizeBoxPath(d.path);
    if (boxPath === undefined) continue;
    const path = join(dir, boxPath);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      continue;
    }
    const fh = await open(path, 'r');
    const head = Buffer.alloc(QCOW2_HEADER_BYTES);
    try {
      await fh.read(head, 0, head.length, 0);
    } finally {
      await fh.close();
    }
    const q = parseQcow2Header(head);
    out.push({
      path,
      boxPath,
      ...(d.name === undefined ? {} : { name: d.name }),
      format: q === undefined ? 'raw' : 'qcow2',
      virtualSize: q?.virtualSize ?? size,
      size,
    });
  }
  return out;
}

async function loadBox(ref: BoxRef, dir: string): Promise<StoredBox | undefined> {
  let metadata: BoxMetadata;
  try {
    metadata = parseBoxMetadata(await readFile(join(dir, METADATA_FILE), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof UserError) return undefined; // not a usable box; list skips it
    throw err;
  }
  const record = await readJson<StoredBoxRecord>(join(dir, RECORD_FILE)).catch(() => undefined);
  const disks =
    record?.disks !== undefined
      ? record.disks.map((d) => ({
          path: join(dir, d.path),
          boxPath: d.path,
          ...(d.name === undefined ? {} : { name: d.name }),
          format: d.format,
          virtualSize: d.virtual_size,
          size: d.size,
        }))
      : await disksFromFiles(dir, metadata);
  const vagrantfile = join(dir, 'Vagrantfile');
  return {
    name: ref.name,
    version: ref.version,
    provider: 'libvirt',
    dir,
    metadata,
    disks,
    ...((await exists(vagrantfile)) ? { vagrantfile } : {}),
    ...(record?.added_at === undefined ? {} : { addedAt: record.added_at }),
    ...(record?.source === undefined ? {} : { source: record.source }),
    ...(record?.archive_sha256 === undefined ? {} : { archiveSha256: record.archive_sha256 }),
  };
}

/** One stored box, or undefined. */
export async function getBox(ref: BoxRef, options: StoreOptions = {}): Promise<StoredBox | undefined> {
  return loadBox(ref, boxDir(ref, options));
}

/** Every stored box, by name, then version (oldest first). */
export async function listBoxes(options: StoreOptions = {}): Promise<StoredBox[]> {
  const root = boxesDir(options);
  const out: StoredBox[] = [];
  for (const entry of (await listDir(root)).sort()) {
    if (entry.startsWith('.')) continue;
    const name = unescapeBoxName(entry);
    for (const version of await listDir(join(root, entry))) {
      const box = await loadBox({ name, version }, join(root, entry, version, PROVIDER_DIR));
      if (box !== undefined) out.push(box);
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : compareVersions(a.version, b.version)));
}

/** The stored versions of a box, newest first. */
export async function boxVersions(name: string, options: StoreOptions = {}): Promise<string[]> {
  const boxes = (await listBoxes(options)).filter((b) => b.name === name);
  return sortVersionsDescending(boxes.map((b) => b.version));
}

/**
 * The stored box `name` at `version` (a version or a constraint), else its newest
 * version. Throws a UserError naming what is stored when there is no such box.
 */
export async function findBox(name: string, version?: string, options: StoreOptions = {}): Promise<StoredBox> {
  const versions = await boxVersions(name, options);
  if (versions.length === 0) {
    throw new UserError(`There is no box '${name}' in the box store.`, {
      hint: `Add it with 'vmenv box add <file or URL> --name ${name}'; 'vmenv box list' shows what is stored.`,
    });
  }
  const chosen = version === undefined ? versions[0] : versions.includes(version) ? version : selectVersion(versions, version);
  if (chosen === undefined) {
    throw new UserError(`Box '${name}' has no version matching '${version!}'.`, { hint: `Stored versions: ${versions.join(', ')}.` });
  }
  return (await getBox({ name, version: chosen }, options))!;
}

/** Bytes a folder takes on disk (allocated blocks, so sparse images count as they are). */
export async function sizeOnDisk(path: string): Promise<number> {
  let total = 0;
  const st = await lstat(path);
  if (!st.isDirectory()) return st.blocks * 512;
  for (const entry of await readdir(path)) total += await sizeOnDisk(join(path, entry));
  return total;
}
