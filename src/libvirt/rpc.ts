import type { Duplex } from 'node:stream';
import { LibvirtConnectionClosedError, LibvirtProtocolError } from './errors.js';
import {
  HEADER_SIZE,
  KEEPALIVE_PROGRAM,
  KEEPALIVE_PROTOCOL_VERSION,
  KeepaliveProcedure,
  MessageStatus,
  MessageType,
  PacketDecoder,
  REMOTE_PROGRAM,
  REMOTE_PROTOCOL_VERSION,
  encodePacket,
  writeHeader,
  type Packet,
} from './protocol/packet.js';
import { procedureName } from './protocol/procedures.js';
import { readError } from './protocol/types.js';
import { XdrReader, XdrWriter } from './protocol/xdr.js';

/** Bytes of stream data that may wait in the transport's buffer before a sender pauses. */
const STREAM_WRITE_AHEAD = 4 * 1024 * 1024;

export type ArgsWriter = (w: XdrWriter) => void;
export type RetReader<T> = (r: XdrReader) => T;

interface PendingCall {
  procedure: number;
  decode: RetReader<unknown> | undefined;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * What a stream's owner is told about the packets that carry its serial after the
 * call's reply. The sink stays attached until its owner calls releaseStream().
 */
export interface StreamSink {
  data(chunk: Buffer): void;
  /**
   * `eof`: the daemon has no more data (an empty CONTINUE packet). `ok`: the stream is
   * complete — the daemon's answer to our finish or abort (a STREAM packet with OK).
   */
  end(kind: 'eof' | 'ok'): void;
  error(err: Error): void;
}

/** Receives asynchronous MESSAGE packets (events) of the remote program. */
export type MessageHandler = (procedure: number, payload: XdrReader) => void;

export interface KeepaliveOptions {
  /** Send a PING after this long without hearing from the daemon. */
  intervalMs: number;
  /** Give up after this many unanswered intervals. */
  count: number;
}

/** Runs code the caller handed us (listeners, progress) so that its bugs stay its own. */
export function runUserCallback(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    // Not the connection's fault: report it as an uncaught error, as an EventEmitter would.
    queueMicrotask(() => {
      throw err;
    });
  }
}

/**
 * One connection speaking libvirt's RPC: packets in and out, calls matched to replies
 * by serial, stream packets routed to their stream, events to the message handler,
 * keepalive answered and (once enabled) sent.
 */
