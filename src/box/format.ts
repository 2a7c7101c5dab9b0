/**
 * The .box file: a tar archive (gzip-compressed or plain) holding metadata.json, the
 * disk image(s) and optionally a Vagrantfile — vagrant-libvirt's v1 and v2 layouts
 * (see metadata.ts).
 *
 * Writing streams the disks into the archive under a temporary name beside the output
 * and renames it into place. Reading streams the archive once, writing each entry
 * straight to its final place (one copy, never a second), checking as it goes: entry
 * names and types, the sizes the tar headers declare against the bytes that arrive, a
 * size limit, and finally the metadata and each disk's image header.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { UserError } from '../errors.js';
import {
  BOX_PROVIDER,
  MAX_METADATA_BYTES,
  METADATA_FILE,
  V1_DISK_PATH,
  VAGRANTFILE,
  boxLayout,
  declaredDiskFormat,
  metadataDisks,
  normalizeBoxPath,
  parseBoxMetadata,
  virtualSizeGiB,
  type BoxLayout,
  type BoxMetadata,
} from './metadata.js';

const execFileP = promisify(execFile);

// ---------------------------------------------------------------------------
// Disk images

export type DiskFormat = 'qcow2' | 'raw';

export interface DiskImageInfo {
  format: string;
  /** Virtual size in bytes. */
  virtualSize: number;
  /** Bytes the file holds. */
  actualSize?: number;
}

/** `qemu-img info --output=json` of an image. */
export async function qemuImgInfo(path: string, signal?: AbortSignal): Promise<DiskImageInfo> {
  let stdout: string;
  try {
    ({ stdout } = await execFileP('qemu-img', ['info', '--output=json', path], {
      ...(signal === undefined ? {} : { signal }),
      maxBuffer: 16 * 1024 * 1024,
    }));
  } catch (err) {
    if (signal?.aborted === true) throw signal.reason;
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new UserError('qemu-img is not installed.', { hint: 'Install it (Debian: apt-get install qemu-utils).', cause: err });
    }
    throw new UserError(`Cannot read the disk image ${path}: ${(e.stderr ?? e.message).trim()}`, {
      hint: 'Check that the file exists and is a disk image (qcow2 or raw).',
      cause: err,
    });
  }
  const info = JSON.parse(stdout) as { format?: string; 'virtual-size'?: number; 'actual-size'?: number };
  if (typeof info.format !== 'string' || typeof info['virtual-size'] !== 'number') {
    throw new UserError(`qemu-img could not tell the format and size of ${path}.`);
  }
  return {
    format: info.format,
    virtualSize: info['virtual-size'],
    ...(typeof info['actual-size'] === 'number' ? { actualSize: info['actual-size'] } : {}),
  };
}

export const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]); // "QFI\xfb"
/** Bytes of a qcow2 header that the checks below read. */
export const QCOW2_HEADER_BYTES = 72;

export interface Qcow2Header {
  version: number;
  clusterBits: number;
  virtualSize: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  /** Set when the image has a backing file (a box disk must not). */
  backingFileOffset: number;
}

/** Parses a qcow2 header; undefined when the bytes do not start with the qcow2 magic. */
export function parseQcow2Header(buf: Buffer): Qcow2Header | undefined {
  if (buf.length < QCOW2_HEADER_BYTES || !buf.subarray(0, 4).equals(QCOW2_MAGIC)) return undefined;
  return {
    version: buf.readUInt32BE(4),
    backingFileOffset: Number(buf.readBigUInt64BE(8)),
    clusterBits: buf.readUInt32BE(20),
    virtualSize: Number(buf.readBigUInt64BE(24)),
    l1Size: buf.readUInt32BE(36),
    l1TableOffset: Number(buf.readBigUInt64BE(40)),
    refcountTableOffset: Number(buf.readBigUInt64BE(48)),
    refcountTableClusters: buf.readUInt32BE(56),
  };
}

/**
 * Sanity of a qcow2 image from its header and its file size: a known version, a sane
 * cluster size, a virtual size, no backing file, and tables that lie inside the file
 * (a truncated image fails this). Returns the problem, or undefined when it looks sound.
 */
