/**
 * Adding boxes: `vmenv box add` (a .box file, a URL to one, or a catalog) and
 * addBoxArchive. Adding unpacks into the store's .tmp (same filesystem), verifies,
 * then renames into place under the box's lock, so a box is either there whole or
 * not at all, and two processes adding the same box end with one intact copy.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ExitCode, UserError } from '../errors.js';
import { withFileLock, type LockOwner } from '../util/file-lock.js';
import { classifySource, resolveCatalog } from './catalog.js';
import { ChecksumMismatchError, downloadFile, formatChecksum, HashingStream, parseChecksum, redactUrl, type Checksum, type DownloadProgress } from './download.js';
import { readBoxArchive } from './format.js';
import { exists, listDir, writeJsonAtomic } from './store-files.js';
import { boxDir, boxesDir, boxLockPath, escapeBoxName, HOST_TAG, lockPath, RECORD_FILE, RESERVED_FILES, tmpDir, tmpName, UPLOADS_FILE, validateBoxName, validateBoxVersion, type BoxRef, type StoreOptions } from './store-paths.js';
import { boxVersions, getBox, type StoredBox, type StoredBoxRecord } from './stored-boxes.js';
import { readUploads } from './upload-records.js';

export type AddEvent =
  | { type: 'source'; kind: 'file' | 'url' | 'catalog'; name?: string; version?: string; url?: string }
  | ({ type: 'download' } & DownloadProgress)
  | { type: 'unpack'; bytes: number; total?: number }
  | { type: 'wait'; what: string; holder?: LockOwner };

export interface AddBoxOptions extends StoreOptions {
  /** Name for the box (default: the catalog's, else metadata.json's vmenv.name). */
  name?: string;
  /** The name when neither `name`, a catalog nor metadata.json gives one (else that is an error). */
  defaultName?: string;
  /** A stored box of the catalog's name and version is used as it is, not downloaded again (`box:` in vmenv.yaml). */
  reuse?: boolean;
  /** Catalogs: a version constraint; files and URLs: the version to record. */
  version?: string;
  /** Expected checksum of the .box, as algo:hex (or parsed). */
  checksum?: string | Checksum;
  /** Replace a stored box of the same name and version. */
  force?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: AddEvent) => void;
  /** Longest wait for another process adding the same box (default 30 min). */
  lockTimeoutMs?: number;
  /** Resolve relative paths from here (default: process.cwd()). */
  cwd?: string;
  /** Download retries after a dropped connection (default 3). */
  retries?: number;
  retryDelayMs?: number;
}

export interface AddBoxResult {
  box: StoredBox;
  /** A different box of the same name and version was replaced (--force). */
  replaced: boolean;
  /** The very same box (same archive) was already stored; nothing changed. */
  alreadyPresent: boolean;
}

/** Another box of the same name and version is stored (a different archive). */
export class BoxAlreadyStoredError extends UserError {
  constructor(
    readonly ref: BoxRef,
    readonly existing: StoredBox,
  ) {
    super(`Box '${ref.name}' version ${ref.version} is already in the box store${existing.source ? ` (added from ${existing.source})` : ''}.`, {
      hint: 'Add it with --force to replace it, or give another version with --box-version.',
    });
    this.name = 'BoxAlreadyStoredError';
  }
}

function alreadyStored(ref: BoxRef, existing: StoredBox): UserError {
  return new BoxAlreadyStoredError(ref, existing);
}