export class RpcConnection {
  private readonly decoder = new PacketDecoder();
  private readonly pending = new Map<number, PendingCall>();
  private readonly streams = new Map<number, StreamSink>();
  private readonly closeListeners = new Set<(err: Error | undefined) => void>();
  private nextSerial = 1;
  private closedWith: Error | null = null;
  private messageHandler: MessageHandler | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private lastHeard = Date.now();
  private lastPing = 0;
  private pauses = 0;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.wakeDrainWaiters());
    socket.on('error', (err) =>
      this.shutdown(new LibvirtConnectionClosedError(`connection to libvirt failed: ${err.message}`, { cause: err })),
    );
    socket.on('end', () => this.shutdown(new LibvirtConnectionClosedError('libvirt closed the connection')));
    socket.on('close', () => this.shutdown(new LibvirtConnectionClosedError('the connection to libvirt was closed')));
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Calls in flight; useful to tests and to diagnose hangs. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Streams whose sinks are attached. */
  get openStreams(): number {
    return this.streams.size;
  }

  setMessageHandler(handler: MessageHandler): void {
    this.messageHandler = handler;
  }

  onClose(listener: (err: Error | undefined) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /**
   * Calls a remote procedure. `decode` runs synchronously when the reply arrives,
   * before any later packet is handled, so it may safely register follow-up state.
   */
  call<T = void>(procedure: number, args?: ArgsWriter, decode?: RetReader<T>): Promise<T> {
    return this.start(procedure, args, decode, this.allocSerial());
  }

  /**
   * Calls a procedure that opens a data stream (volume upload/download). The sink is
   * attached before the call is sent, so stream packets that follow the reply at once
   * cannot be missed. Resolves when the call's reply arrives.
   */
  callWithStream(procedure: number, args: ArgsWriter | undefined, sink: StreamSink): Promise<{ serial: number }> {
    const serial = this.allocSerial();
    this.streams.set(serial, sink);
    return this.start(procedure, args, () => ({ serial }), serial).catch((err: unknown) => {
      this.streams.delete(serial);
      throw err;
    });
  }

  private allocSerial(): number {
    const s = this.nextSerial;
    this.nextSerial = this.nextSerial >= 0xffffffff ? 1 : this.nextSerial + 1;
    return s;
  }

  private start<T>(procedure: number, args: ArgsWriter | undefined, decode: RetReader<T> | undefined, serial: number): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    let packet: Buffer;
    try {
      let payload: Buffer | undefined;
      if (args) {
        const w = new XdrWriter();
        args(w);
        payload = w.bytes();
      }
      packet = encodePacket(
        { program: REMOTE_PROGRAM, version: REMOTE_PROTOCOL_VERSION, procedure, type: MessageType.call, serial, status: MessageStatus.ok },
        payload,
      );
    } catch (err) {
      // Bad arguments (a wrong-length UUID, an out-of-range number): nothing was sent.
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.set(serial, { procedure, decode, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(packet);
    });
  }

  /**
   * Sends one stream packet for the stream opened with `serial`. Resolves once the
   * transport accepted it, waiting for 'drain' when a few MiB are already queued.
   * `onWritten` runs once the data left the transport's buffer, so it may be reused.
   */
  async sendStream(
    procedure: number,
    serial: number,
    status: MessageStatus,
    data?: Uint8Array,
    options: { onWritten?: () => void; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (this.closedWith) throw this.closedWith;
    const header = Buffer.allocUnsafe(HEADER_SIZE);
    writeHeader(header, HEADER_SIZE + (data?.length ?? 0), {
      program: REMOTE_PROGRAM,
      version: REMOTE_PROTOCOL_VERSION,
      procedure,
      type: MessageType.stream,
      serial,
      status,
    });
    if (data && data.length > 0) {
      // Header and data go out together in one writev: the data is never copied.
      const { onWritten } = options;
      this.socket.cork();
      this.socket.write(header);
      this.socket.write(data, onWritten && (() => onWritten()));
      process.nextTick(() => this.socket.uncork());
    } else {
      this.socket.write(header);
    }
    if (this.socket.writableLength > STREAM_WRITE_AHEAD) await this.waitDrain(options.signal);
  }

  /** Stops routing packets of a stream to its sink. */
  releaseStream(serial: number): void {
    this.streams.delete(serial);
  }

  private waitDrain(signal?: AbortSignal): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.drainWaiters = this.drainWaiters.filter((w) => w !== waiter);
        reject(signal!.reason instanceof Error ? signal!.reason : new Error('cancelled'));
      };
      const waiter = (): void => {
        signal?.removeEventListener('abort', onAbort);
        if (this.closedWith) reject(this.closedWith);
        else resolve();
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.drainWaiters.push(waiter);
    });
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Pause reading from the daemon (download backpressure); all traffic waits until
   * every pause is matched by a resume.
   */
  pauseReading(): void {
    if (this.pauses++ === 0) this.socket.pause();
  }

  resumeReading(): void {
    if (this.pauses === 0) return;
    if (--this.pauses === 0) this.socket.resume();
  }

  /** Reading resumes whatever streams still hold it (before closing the connection). */
  private releasePauses(): void {
    if (this.pauses === 0) return;
    this.pauses = 0;
    this.socket.resume();
  }

  /**
   * Start sending PINGs when the daemon has been silent for `intervalMs`, and close the
   * connection after `count` silent intervals. Only call once the daemon said it
   * supports the keepalive program.
   */
  enableKeepalive(opts: KeepaliveOptions): void {
    if (this.keepaliveTimer || this.closedWith) return;
    const tick = Math.max(50, Math.floor(opts.intervalMs / 4));
    this.keepaliveTimer = setInterval(() => {
      const now = Date.now();
      // While we are not reading, silence is ours, not the daemon's; our PINGs keep it
      // content that we are alive.
      const silent = this.pauses > 0 ? 0 : now - this.lastHeard;
      if (silent >= opts.intervalMs * (opts.count + 1)) {
        this.destroy(new LibvirtConnectionClosedError(`libvirt did not answer keepalive for ${Math.round(silent / 1000)} s`));
        return;
      }
      const quiet = this.pauses > 0 || silent >= opts.intervalMs;
      if (quiet && now - this.lastPing >= opts.intervalMs) {
        this.lastPing = now;
        this.sendKeepalive(KeepaliveProcedure.ping);
      }
    }, tick);
    this.keepaliveTimer.unref();
  }

  private sendKeepalive(procedure: number): void {
    if (this.closedWith) return;
    this.socket.write(
      encodePacket({
        program: KEEPALIVE_PROGRAM,
        version: KEEPALIVE_PROTOCOL_VERSION,
        procedure,
        type: MessageType.message,
        serial: 0,
        status: MessageStatus.ok,
      }),
    );
  }

  private onData(chunk: Buffer): void {
    this.lastHeard = Date.now();
    let packets: Packet[];
    try {
      packets = this.decoder.push(chunk);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    for (const p of packets) {
      try {
        this.dispatch(p);
      } catch (err) {
        this.destroy(err instanceof Error ? err : new LibvirtProtocolError(String(err)));
        return;
      }
    }
  }

  private dispatch({ header, payload }: Packet): void {
    if (header.program === KEEPALIVE_PROGRAM) {
      if (header.procedure === KeepaliveProcedure.ping) this.sendKeepalive(KeepaliveProcedure.pong);
      return;
    }
    if (header.program !== REMOTE_PROGRAM) {
      throw new LibvirtProtocolError(`packet for unknown program 0x${header.program.toString(16)}`);
    }
    switch (header.type) {
      case MessageType.reply:
        this.onReply(header.serial, header.status, payload);
        return;
      case MessageType.stream:
        this.onStreamPacket(header.serial, header.procedure, header.status, payload);
        return;
      case MessageType.message:
        this.messageHandler?.(header.procedure, new XdrReader(payload));
        return;
      default:
        // Replies with file descriptors and sparse-stream holes are never requested here.
        throw new LibvirtProtocolError(`unexpected message type ${header.type} for ${procedureName(header.procedure)}`);
    }
  }

  private onReply(serial: number, status: number, payload: Buffer): void {
    const call = this.pending.get(serial);
    if (!call) throw new LibvirtProtocolError(`reply for serial ${serial}, which no call is waiting for`);
    this.pending.delete(serial);
    let outcome: { ok: true; value: unknown } | { ok: false; error: Error };
    try {
      if (status === MessageStatus.error) {
        outcome = { ok: false, error: readError(new XdrReader(payload), procedureName(call.procedure)) };
      } else {
        outcome = { ok: true, value: call.decode ? call.decode(new XdrReader(payload)) : undefined };
      }
    } catch (err) {
      // A reply we cannot decode fails its call, and the connection with it.
      call.reject(err as Error);
      throw err;
    }
    if (outcome.ok) call.resolve(outcome.value);
    else {
      this.streams.delete(serial);
      call.reject(outcome.error);
    }
  }

  private onStreamPacket(serial: number, procedure: number, status: number, payload: Buffer): void {
    const sink = this.streams.get(serial);
    if (!sink) return; // a stream its owner already released
    if (status === MessageStatus.continue) {
      if (payload.length > 0) sink.data(payload);
      else sink.end('eof');
    } else if (status === MessageStatus.ok) {
      sink.end('ok');
    } else {
      sink.error(
        payload.length > 0
          ? readError(new XdrReader(payload), procedureName(procedure))
          : new LibvirtProtocolError('stream failed without an error message'),
      );
    }
  }

  /** Ends the transport without notice; pending calls fail with `reason`. */
  destroy(reason?: Error): void {
    this.shutdown(reason ?? new LibvirtConnectionClosedError('the connection was closed by vmenv'));
    this.socket.destroy();
  }

  /** Ends the transport gracefully once everything written has been sent. */
  end(): Promise<void> {
    this.releasePauses();
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        this.shutdown(new LibvirtConnectionClosedError('the connection was closed by vmenv'));
        resolve();
        return;
      }
      // A transport that never emits 'close' after end() must not hang the caller.
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 2000);
      timer.unref();
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.shutdown(new LibvirtConnectionClosedError('the connection was closed by vmenv'));
      this.socket.end();
    });
  }

  /** Prepares for a clean close: reading must flow again for the daemon's last answer. */
  prepareClose(): void {
    this.releasePauses();
  }

  private shutdown(reason: Error): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    for (const call of this.pending.values()) call.reject(reason);
    this.pending.clear();
    const sinks = [...this.streams.values()];
    this.streams.clear();
    for (const sink of sinks) sink.error(reason);
    this.wakeDrainWaiters();
    for (const l of this.closeListeners) l(reason);
    this.closeListeners.clear();
  }
}
