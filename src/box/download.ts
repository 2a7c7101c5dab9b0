/**
 * Downloads with resume, and checksums.
 *
 * A download goes to `<dest>.part`. When that file already holds some bytes (an earlier
 * attempt dropped, or was interrupted), the request asks for the rest with an HTTP
 * Range; a server that answers with the whole file instead (200) restarts the part file
 * from zero. A dropped connection is retried from where it stopped. When the file is
 * complete its checksum is checked (computed as the bytes arrive); on a mismatch after
 * a resumed download the whole file is fetched once more from scratch, and a mismatch
 * on a fresh download is an error that deletes the part file. Only a verified file is
 * renamed to `dest`.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ExitCode, UserError } from '../errors.js';
import { sleep } from '../util/sleep.js';

// ---------------------------------------------------------------------------
// Checksums

export const CHECKSUM_ALGORITHMS = { md5: 32, sha1: 40, sha256: 64, sha384: 96, sha512: 128 } as const;
export type ChecksumAlgorithm = keyof typeof CHECKSUM_ALGORITHMS;

export interface Checksum {
  algorithm: ChecksumAlgorithm;
  /** Lower-case hex. */
  hex: string;
}

function isAlgorithm(s: string): s is ChecksumAlgorithm {
  return Object.hasOwn(CHECKSUM_ALGORITHMS, s);
}

function badChecksum(what: string): UserError {
  return new UserError(`Invalid checksum: ${what}.`, {
    hint: `Give it as <algorithm>:<hex>, e.g. sha256:${'0'.repeat(8)}…, with one of: ${Object.keys(CHECKSUM_ALGORITHMS).join(', ')}.`,
    exitCode: ExitCode.usage,
  });
}

/**
 * Parses `sha256:abc…` (also `sha256=abc…`), or a bare hex value with `type` given
 * separately (a catalog's `checksum` + `checksum_type`). A bare hex without a type is
 * taken by its length.
 */
export function parseChecksum(value: string, type?: string): Checksum {
  let algo = type?.trim().toLowerCase().replace(/-/g, '');
  let hex = value.trim();
  const m = /^([A-Za-z0-9-]+)[:=](.*)$/.exec(hex);
  if (m !== null) {
    const named = m[1]!.toLowerCase().replace(/-/g, '');
    if (algo !== undefined && algo !== '' && algo !== named) throw badChecksum(`'${value}' says ${named} but its type is ${algo}`);
    algo = named;
    hex = m[2]!.trim();
  }
  hex = hex.toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) throw badChecksum(`'${value}' is not hexadecimal`);
  if (algo === undefined || algo === '') {
    const byLength = Object.entries(CHECKSUM_ALGORITHMS).find(([, len]) => len === hex.length);
    if (byLength === undefined) throw badChecksum(`cannot tell the algorithm of '${value}'`);
    algo = byLength[0];
  }
  if (!isAlgorithm(algo)) throw badChecksum(`unsupported algorithm '${algo}'`);
  if (hex.length !== CHECKSUM_ALGORITHMS[algo]) {
    throw badChecksum(`a ${algo} checksum has ${CHECKSUM_ALGORITHMS[algo]} hex digits, '${value}' has ${hex.length}`);
  }
  return { algorithm: algo, hex };
}

export function formatChecksum(c: Checksum): string {
  return `${c.algorithm}:${c.hex}`;
}

export class ChecksumMismatchError extends UserError {
  constructor(
    readonly what: string,
    readonly expected: Checksum,
    readonly actual: string,
  ) {
    super(`Checksum mismatch for ${what}: expected ${formatChecksum(expected)}, got ${expected.algorithm}:${actual}.`, {
      hint: 'The file is damaged or not the one published. Nothing was added; download it again, or check the checksum you gave.',
    });
    this.name = 'ChecksumMismatchError';
  }
}

/** Several digests of the same bytes. */
export class MultiHash {
  private readonly hashes: Map<ChecksumAlgorithm, Hash>;
  bytes = 0;
  constructor(algorithms: readonly ChecksumAlgorithm[]) {
    this.hashes = new Map([...new Set(algorithms)].map((a) => [a, createHash(a)]));
  }
  update(chunk: Buffer): void {
    for (const h of this.hashes.values()) h.update(chunk);
    this.bytes += chunk.length;
  }
  digest(algorithm: ChecksumAlgorithm): string {
    const h = this.hashes.get(algorithm);
    if (h === undefined) throw new Error(`not hashing ${algorithm}`);
    return h.copy().digest('hex');
  }
  digests(): Partial<Record<ChecksumAlgorithm, string>> {
    const out: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const a of this.hashes.keys()) out[a] = this.digest(a);
    return out;
  }
}

