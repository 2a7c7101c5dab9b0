import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { LibvirtConnectionClosedError } from './errors.js';
import { MessageStatus, STREAM_CHUNK_SIZE } from './protocol/packet.js';
import { runUserCallback, type ArgsWriter, type RpcConnection, type StreamSink } from './rpc.js';

export interface TransferOptions {
  signal?: AbortSignal;
  /** Called with the total bytes moved so far. */
  onProgress?: (bytes: number) => void;
  /** Bytes of data per stream packet. */
  chunkSize?: number;
}

/** A chunk whose buffer goes back to its owner once it has been written. */
export interface PooledChunk {
  data: Uint8Array;
  release(): void;
}
export type UploadChunk = Uint8Array | PooledChunk;

const isPooled = (c: UploadChunk): c is PooledChunk => !(c instanceof Uint8Array);

/**
 * Reads a file in chunks into a small set of reused buffers. Fresh buffers for every
 * chunk would cost a page fault per 4 KiB, which for a disk image is most of the time
 * an upload takes.
 */
export async function* readFileChunks(path: string, chunkSize = STREAM_CHUNK_SIZE, buffers = 24): AsyncGenerator<PooledChunk> {
  const file = await open(path, 'r');
  const free: Buffer[] = Array.from({ length: buffers }, () => Buffer.allocUnsafe(chunkSize));
  const waiting: (() => void)[] = [];
  const release = (b: Buffer): void => {
    free.push(b);
    waiting.shift()?.();
  };
  try {
    for (;;) {
      while (free.length === 0) await new Promise<void>((resolve) => waiting.push(resolve));
      const buf = free.pop()!;
      const { bytesRead } = await file.read(buf, 0, chunkSize, null);
      if (bytesRead === 0) {
        release(buf);
        return;
      }
      let released = false;
      yield {
        data: buf.subarray(0, bytesRead),
        release: () => {
          if (!released) {
            released = true;
            release(buf);
          }
        },
      };
    }
  } finally {
    await file.close();
  }
}

/** How long to wait for the daemon to acknowledge an abort before dropping the stream. */
const ABORT_ACK_MS = 2000;

type EndKind = 'eof' | 'ok';

/**
 * A sink whose ends can be awaited: `eof` (the daemon has no more data) and `ok` (the
 * stream is complete) are kept apart. Each is a state once reached, so every waiter
 * for it wakes, however many there are.
 */
class AwaitableSink implements StreamSink {
  private readonly seen = new Set<EndKind>();
  private waiters: { kinds: readonly EndKind[]; resolve: (k: EndKind) => void; reject: (e: Error) => void }[] = [];
  failure: Error | undefined;

  constructor(private readonly onData?: (chunk: Buffer) => void) {}

  data(chunk: Buffer): void {
    this.onData?.(chunk);
  }

  end(kind: EndKind): void {
    this.seen.add(kind);
    const woken = this.waiters.filter((w) => w.kinds.includes(kind));
    this.waiters = this.waiters.filter((w) => !w.kinds.includes(kind));
    for (const w of woken) w.resolve(kind);
  }

  error(err: Error): void {
    this.failure ??= err;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(this.failure);
  }