async function freeBytes(path: string): Promise<number | undefined> {
  try {
    const s = await statfs(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes leftovers in .tmp from vmenv processes that died (best effort). */
async function sweepTmp(options: StoreOptions): Promise<void> {
  for (const entry of await listDir(tmpDir(options))) {
    const m = /^[a-z]+-([0-9a-f]{8})-(\d+)-[0-9a-f]+$/.exec(entry);
    if (m === null || m[1] !== HOST_TAG || pidAlive(Number(m[2]))) continue;
    await rm(join(tmpDir(options), entry), { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * `vmenv box add`: a .box file, an http(s) URL to one, a catalog (file or URL), or a
 * bare name (which is an error: there is no default catalog).
 */
export async function addBox(source: string, options: AddBoxOptions = {}): Promise<AddBoxResult> {
  const { signal } = options;
  if (options.name !== undefined) validateBoxName(options.name);
  const checksum = typeof options.checksum === 'string' ? parseChecksum(options.checksum) : options.checksum;
  const classified = await classifySource(source, {
    ...(signal ? { signal } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });

  if (classified.kind === 'name') {
    const versions = await boxVersions(classified.name, options).catch(() => [] as string[]);
    if (versions.length > 0) {
      throw new UserError(`Box '${classified.name}' is already in the box store (version${versions.length > 1 ? 's' : ''} ${versions.join(', ')}).`, {
        hint: 'To add another version or replace it, give its .box file, URL or catalog (with --force to replace).',
      });
    }
    throw new UserError(`No catalog configured for '${classified.name}', and no such file: give a file or URL.`, {
      hint: `vmenv box add ./${classified.name.replaceAll('/', '-')}.box --name ${classified.name}  (or an https:// URL to a .box or a catalog .json)`,
    });
  }

  if (classified.kind === 'file') {
    if (options.version !== undefined) validateFileVersion(options.version);
    options.onEvent?.({ type: 'source', kind: 'file' });
    const size = (await stat(classified.path)).size;
    return addBoxArchive(classified.path, {
      ...options,
      ...(checksum ? { checksum } : {}),
      source: classified.path,
      archiveSize: size,
    });
  }

  let url: string;
  let name = options.name;
  let version = options.version;
  let expected = checksum;
  if (classified.kind === 'catalog') {
    const resolved = resolveCatalog(classified.catalog, {
      ...(options.version === undefined ? {} : { constraint: options.version }),
      baseUrl: classified.baseUrl,
      source: classified.source,
    });
    url = resolved.url;
    name ??= resolved.name;
    validateBoxName(name);
    version = resolved.version;
    expected ??= resolved.checksum;
    options.onEvent?.({ type: 'source', kind: 'catalog', name, version, url: redactUrl(url) });
    if (url.startsWith('file:')) {
      const path = fileURLToPath(url);
      if (!(await exists(path))) {
        throw new UserError(`The catalog ${classified.source} names ${path} for version ${version}, which does not exist.`, { hint: 'Fix the catalog, or give the .box file directly.' });
      }
      const same = await precheck({ name, version }, expected, options);
      if (same !== undefined) return { box: same, replaced: false, alreadyPresent: true };
      return addBoxArchive(path, { ...options, name, version, ...(expected ? { checksum: expected } : {}), source: path, archiveSize: (await stat(path)).size });
    }
  } else {
    url = classified.url;
    if (version !== undefined) validateFileVersion(version);
    options.onEvent?.({ type: 'source', kind: 'url', url: redactUrl(url) });
  }

  if (name !== undefined && version !== undefined) {
    const same = await precheck({ name, version }, expected, options);
    if (same !== undefined) return { box: same, replaced: false, alreadyPresent: true };
  }

  // Download (resumable) under a lock per URL, then unpack from the verified file.
  await mkdir(boxesDir(options), { recursive: true });
  const key = createHash('sha256').update(redactUrl(url) + (url.includes('?') ? url : '')).digest('hex').slice(0, 24);
  const downloads = join(boxesDir(options), '.downloads');
  const dest = join(downloads, `${key}.box`);
  // An empty downloads folder is not left behind (a part file to resume is).
  const tidy = (): Promise<void> => rmdir(downloads).catch(() => undefined);
  const downloaded = await withFileLock(
    lockPath(`download-${key}`, options),
    () =>
      downloadFile(url, dest, {
        ...(signal ? { signal } : {}),
        ...(expected ? { checksum: expected } : {}),
        alsoHash: ['sha256'],
        onProgress: (p) => options.onEvent?.({ type: 'download', ...p }),
        ...(options.retries === undefined ? {} : { retries: options.retries }),
        ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
      }),
    {
      purpose: `downloading ${redactUrl(url)}`,
      timeoutMs: options.lockTimeoutMs ?? 1_800_000,
      ...(signal ? { signal } : {}),
      onWait: (holder) => options.onEvent?.({ type: 'wait', what: `another download of ${redactUrl(url)}`, ...(holder ? { holder } : {}) }),
    },
  ).catch(async (err: unknown) => {
    await tidy();
    throw err;
  });
  try {
    return await addBoxArchive(downloaded.path, {
      ...options,
      ...(name === undefined ? {} : { name }),
      ...(version === undefined ? {} : { version }),
      // Already verified while downloading; the archive's sha256 is known too.
      source: redactUrl(url),
      archiveSize: downloaded.size,
      knownSha256: downloaded.digests.sha256!,
      ...(expected ? { verifiedChecksum: formatChecksum(expected) } : {}),
    });
  } finally {
    await rm(downloaded.path, { force: true });
    await tidy();
  }
}

function validateFileVersion(version: string): void {
  if (/[<>=~!,]/.test(version)) {
    throw new UserError(`--box-version '${version}' is a constraint, but this box is a file or URL, not a catalog.`, {
      hint: 'For a .box file, --box-version is the version to store it as (e.g. 1.2.0). Constraints choose among a catalog\'s versions.',
      exitCode: ExitCode.usage,
    });
  }
  validateBoxVersion(version);
}

/** Before downloading: a stored box of that name and version is an error unless --force, or the very same (by sha256). */
async function precheck(ref: BoxRef, expected: Checksum | undefined, options: AddBoxOptions): Promise<StoredBox | undefined> {
  validateBoxVersion(ref.version);
  const existing = await getBox(ref, options);
  if (existing === undefined || options.force === true) return undefined;
  if (options.reuse === true) return existing;
  if (expected?.algorithm === 'sha256' && existing.archiveSha256 === expected.hex) return existing;
  throw alreadyStored(ref, existing);
}

export interface AddArchiveOptions extends AddBoxOptions {
  /** Recorded as where the box came from. */
  source?: string;
  /** Bytes of the archive, for progress. */
  archiveSize?: number;
  /** The archive's sha256 when already known (skips hashing it again). */
  knownSha256?: string;
  /** A checksum already verified by the caller, to record. */
  verifiedChecksum?: string;
}

/**
 * Adds a .box (a path or a stream) to the store: unpacks it into the store's .tmp,
 * verifies it (structure, checksum), then moves it into place under the box's lock.
 * Used by `box add` and by `box build --add`. `version` here is exact, not a constraint.
 */
export async function addBoxArchive(archive: string | Readable, options: AddArchiveOptions = {}): Promise<AddBoxResult> {
  const { signal } = options;
  if (options.name !== undefined) validateBoxName(options.name);
  if (options.version !== undefined) validateBoxVersion(options.version);
  const checksum = typeof options.checksum === 'string' ? parseChecksum(options.checksum) : options.checksum;
  const root = boxesDir(options);
  await mkdir(tmpDir(options), { recursive: true });
  await sweepTmp(options);

  const staging = tmpName(options, 'add');
  const hashing = new HashingStream([...(options.knownSha256 === undefined ? (['sha256'] as const) : []), ...(checksum && options.verifiedChecksum === undefined ? [checksum.algorithm] : [])]);
  const input = typeof archive === 'string' ? createReadStream(archive, { highWaterMark: 1024 * 1024 }) : archive;
  const free = await freeBytes(root);
  const label = typeof archive === 'string' ? `The box file ${options.source ?? archive}` : 'The box archive';
  input.on('error', (err: Error) => hashing.destroy(err));
  const unpacked = await readBoxArchive(input.pipe(hashing), staging, {
    ...(signal ? { signal } : {}),
    ...(free === undefined ? {} : { maxBytes: Math.max(0, free - 64 * 1024 * 1024) }),
    label,
    onProgress: (bytes) => options.onEvent?.({ type: 'unpack', bytes, ...(options.archiveSize === undefined ? {} : { total: options.archiveSize }) }),
  }).catch((err: unknown) => {
    input.destroy();
    if (err instanceof UserError && /larger than allowed/.test(err.message)) {
      throw new UserError(`Not enough free space in ${root} to add this box.`, { hint: 'Free some disk space (vmenv box remove …) and try again.', cause: err });
    }
    throw err;
  });

  try {
    for (const reserved of RESERVED_FILES) {
      if (unpacked.files.includes(reserved)) {
        throw new UserError(`${label} contains '${reserved}', a name vmenv keeps for its own records.`, { hint: 'Repack the box without that file.' });
      }
    }
    const sha256 = options.knownSha256 ?? hashing.hash.digest('sha256');
    let verified = options.verifiedChecksum;
    if (checksum !== undefined && verified === undefined) {
      const actual = hashing.hash.digest(checksum.algorithm);
      if (actual !== checksum.hex) {
        throw new ChecksumMismatchError(options.source ?? 'the box', checksum, actual);
      }
      verified = formatChecksum(checksum);
    }

    const vm = unpacked.metadata.vmenv;
    const name = options.name ?? vm?.name ?? options.defaultName;
    if (name === undefined) {
      throw new UserError('This box does not say its name.', {
        hint: 'Give one with --name (e.g. --name debian-12).',
        exitCode: ExitCode.usage,
      });
    }
    validateBoxName(name);
    const version = options.version ?? vm?.version ?? '0';
    validateBoxVersion(version);
    const ref = { name, version };

    const record: StoredBoxRecord = {
      name,
      version,
      provider: 'libvirt',
      added_at: new Date().toISOString(),
      ...(options.source === undefined ? {} : { source: options.source }),
      archive_sha256: sha256,
      ...(verified === undefined ? {} : { verified_checksum: verified }),
      disks: unpacked.disks.map((d) => ({
        path: d.boxPath,
        ...(d.name === undefined ? {} : { name: d.name }),
        format: d.format,
        virtual_size: d.virtualSize,
        size: d.size,
      })),
    };
    await writeJsonAtomic(join(staging, RECORD_FILE), record);

    const outcome = await withFileLock(
      boxLockPath(ref, options),
      async (): Promise<{ replaced: boolean; alreadyPresent: boolean }> => {
        const final = boxDir(ref, options);
        const existing = await getBox(ref, options);
        if (existing !== undefined && options.force !== true) {
          if (existing.archiveSha256 === sha256) return { replaced: false, alreadyPresent: true };
          throw alreadyStored(ref, existing);
        }
        if (existing !== undefined || (await exists(final))) {
          // Keep the old box's uploads on record, so `box remove` deletes those volumes too.
          const old = await readUploads(final);
          if (old.length > 0) await writeJsonAtomic(join(staging, UPLOADS_FILE), old);
          const graveyard = tmpName(options, 'old');
          await rename(final, graveyard);
          try {
            await rename(staging, final);
          } catch (err) {
            await rename(graveyard, final).catch(() => undefined);
            throw err;
          }
          await rm(graveyard, { recursive: true, force: true });
          return { replaced: true, alreadyPresent: false };
        }
        await mkdir(join(root, escapeBoxName(name), version), { recursive: true });
        await rename(staging, final);
        return { replaced: false, alreadyPresent: false };
      },
      {
        purpose: `adding box ${name} ${version}`,
        timeoutMs: options.lockTimeoutMs ?? 1_800_000,
        ...(signal ? { signal } : {}),
        onWait: (holder) => options.onEvent?.({ type: 'wait', what: `another vmenv working on box ${name} ${version}`, ...(holder ? { holder } : {}) }),
      },
    );
    const box = await getBox(ref, options);
    if (box === undefined) throw new Error(`box ${name} ${version} vanished right after it was added`);
    return { box, ...outcome };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