/** Hashes a stream's bytes as they pass. */
export class HashingStream extends Transform {
  readonly hash: MultiHash;
  constructor(algorithms: readonly ChecksumAlgorithm[]) {
    super();
    this.hash = new MultiHash(algorithms);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

/** The hex digest of a file. */
export async function hashFile(path: string, algorithm: ChecksumAlgorithm, signal?: AbortSignal): Promise<string> {
  const h = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) })) h.update(chunk as Buffer);
  return h.digest('hex');
}

// ---------------------------------------------------------------------------
// Downloads

export interface DownloadProgress {
  /** Bytes of the file on disk so far (including a resumed part). */
  received: number;
  /** The file's full size when the server told it. */
  total: number | undefined;
  /** Whether this attempt continues an earlier part file. */
  resumed: boolean;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  checksum?: Checksum;
  /** Also compute these digests (e.g. sha256 for the box store's record). */
  alsoHash?: ChecksumAlgorithm[];
  onProgress?: (p: DownloadProgress) => void;
  /** Attempts after a dropped connection (default 3). */
  retries?: number;
  /** Pause before a retry, doubled each time (default 500 ms). */
  retryDelayMs?: number;
  /** Gives up when no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** How to name the file in messages (default: the URL). */
  label?: string;
}

export interface DownloadResult {
  path: string;
  size: number;
  /** Whether an earlier part file was continued. */
  resumed: boolean;
  /** Hex digests of the file, by algorithm (the checksum's, and alsoHash). */
  digests: Partial<Record<ChecksumAlgorithm, string>>;
}

/** The URL without credentials, query or fragment, for messages and records. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString();
  } catch {
    return url;
  }
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
  ) {
    super(`HTTP ${status}`);
  }
}

/** Transient failures worth another attempt (the part file is kept). */
function isRetryable(err: unknown): boolean {
  if (err instanceof HttpStatusError) return err.status >= 500 || err.status === 408 || err.status === 429;
  if (err instanceof UserError) return false;
  return true; // network errors: reset, refused, terminated, idle timeout
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** Fetches a small document (a catalog), with a size cap. */
export async function fetchText(url: string, options: { signal?: AbortSignal; maxBytes?: number } = {}): Promise<{ text: string; contentType: string | undefined; url: string }> {
  let res: Response;
  try {
    res = await fetch(url, { ...(options.signal ? { signal: options.signal } : {}), headers: { accept: 'application/json, */*' }, redirect: 'follow' });
  } catch (err) {
    if (options.signal?.aborted === true) throw options.signal.reason;
    throw networkError(url, err);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw statusError(url, res.status);
  }
  const max = options.maxBytes ?? 16 * 1024 * 1024;
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of Readable.fromWeb(res.body as WebReadableStream<Uint8Array>)) {
    n += (chunk as Buffer).length;
    if (n > max) throw new UserError(`${redactUrl(url)} is larger than ${max} bytes; it is not a box catalog.`);
    chunks.push(chunk as Buffer);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), contentType: res.headers.get('content-type') ?? undefined, url: res.url || url };
}

function networkError(url: string, err: unknown): UserError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (err as Error).message;
  return new UserError(`Cannot download ${redactUrl(url)}: ${detail}.`, {
    hint: 'Check the URL and your network connection; run the command again to resume.',
    exitCode: ExitCode.unavailable,
    cause: err,
  });
}

function statusError(url: string, status: number): UserError {
  const why = status === 404 ? ' (not found)' : status === 401 || status === 403 ? ' (access denied)' : '';
  return new UserError(`Cannot download ${redactUrl(url)}: the server answered HTTP ${status}${why}.`, {
    hint: status === 404 ? 'Check the URL.' : status >= 500 ? 'The server has a problem; try again later.' : 'Check the URL and any credentials it needs.',
    exitCode: status >= 500 ? ExitCode.unavailable : ExitCode.user,
  });
}

