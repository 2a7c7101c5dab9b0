/**
 * An in-memory connected pair of Duplex streams, for unit tests of everything that
 * speaks over a Dialer (Node 20 has no stream.duplexPair).
 *
 * Behaves like the two ends of a socket:
 * - what one end writes the other reads, in order;
 * - backpressure: a write is not acknowledged until the other end's reader has room
 *   (its readable buffer is under highWaterMark), so `write()` returns false and
 *   'drain' follows as with a socket;
 * - `end()` on one end is EOF ('end') on the other; with allowHalfOpen false (the
 *   default, like net.Socket) the other end then ends too and both close;
 * - `destroy()` on one end is EOF on the other, whose later writes fail with EPIPE;
 *   `destroy(err)` is an abrupt reset: the other end is destroyed with ECONNRESET.
 */
import { Duplex } from 'node:stream';
import type { Dialer } from './dialer.js';

export interface DuplexPairOptions {
  /** Per-direction buffer size in bytes (default 16 KiB, as for sockets). */
  highWaterMark?: number;
  /** Keep the writable side open after the peer ends (default false, as net.Socket). */
  allowHalfOpen?: boolean;
}

function sysError(code: 'EPIPE' | 'ECONNRESET', message: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${message}`) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

type WriteCallback = (error?: Error | null) => void;

class MemoryEnd extends Duplex {
  peer!: MemoryEnd;
  /** A write made by the peer, waiting until our reader wants more. */
  private waitingPeerWrite: WriteCallback | null = null;
  /** We have sent EOF to the peer (pushed null into it). */
  private sentEof = false;
  /** The peer is gone: our writes fail. */
  private peerGone = false;

  constructor(opts: DuplexPairOptions) {
    super({
      allowHalfOpen: opts.allowHalfOpen ?? false,
      readableHighWaterMark: opts.highWaterMark ?? 16 * 1024,
      writableHighWaterMark: opts.highWaterMark ?? 16 * 1024,
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    const peer = this.peer;
    if (this.peerGone || peer.destroyed) {
      callback(sysError('EPIPE', 'the other end of the in-memory pair is closed'));
      return;
    }
    // Copy, as a kernel socket does: once a write is acknowledged the writer may reuse its buffer.
    if (peer.push(Buffer.from(chunk))) {
      callback();
    } else {
      peer.waitingPeerWrite = callback;
    }
  }

  override _read(): void {
    const cb = this.waitingPeerWrite;
    if (cb) {
      this.waitingPeerWrite = null;
      cb();
    }
  }

  private sendEof(): void {
    if (this.sentEof) return;
    this.sentEof = true;
    if (!this.peer.destroyed) this.peer.push(null);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.sendEof();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A peer's write blocked on our reader will never be read now.
    const blocked = this.waitingPeerWrite;
    this.waitingPeerWrite = null;
    const peer = this.peer;
    if (!peer.destroyed) {
      peer.peerGone = true;
      if (error) {
        peer.destroy(sysError('ECONNRESET', 'the other end of the in-memory pair was reset'));
      } else {
        this.sendEof();
      }
    }
    blocked?.(sysError('EPIPE', 'the other end of the in-memory pair is closed'));
    callback(error);
  }
}

/** Two connected ends: what `a` writes `b` reads and the other way round. */
export function duplexPair(opts: DuplexPairOptions = {}): [Duplex, Duplex] {
  const a = new MemoryEnd(opts);
  const b = new MemoryEnd(opts);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/**
 * A Dialer over an in-memory pair: each dial makes a new pair, hands one end to
 * `onServer` (a fake daemon) and returns the other.
 */
export function memoryDialer(onServer: (server: Duplex) => void, opts: DuplexPairOptions = {}): Dialer {
  return {
    describe: () => 'in-memory pair',
    async dial(signal?: AbortSignal): Promise<Duplex> {
      signal?.throwIfAborted();
      const [client, server] = duplexPair(opts);
      onServer(server);
      return client;
    },
  };
}