export function qcow2Problem(h: Qcow2Header, fileSize: number): string | undefined {
  if (h.version !== 2 && h.version !== 3) return `unknown qcow2 version ${h.version}`;
  if (h.clusterBits < 9 || h.clusterBits > 21) return `impossible cluster size 2^${h.clusterBits}`;
  if (h.virtualSize <= 0) return 'a virtual size of zero';
  if (h.backingFileOffset !== 0) return 'a backing file (a box disk must stand alone)';
  const cluster = 2 ** h.clusterBits;
  if (fileSize < cluster) return `only ${fileSize} bytes, less than one cluster`;
  if (h.l1TableOffset + h.l1Size * 8 > fileSize) return 'its L1 table lies past the end of the file (truncated)';
  if (h.refcountTableOffset + h.refcountTableClusters * cluster > fileSize) {
    return 'its refcount table lies past the end of the file (truncated)';
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Writing

export interface WriteBoxInput {
  /**
   * vmenv fields (under `vmenv`) and any others; the layout fields (provider, format,
   * virtual_size, disks) are filled in, so `provider` may be left out.
   */
  metadata: Omit<BoxMetadata, 'provider'> & { provider?: string };
  /** The disk images, in order; one → v1 (box.img), several → v2 (box_1.img, box_2.img, …). */
  disks: { path: string; name?: string }[];
  /** Contents of a Vagrantfile to include. */
  vagrantfile?: string;
}

export interface WriteBoxOptions {
  /** Compress with gzip (default true). */
  gzip?: boolean;
  /** gzip level, 1 (fastest) to 9 (smallest); default zlib's (6). */
  gzipLevel?: number;
  signal?: AbortSignal;
  /** Called with the total bytes of disk data packed so far. */
  onProgress?: (bytes: number) => void;
}

/** Runs a chain of streams (pipeline with a variable number of stages). */
function chain(streams: unknown[], signal?: AbortSignal): Promise<void> {
  const run = pipeline as unknown as (...args: unknown[]) => Promise<void>;
  return signal === undefined ? run(...streams) : run(...streams, { signal });
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}

function tempNameBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes a .box file. The archive goes to a temporary name beside `outPath` and is
 * renamed into place when complete; on failure or abort the temporary file is removed.
 */
export async function writeBoxArchive(outPath: string, box: WriteBoxInput, options: WriteBoxOptions = {}): Promise<void> {
  const { signal } = options;
  if (box.disks.length === 0) throw new Error('writeBoxArchive: a box needs at least one disk');
  if (isAborted(signal)) throw abortError(signal!);
  if (box.metadata.provider !== undefined && box.metadata.provider !== BOX_PROVIDER) {
    throw new Error(`writeBoxArchive: vmenv writes libvirt boxes, not '${box.metadata.provider}'`);
  }

  const infos: DiskImageInfo[] = [];
  const sizes: number[] = [];
  for (const disk of box.disks) {
    const info = await qemuImgInfo(disk.path, signal);
    if (info.format !== 'qcow2' && info.format !== 'raw') {
      throw new UserError(`The disk image ${disk.path} is ${info.format}; a box holds qcow2 (or raw) images.`, {
        hint: `Convert it first: qemu-img convert -O qcow2 ${disk.path} out.qcow2`,
      });
    }
    const size = (await stat(disk.path)).size;
    if (size === 0) throw new UserError(`The disk image ${disk.path} is empty.`);
    infos.push(info);
    sizes.push(size);
  }

  const layout: BoxLayout = box.disks.length === 1 ? 'v1' : 'v2';
  const { provider: _p, format: _f, virtual_size: _v, disks: _d, ...rest } = box.metadata;
  const archivePaths = layout === 'v1' ? [V1_DISK_PATH] : box.disks.map((_, i) => `box_${i + 1}.img`);
  const metadata: BoxMetadata =
    layout === 'v1'
      ? { provider: BOX_PROVIDER, format: infos[0]!.format, virtual_size: virtualSizeGiB(infos[0]!.virtualSize), ...rest }
      : {
          provider: BOX_PROVIDER,
          // A raw disk says so: only qcow2 is told by its header.
          disks: box.disks.map((d, i) => ({
            path: archivePaths[i]!,
            ...(d.name === undefined ? {} : { name: d.name }),
            ...(infos[i]!.format === 'raw' ? { format: 'raw' } : {}),
          })),
          ...rest,
        };

  await mkdir(dirname(outPath), { recursive: true });
  const tmp = tempNameBeside(outPath);
  const pack = tar.pack();
  const out = createWriteStream(tmp, { flags: 'wx' });
  const sink = chain(options.gzip === false ? [pack, out] : [pack, createGzip(options.gzipLevel === undefined ? {} : { level: options.gzipLevel }), out], signal);
  // Keep the sink's rejection observed until it is awaited below.
  sink.catch(() => undefined);

  const mtime = new Date();
  const addBuffer = (name: string, data: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      pack.entry({ name, size: data.length, mode: 0o644, mtime, type: 'file' }, data, (err) => (err ? reject(err) : resolve()));
    });

  try {
    await addBuffer(METADATA_FILE, Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`));
    if (box.vagrantfile !== undefined) await addBuffer(VAGRANTFILE, Buffer.from(box.vagrantfile));
    let packed = 0;
    for (const [i, disk] of box.disks.entries()) {
      const size = sizes[i]!;
      const entry = pack.entry({ name: archivePaths[i]!, size, mode: 0o644, mtime, type: 'file' });
      const meter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          packed += chunk.length;
          options.onProgress?.(packed);
          cb(null, chunk);
        },
      });
      await pipeline(createReadStream(disk.path, { highWaterMark: 1024 * 1024, end: size - 1 }), meter, entry, {
        ...(signal ? { signal } : {}),
      });
    }
    pack.finalize();
    await sink;
    await rename(tmp, outPath);
  } catch (err) {
    pack.destroy(new Error('box writing stopped'));
    await sink.catch(() => undefined);
    await rm(tmp, { force: true });
    if (isAborted(signal)) throw abortError(signal!);
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Reading

export interface ReadBoxOptions {
  signal?: AbortSignal;
  /** Most bytes the unpacked box may take (default: no limit). */
  maxBytes?: number;
  /** Called with the total bytes of the archive (as stored, i.e. compressed) read so far. */
  onProgress?: (bytes: number) => void;
  /** How to name the archive in messages (default: the path, or "the box archive"). */
  label?: string;
}

export interface UnpackedDisk {
  /** Absolute path of the unpacked image. */
  path: string;
  /** Path inside the box. */
  boxPath: string;
  /** The volume name override from v2 metadata. */
  name?: string;
  format: DiskFormat;
  /** Virtual size in bytes (qcow2: from its header; raw: the file size). */
  virtualSize: number;
  /** Bytes of the image file. */
  size: number;
}

export interface ReadBoxResult {
  metadata: BoxMetadata;
  layout: BoxLayout;
  disks: UnpackedDisk[];
  /** Absolute path of the Vagrantfile, when the box has one. */
  vagrantfile?: string;
  /** Every file unpacked, as paths inside the box. */
  files: string[];
  /** Bytes unpacked. */
  bytes: number;
}

type Compression = 'gzip' | 'none';

const MAGICS: { bytes: number[]; name: string }[] = [
  { bytes: [0x42, 0x5a, 0x68], name: 'bzip2' },
  { bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], name: 'xz' },
  { bytes: [0x28, 0xb5, 0x2f, 0xfd], name: 'zstd' },
  { bytes: [0x50, 0x4b, 0x03, 0x04], name: 'zip' },
];

/** gzip or plain tar, from the first bytes; other compressions are refused by name. */
export function detectCompression(head: Buffer, label: string): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  for (const m of MAGICS) {
    if (head.length >= m.bytes.length && m.bytes.every((b, i) => head[i] === b)) {
      throw new UserError(`${label} is compressed with ${m.name}; vmenv reads boxes that are plain or gzip-compressed tar archives.`, {
        hint: m.name === 'zip' ? 'Repack it as a tar archive.' : `Decompress it first (e.g. ${m.name === 'bzip2' ? 'bunzip2' : m.name === 'xz' ? 'unxz' : 'unzstd'} -k) and add the .tar.`,
      });
    }
  }
  if (head.length < 512) {
    throw corrupt(label, head.length === 0 ? 'it is empty' : `it holds only ${head.length} bytes`);
  }
  // ustar magic at 257, or a plain v7 header whose checksum field is octal; tar-stream checks the rest.
  return 'none';
}

function corrupt(label: string, what: string, cause?: unknown): UserError {
  return new UserError(`${label} is truncated or corrupt: ${what}.`, {
    hint: 'Download or build the box again; when it came with a checksum, check it (--checksum sha256:…).',
    ...(cause === undefined ? {} : { cause }),
  });
}

function refuse(label: string, entry: string, what: string): UserError {
  return new UserError(`${label} is unsafe: entry '${entry}' ${what}.`, {
    hint: 'A box holds only regular files (metadata.json, its disk images, a Vagrantfile) inside its own folder. Do not use this archive; get the box from its publisher again.',
  });
}

/**
 * Reads up to n bytes from the start of a stream; returns them and a stream that yields
 * everything (those bytes first). Destroying that stream destroys the source.
 */
async function peek(source: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const chunks: Buffer[] = [];
  let have = 0;
  let ended = false;
  while (have < n) {
    const r = await it.next();
    if (r.done === true) {
      ended = true;
      break;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    chunks.push(chunk);
    have += chunk.length;
  }
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      yield* chunks;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done === true) return;
        yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      }
    } finally {
      if (!ended) await it.return?.();
    }
  }
  return { head: Buffer.concat(chunks).subarray(0, n), stream: Readable.from(replay(), { objectMode: false }) };
}

class ByteMeter extends Transform {
  bytes = 0;
  constructor(private readonly onBytes: (total: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes(this.bytes);
    cb(null, chunk);
  }
}

/**
 * Unpacks a .box (a path or a stream) into `destDir`, which must not exist yet (its
 * parent is created). Streams once, checks as it goes, and on any failure removes
 * `destDir` entirely. Returns the parsed metadata and the disks' paths.
 */
export async function readBoxArchive(source: string | Readable, destDir: string, options: ReadBoxOptions = {}): Promise<ReadBoxResult> {
  const { signal } = options;
  const label = options.label ?? (typeof source === 'string' ? `The box file ${source}` : 'The box archive');
  if (isAborted(signal)) throw abortError(signal!);

  let input: Readable;
  if (typeof source === 'string') {
    try {
      const st = await stat(source);
      if (!st.isFile()) throw new UserError(`${source} is not a file.`, { hint: 'Give the path of a .box file.' });
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`The box file ${source} does not exist or cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`, {
        hint: 'Check the path.',
        cause: err,
      });
    }
    input = createReadStream(source, { highWaterMark: 1024 * 1024 });
  } else {
    input = source;
  }

  await mkdir(dirname(destDir), { recursive: true });
  try {
    await mkdir(destDir);
  } catch (err) {
    input.destroy();
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`readBoxArchive: ${destDir} already exists`);
    throw err;
  }

  try {
    return await unpack(input, destDir, label, options);
  } catch (err) {
    input.destroy();
    await rm(destDir, { recursive: true, force: true });
    if (isAborted(signal)) throw abortError(signal!);
    throw err;
  }
}

interface FileRecord {
  boxPath: string;
  size: number;
  head: Buffer;
}

async function unpack(source: Readable, destDir: string, label: string, options: ReadBoxOptions): Promise<ReadBoxResult> {
  const { signal, maxBytes } = options;
  let input = source;
  const peeked = await peek(input, 512);
  const compression = detectCompression(peeked.head, label);
  input = peeked.stream;

  const meter = new ByteMeter((n) => options.onProgress?.(n));
  const extract = tar.extract();
  const stages: NodeJS.ReadWriteStream[] = compression === 'gzip' ? [createGunzip()] : [];
  let streamError: unknown;
  const flow = chain([input, meter, ...stages, extract], signal).catch((err: unknown) => {
    streamError = err;
  });

  const files = new Map<string, FileRecord>();
  const dirs = new Set<string>();
  let metadata: BoxMetadata | undefined;
  let total = 0;
  const describe = (err: unknown): UserError => {
    if (err instanceof UserError) return err;
    const msg = (err as Error).message ?? String(err);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') return new UserError(`No space left to unpack ${label.replace(/^The /, 'the ')} into ${destDir}.`, { hint: 'Free some disk space and add it again.', cause: err });
    if (code === 'Z_BUF_ERROR' || /unexpected end/i.test(msg)) return corrupt(label, 'the archive ends early', err);
    if (code?.startsWith('Z_') === true || /incorrect header check|invalid/i.test(msg)) return corrupt(label, msg.replace(/\.$/, ''), err);
    if (/Invalid tar header|Unexpected end of data|Invalid/i.test(msg)) return corrupt(label, msg.replace(/\.$/, ''), err);
    return corrupt(label, msg.replace(/\.$/, ''), err);
  };

  try {
    for await (const entry of extract) {
      const h = entry.header;
      const rawName = h.name;
      const type = h.type ?? 'file';
      if (rawName.startsWith('/')) throw refuse(label, rawName, 'has an absolute path');
      if (rawName.split('/').includes('..')) throw refuse(label, rawName, "reaches outside the box with '..'");
      const name = normalizeBoxPath(rawName);
      if (name === undefined) {
        if (type === 'directory' && rawName.split('/').every((p) => p === '' || p === '.')) {
          entry.resume();
          continue; // "./"
        }
        throw refuse(label, rawName, 'has an invalid name');
      }
      switch (type) {
        case 'symlink':
          throw refuse(label, rawName, `is a symbolic link (to '${h.linkname ?? ''}')`);
        case 'link':
          throw refuse(label, rawName, `is a hard link (to '${h.linkname ?? ''}')`);
        case 'character-device':
        case 'block-device':
          throw refuse(label, rawName, `is a ${type === 'character-device' ? 'character' : 'block'} device file`);
        case 'fifo':
          throw refuse(label, rawName, 'is a FIFO (named pipe)');
        case 'directory': {
          if (files.has(name)) throw refuse(label, rawName, 'is both a file and a directory');
          dirs.add(name);
          await mkdir(join(destDir, name), { recursive: true });
          entry.resume();
          continue;
        }
        case 'file':
        case 'contiguous-file':
          break;
        default:
          throw refuse(label, rawName, `has an unsupported type (${type})`);
      }
      if (files.has(name) || dirs.has(name)) throw refuse(label, rawName, 'appears twice');
      for (const prefix of prefixes(name)) if (files.has(prefix)) throw refuse(label, rawName, `lies under the file '${prefix}'`);
      const declared = h.size ?? 0;
      if (maxBytes !== undefined && total + declared > maxBytes) {
        throw new UserError(`${label} is larger than allowed: entry '${rawName}' would bring it to ${total + declared} bytes (limit ${maxBytes}).`, {
          hint: 'Raise the limit if the box is genuine, or check where it came from.',
        });
      }
      if (name === METADATA_FILE && declared > MAX_METADATA_BYTES) {
        throw refuse(label, rawName, `is ${declared} bytes, far too big for box metadata`);
      }

      const target = join(destDir, name);
      await mkdir(dirname(target), { recursive: true });
      let got = 0;
      const heads: Buffer[] = [];
      let headLen = 0;
      const keepAll = name === METADATA_FILE;
      // Read the entry with its own iterator (it throws when the archive breaks off, even
      // if the entry was already cut short) and write it in batches.
      const fh = await open(target, 'wx', 0o644);
      try {
        let batch: Buffer[] = [];
        let batchLen = 0;
        for await (const data of entry) {
          const chunk = data as Buffer;
          got += chunk.length;
          if (got > declared) throw corrupt(label, `entry '${rawName}' holds more bytes than its header declares`);
          if (keepAll || headLen < QCOW2_HEADER_BYTES) {
            heads.push(chunk);
            headLen += chunk.length;
          }
          batch.push(chunk);
          batchLen += chunk.length;
          if (batchLen >= 1024 * 1024) {
            await writeAll(fh, batch, batchLen);
            batch = [];
            batchLen = 0;
          }
        }
        if (batchLen > 0) await writeAll(fh, batch, batchLen);
      } finally {
        await fh.close();
      }
      if (got !== declared) throw corrupt(label, `entry '${rawName}' declares ${declared} bytes but holds ${got}`);
      total += got;
      const content = Buffer.concat(heads);
      files.set(name, { boxPath: name, size: got, head: content.subarray(0, QCOW2_HEADER_BYTES) });
      if (name === METADATA_FILE) metadata = parseBoxMetadata(content.toString('utf8'));
    }
  } catch (err) {
    // Stop the flow; if the stream itself failed, that error is the better explanation.
    extract.destroy();
    await flow;
    if (isAborted(signal)) throw abortError(signal!);
    if (!(err instanceof UserError) && streamError !== undefined) throw describe(streamError);
    throw describe(err);
  }
  await flow;
  if (streamError !== undefined) {
    if (isAborted(signal)) throw abortError(signal!);
    throw describe(streamError);
  }

  if (metadata === undefined) {
    throw new UserError(`${label} has no metadata.json.`, {
      hint: 'A libvirt box holds metadata.json ({"provider": "libvirt", …}) beside its disk image. This is not a box, or it was packed wrongly.',
    });
  }

  const disks: UnpackedDisk[] = [];
  for (const d of metadataDisks(metadata)) {
    const boxPath = normalizeBoxPath(d.path)!;
    const rec = files.get(boxPath);
    if (rec === undefined) {
      throw new UserError(`${label} has no disk image '${d.path}', which its metadata.json names.`, {
        hint: 'The box is incomplete or packed wrongly. Build or download it again.',
      });
    }
    const qcow = parseQcow2Header(rec.head);
    let format: DiskFormat;
    let virtualSize: number;
    if (qcow !== undefined) {
      const problem = qcow2Problem(qcow, rec.size);
      if (problem !== undefined) throw corrupt(label, `disk image '${d.path}' has ${problem}`);
      format = 'qcow2';
      virtualSize = qcow.virtualSize;
    } else {
      if (declaredDiskFormat(metadata, d) !== 'raw') {
        throw corrupt(label, `disk image '${d.path}' is not a qcow2 image (it does not start with the qcow2 magic)`);
      }
      if (rec.size === 0) throw corrupt(label, `disk image '${d.path}' is empty`);
      format = 'raw';
      virtualSize = rec.size;
    }
    const declared = d.format ?? metadata.format;
    if (declared !== undefined && declared !== format) {
      throw corrupt(label, `metadata.json says format '${declared}' but '${d.path}' is ${format}`);
    }
    disks.push({
      path: join(destDir, boxPath),
      boxPath,
      ...(d.name === undefined ? {} : { name: d.name }),
      format,
      virtualSize,
      size: rec.size,
    });
  }

  return {
    metadata,
    layout: boxLayout(metadata),
    disks,
    ...(files.has(VAGRANTFILE) ? { vagrantfile: join(destDir, VAGRANTFILE) } : {}),
    files: [...files.keys()],
    bytes: total,
  };
}

/** Writes all of the buffers (writev may write less than asked). */
async function writeAll(fh: FileHandle, buffers: Buffer[], length: number): Promise<void> {
  let data = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers, length);
  while (data.length > 0) {
    const { bytesWritten } = await fh.write(data, 0, data.length);
    data = data.subarray(bytesWritten);
  }
}

function prefixes(name: string): string[] {
  const parts = name.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

/** Reads only metadata.json from a .box file, without unpacking the disks. */
export async function readBoxMetadata(path: string): Promise<BoxMetadata | undefined> {
  const fh = await open(path, 'r');
  const peeked = await peek(fh.createReadStream(), 512);
  const stream = peeked.stream;
  const label = `The box file ${path}`;
  const compression = detectCompression(peeked.head, label);
  const extract = tar.extract();
  const stages: NodeJS.ReadWriteStream[] = compression === 'gzip' ? [createGunzip()] : [];
  const flow = chain([stream, ...stages, extract]).catch(() => undefined);
  let found: BoxMetadata | undefined;
  try {
    for await (const entry of extract) {
      if (normalizeBoxPath(entry.header.name) === METADATA_FILE && (entry.header.size ?? 0) <= MAX_METADATA_BYTES) {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        found = parseBoxMetadata(Buffer.concat(chunks).toString('utf8'));
        break;
      }
      entry.resume();
    }
  } finally {
    extract.destroy();
    stream.destroy();
    await flow;
    await fh.close().catch(() => undefined);
  }
  return found;
}
