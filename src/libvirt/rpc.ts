import type { Duplex } from 'node:stream';
import { LibvirtConnectionClosedError, LibvirtProtocolError, type LibvirtError } from './errors.js';
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
 * What a stream's owner is told about packets that carry its serial after the call's
 * reply. The sink stays attached until its owner calls releaseStream().
 */
export interface StreamSink {
  data(chunk: Buffer): void;
  /** The peer finished its side (STREAM with status OK). */
  end(): void;
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
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    });
    socket.on('error', (err) => this.shutdown(new LibvirtConnectionClosedError(`connection to libvirt failed: ${err.message}`, { cause: err })));
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
    return this.start(procedure, args, decode, undefined);
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

  private start<T>(procedure: number, args: ArgsWriter | undefined, decode: RetReader<T> | undefined, serial: number | undefined): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const s = serial ?? this.allocSerial();
    let payload: Buffer | undefined;
    if (args) {
      const w = new XdrWriter();
      args(w);
      payload = w.bytes();
    }
    const packet = encodePacket(
      { program: REMOTE_PROGRAM, version: REMOTE_PROTOCOL_VERSION, procedure, type: MessageType.call, serial: s, status: MessageStatus.ok },
      payload,
    );
    return new Promise<T>((resolve, reject) => {
      this.pending.set(s, { procedure, decode, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(packet);
    });
  }

  /**
   * Sends one stream packet for the stream opened with `serial`. Resolves once the
   * transport accepted it, waiting for 'drain' when its buffer is full (backpressure).
   */
  async sendStream(
    procedure: number,
    serial: number,
    status: MessageStatus,
    data?: Uint8Array,
    onWritten?: () => void,
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
      this.socket.cork();
      this.socket.write(header);
      this.socket.write(data, onWritten && (() => onWritten()));
      process.nextTick(() => this.socket.uncork());
    } else {
      this.socket.write(header);
    }
    // Keep a few packets queued so the daemon never waits for us, and no more.
    if (this.socket.writableLength > STREAM_WRITE_AHEAD) await this.waitDrain();
  }

  /** Stops routing packets of a stream to its sink. */
  releaseStream(serial: number): void {
    this.streams.delete(serial);
  }

  private waitDrain(): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const off = this.onClose((err) => reject(err ?? new LibvirtConnectionClosedError()));
      this.drainWaiters.push(() => {
        off();
        resolve();
      });
    });
  }

  /** Pause reading from the daemon (download backpressure); all traffic waits. */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /**
   * Start sending PINGs when the daemon has been silent for `intervalMs`, and close the
   * connection after `count` silent intervals. Only call once the daemon said it
   * supports the keepalive program.
   */
  enableKeepalive(opts: KeepaliveOptions): void {
    if (this.keepaliveTimer || this.closedWith) return;
    const tick = Math.max(50, Math.floor(opts.intervalMs / 2));
    this.keepaliveTimer = setInterval(() => {
      const silent = Date.now() - this.lastHeard;
      if (silent >= opts.intervalMs * (opts.count + 1)) {
        this.destroy(new LibvirtConnectionClosedError(`libvirt did not answer keepalive for ${Math.round(silent / 1000)} s`));
      } else if (silent >= opts.intervalMs) {
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
      case MessageType.replyWithFds:
        this.onReply(header.serial, header.status, payload);
        return;
      case MessageType.stream:
        this.onStreamPacket(header.serial, header.procedure, header.status, payload);
        return;
      case MessageType.message:
        this.messageHandler?.(header.procedure, new XdrReader(payload));
        return;
      default:
        // Holes (sparse streams) are never requested by this client.
        throw new LibvirtProtocolError(`unexpected message type ${header.type} for ${procedureName(header.procedure)}`);
    }
  }

  private onReply(serial: number, status: number, payload: Buffer): void {
    const call = this.pending.get(serial);
    if (!call) {
      // The daemon answers a stream's finish or abort with a packet on the stream's serial.
      if (this.streams.has(serial)) {
        this.onStreamPacket(serial, 0, status === MessageStatus.error ? status : MessageStatus.ok, payload);
        return;
      }
      throw new LibvirtProtocolError(`reply for serial ${serial}, which no call is waiting for`);
    }
    this.pending.delete(serial);
    const r = new XdrReader(payload);
    if (status === MessageStatus.error) {
      this.streams.delete(serial);
      call.reject(readError(r, procedureName(call.procedure)));
      return;
    }
    try {
      const value = call.decode ? call.decode(r) : undefined;
      call.resolve(value);
    } catch (err) {
      call.reject(err as Error);
    }
  }

  private onStreamPacket(serial: number, procedure: number, status: number, payload: Buffer): void {
    const sink = this.streams.get(serial);
    if (!sink) return; // a stream its owner already released
    if (status === MessageStatus.continue && payload.length > 0) sink.data(payload);
    // Some daemons end a stream with an empty CONTINUE packet instead of OK.
    else if (status !== MessageStatus.error) sink.end();
    else sink.error(payload.length > 0 ? readError(new XdrReader(payload), procedureName(procedure)) : new LibvirtProtocolError('stream failed without an error message'));
  }

  /** Ends the transport without notice; pending calls fail with `reason`. */
  destroy(reason?: Error): void {
    this.shutdown(reason ?? new LibvirtConnectionClosedError('the connection was closed by vmenv'));
    this.socket.destroy();
  }

  /** Ends the transport gracefully once everything written has been sent. */
  end(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        this.shutdown(new LibvirtConnectionClosedError('the connection was closed by vmenv'));
        resolve();
        return;
      }
      this.socket.once('close', () => resolve());
      this.shutdown(new LibvirtConnectionClosedError('the connection was closed by vmenv'));
      this.socket.end();
      // A transport that never emits 'close' after end() must not hang the caller.
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 2000).unref();
    });
  }

  private shutdown(reason: Error): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    for (const call of this.pending.values()) call.reject(reason);
    this.pending.clear();
    for (const sink of this.streams.values()) sink.error(reason);
    this.streams.clear();
    for (const w of this.drainWaiters) w();
    this.drainWaiters = [];
    for (const l of this.closeListeners) l(reason);
    this.closeListeners.clear();
  }
}

export type { LibvirtError };