  /** Resolves once one of `kinds` is reached (at once if it was), rejects on failure. */
  next(kinds: readonly EndKind[], timeoutMs?: number): Promise<EndKind | 'timeout'> {
    if (this.failure) return Promise.reject(this.failure);
    const reached = kinds.find((k) => this.seen.has(k));
    if (reached) return Promise.resolve(reached);
    return new Promise((resolve, reject) => {
      const waiter = {
        kinds,
        resolve: (k: EndKind) => {
          if (timer) clearTimeout(timer);
          resolve(k);
        },
        reject: (e: Error) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      };
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.waiters = this.waiters.filter((w) => w !== waiter);
              resolve('timeout');
            }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the transfer was cancelled');
}

/** Tells the daemon to drop the stream, waits briefly for its answer, and detaches. */
async function abortStream(rpc: RpcConnection, procedure: number, serial: number, sink: AwaitableSink): Promise<void> {
  try {
    await rpc.sendStream(procedure, serial, MessageStatus.error);
    await sink.next(['ok'], ABORT_ACK_MS).catch(() => undefined);
  } catch {
    // The connection is gone: nothing left to abort.
  } finally {
    rpc.releaseStream(serial);
  }
}

/**
 * Runs an upload procedure (e.g. StorageVolUpload) and streams `source` to the daemon,
 * one packet at a time, waiting whenever the transport's buffer is full. Resolves when
 * the daemon confirms it has written everything.
 */
export async function uploadStream(
  rpc: RpcConnection,
  procedure: number,
  args: ArgsWriter,
  source: AsyncIterable<UploadChunk>,
  options: TransferOptions = {},
): Promise<number> {
  const { signal, onProgress } = options;
  const chunkSize = options.chunkSize ?? STREAM_CHUNK_SIZE;
  signal?.throwIfAborted();
  const sink = new AwaitableSink();
  const { serial } = await rpc.callWithStream(procedure, args, sink);
  let sent = 0;
  try {
    for await (const chunk of source) {
      const data = isPooled(chunk) ? chunk.data : chunk;
      for (let off = 0; off < data.length; off += chunkSize) {
        if (sink.failure) throw sink.failure;
        if (signal?.aborted) throw abortError(signal);
        const end = Math.min(off + chunkSize, data.length);
        const onWritten = end === data.length && isPooled(chunk) ? chunk.release : undefined;
        await rpc.sendStream(procedure, serial, MessageStatus.continue, data.subarray(off, end), {
          ...(onWritten ? { onWritten } : {}),
          ...(signal ? { signal } : {}),
        });
        sent += end - off;
      }
      if (onProgress) runUserCallback(() => onProgress(sent));
    }
    if (sink.failure) throw sink.failure;
    await rpc.sendStream(procedure, serial, MessageStatus.ok);
    // Only OK completes an upload; an empty CONTINUE on the way is not success.
    await sink.next(['ok']);
    rpc.releaseStream(serial);
    return sent;
  } catch (err) {
    if (!(err instanceof LibvirtConnectionClosedError) && !sink.failure) {
      await abortStream(rpc, procedure, serial, sink);
    } else {
      rpc.releaseStream(serial);
    }
    throw err;
  }
}

/**
 * Runs a download procedure (e.g. StorageVolDownload) and returns the data as a
 * Readable. When the consumer falls behind, reading from the daemon pauses.
 */
export async function downloadStream(
  rpc: RpcConnection,
  procedure: number,
  args: ArgsWriter,
  options: TransferOptions = {},
): Promise<Readable> {
  const { signal, onProgress } = options;
  signal?.throwIfAborted();
  let received = 0;
  let paused = false;
  let settled = false;
  let serial = -1;
  const unpause = (): void => {
    if (paused) {
      paused = false;
      rpc.resumeReading();
    }
  };
  const readable = new Readable({
    highWaterMark: 4 * 1024 * 1024,
    read: unpause,
    destroy(err, callback) {
      unpause();
      if (!settled && serial >= 0) {
        settled = true;
        void abortStream(rpc, procedure, serial, sink).finally(() => callback(err));
      } else callback(err);
    },
  });
  const sink: AwaitableSink = new AwaitableSink((chunk) => {
    if (settled || readable.destroyed) return;
    received += chunk.length;
    if (onProgress) runUserCallback(() => onProgress(received));
    if (!readable.push(chunk) && !paused) {
      paused = true;
      rpc.pauseReading();
    }
  });
  const onAbort = (): void => {
    readable.destroy(abortError(signal!));
  };
  ({ serial } = await rpc.callWithStream(procedure, args, sink));
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();

  // The daemon signals the end of its data; we answer with our finish and it confirms.
  void (async () => {
    try {
      const first = await sink.next(['eof', 'ok']);
      if (settled) return;
      if (first === 'eof') {
        await rpc.sendStream(procedure, serial, MessageStatus.ok);
        await sink.next(['ok']);
      }
      if (settled) return;
      settled = true;
      rpc.releaseStream(serial);
      readable.push(null);
    } catch (err) {
      if (settled) return;
      settled = true;
      rpc.releaseStream(serial);
      readable.destroy(err as Error);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  })();
  return readable;
}
