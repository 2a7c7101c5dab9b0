import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { LibvirtConnectionClosedError } from './errors.js';
import { MessageStatus, STREAM_CHUNK_SIZE } from './protocol/packet.js';
import type { ArgsWriter, RpcConnection, StreamSink } from './rpc.js';

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

/** A sink whose events can be awaited one after another. */
class AwaitableSink implements StreamSink {
  private waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private ended = 0;
  failure: Error | undefined;

  constructor(private readonly onData?: (chunk: Buffer) => void) {}

  data(chunk: Buffer): void {
    if (this.onData) this.onData(chunk);
  }

  end(): void {
    this.ended++;
    this.wake();
  }

  error(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (!w) return;
    if (this.failure) w.reject(this.failure);
    else w.resolve();
  }

  /** Resolves at the daemon's next end-of-stream (or at once if one is unclaimed). */
  nextEnd(timeoutMs?: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended > 0) {
      this.ended--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const timer =
        timeoutMs === undefined ? undefined : setTimeout(() => { this.waiter = undefined; resolve(); }, timeoutMs);
      this.waiter = {
        resolve: () => {
          if (timer) clearTimeout(timer);
          this.ended--;
          resolve();
        },
        reject: (e) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      };
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
    await sink.nextEnd(ABORT_ACK_MS).catch(() => undefined);
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
        const last = end === data.length;
        const onWritten = last && isPooled(chunk) ? chunk.release : undefined;
        await rpc.sendStream(procedure, serial, MessageStatus.continue, data.subarray(off, end), onWritten);
        sent += end - off;
      }
      onProgress?.(sent);
    }
    if (sink.failure) throw sink.failure;
    await rpc.sendStream(procedure, serial, MessageStatus.ok);
    await sink.nextEnd();
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
  const readable = new Readable({
    highWaterMark: 4 * 1024 * 1024,
    read() {
      if (paused) {
        paused = false;
        rpc.resumeReading();
      }
    },
    destroy(err, callback) {
      if (paused) rpc.resumeReading();
      if (!settled && serial >= 0) {
        settled = true;
        void abortStream(rpc, procedure, serial, sink).finally(() => callback(err));
      } else callback(err);
    },
  });
  const sink: AwaitableSink = new AwaitableSink((chunk) => {
    received += chunk.length;
    onProgress?.(received);
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

  // The daemon signals end of data; we answer with our finish and it confirms.
  void (async () => {
    try {
      await sink.nextEnd();
      if (settled) return;
      await rpc.sendStream(procedure, serial, MessageStatus.ok);
      await sink.nextEnd();
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