/**
 * Downloads `url` to `dest` (through `dest.part`), resuming a part file left by an
 * earlier attempt, retrying dropped connections, verifying the checksum.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  const { signal, checksum } = options;
  const part = `${dest}.part`;
  const retries = options.retries ?? 3;
  const label = options.label ?? redactUrl(url);
  const algorithms = [...new Set([...(checksum ? [checksum.algorithm] : []), ...(options.alsoHash ?? [])])];
  await mkdir(dirname(dest), { recursive: true });

  let attempt = 0;
  let freshAfterMismatch = false;
  let everResumed = false;
  for (;;) {
    signal?.throwIfAborted();
    const have = await fileSize(part);
    const resumed = have > 0;
    try {
      const outcome = await attemptDownload(url, part, have, algorithms, options);
      everResumed ||= outcome.resumed;
      const digests: Partial<Record<ChecksumAlgorithm, string>> = {};
      for (const a of algorithms) digests[a] = outcome.hash.digest(a);
      if (checksum !== undefined && digests[checksum.algorithm] !== checksum.hex) {
        await rm(part, { force: true });
        if (outcome.resumed && !freshAfterMismatch) {
          // The earlier part may be what is wrong: fetch the whole file once more.
          freshAfterMismatch = true;
          continue;
        }
        throw new ChecksumMismatchError(label, checksum, digests[checksum.algorithm]!);
      }
      await rename(part, dest);
      return { path: dest, size: outcome.size, resumed: everResumed, digests };
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason;
      if (err instanceof UserError) throw err;
      if (err instanceof HttpStatusError && err.status === 416 && resumed) {
        // The part file is not a prefix the server recognises: start over.
        await rm(part, { force: true });
        continue;
      }
      if (attempt < retries && isRetryable(err)) {
        attempt += 1;
        await sleep((options.retryDelayMs ?? 500) * 2 ** (attempt - 1), signal);
        continue;
      }
      if (err instanceof HttpStatusError) throw statusError(url, err.status);
      throw networkError(url, err);
    }
  }
}

interface AttemptOutcome {
  size: number;
  resumed: boolean;
  hash: MultiHash;
}

async function attemptDownload(url: string, part: string, have: number, algorithms: ChecksumAlgorithm[], options: DownloadOptions): Promise<AttemptOutcome> {
  const { signal } = options;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let idle: NodeJS.Timeout | undefined;
  const armIdle = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(new Error(`no data for ${idleMs / 1000} s`)), idleMs);
  };
  try {
    armIdle();
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (have > 0) headers['range'] = `bytes=${have}-`;
    const res = await fetch(url, { headers, signal: controller.signal, redirect: 'follow' });
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel().catch(() => undefined);
      throw new HttpStatusError(res.status, url);
    }
    let offset = 0;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (m === null || Number(m[1]) !== have) {
        // A range we did not ask for: do not trust it, start over.
        await res.body?.cancel().catch(() => undefined);
        await rm(part, { force: true });
        throw new Error('the server answered with an unexpected range');
      }
      offset = have;
    }
    const length = res.headers.get('content-length');
    const total = length === null ? undefined : offset + Number(length);
    const hash = new MultiHash(algorithms);
    if (offset > 0 && algorithms.length > 0) {
      // Feed what we already have into the digests.
      for await (const chunk of createReadStream(part, { end: offset - 1, highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
    }
    let received = offset;
    const progress = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        armIdle();
        received += chunk.length;
        hash.update(chunk);
        options.onProgress?.({ received, total, resumed: offset > 0 });
        cb(null, chunk);
      },
    });
    options.onProgress?.({ received, total, resumed: offset > 0 });
    if (res.body === null) throw new Error('empty response body');
    await pipeline(
      Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
      progress,
      createWriteStream(part, offset > 0 ? { flags: 'r+', start: offset } : { flags: 'w' }),
      { signal: controller.signal },
    );
    const size = await fileSize(part);
    if (total !== undefined && size !== total) throw new Error(`the connection closed after ${size} of ${total} bytes`);
    return { size, resumed: offset > 0, hash };
  } catch (err) {
    if (controller.signal.aborted && signal?.aborted !== true) {
      throw controller.signal.reason instanceof Error ? controller.signal.reason : new Error('download stalled');
    }
    throw err;
  } finally {
    clearTimeout(idle);
    signal?.removeEventListener('abort', onAbort);
  }
}
