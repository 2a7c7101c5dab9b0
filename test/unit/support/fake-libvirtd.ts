import type { Duplex } from 'node:stream';
import {
  KEEPALIVE_PROGRAM,
  KeepaliveProcedure,
  MessageStatus,
  MessageType,
  PacketDecoder,
  REMOTE_PROGRAM,
  encodePacket,
  type Packet,
  type PacketHeader,
} from '../../../src/libvirt/protocol/packet.js';
import { writeError } from '../../../src/libvirt/protocol/types.js';
import { XdrReader, XdrWriter } from '../../../src/libvirt/protocol/xdr.js';

export type Reply =
  | { ok: (w: XdrWriter) => void }
  | { error: { code: number; domain: number; message: string } }
  | { later: Promise<Reply> }
  | 'none';

export type Handler = (args: XdrReader, packet: Packet, daemon: FakeLibvirtd) => Reply;

/**
 * A scripted libvirt daemon on the server end of an in-memory transport: it decodes
 * real packets, answers calls from a handler table, and can push events, pings and
 * stream data. For unit tests only; integration tests use the real libvirtd.
 */
export class FakeLibvirtd {
  readonly handlers = new Map<number, Handler>();
  readonly received: Packet[] = [];
  readonly streamPackets: Packet[] = [];
  pongs = 0;
  private readonly decoder = new PacketDecoder();

  constructor(readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      for (const p of this.decoder.push(chunk)) this.onPacket(p);
    });
    socket.on('error', () => undefined);
  }

  on(procedure: number, handler: Handler): this {
    this.handlers.set(procedure, handler);
    return this;
  }

  private onPacket(p: Packet): void {
    this.received.push(p);
    if (p.header.program === KEEPALIVE_PROGRAM) {
      if (p.header.procedure === KeepaliveProcedure.pong) this.pongs++;
      if (p.header.procedure === KeepaliveProcedure.ping) this.send({ ...p.header, procedure: KeepaliveProcedure.pong });
      return;
    }
    if (p.header.type === MessageType.stream) {
      this.streamPackets.push(p);
      this.onStream?.(p);
      return;
    }
    const handler = this.handlers.get(p.header.procedure);
    const reply = handler
      ? handler(new XdrReader(p.payload), p, this)
      : { error: { code: 3, domain: 7, message: `unknown procedure: ${p.header.procedure}` } };
    void this.answer(p.header, reply);
  }

  onStream: ((p: Packet) => void) | undefined;

  async answer(h: PacketHeader, reply: Reply): Promise<void> {
    if (reply === 'none') return;
    if ('later' in reply) {
      await this.answer(h, await reply.later);
      return;
    }
    const w = new XdrWriter();
    if ('ok' in reply) reply.ok(w);
    else writeError(w, reply.error);
    this.send(
      { ...h, type: MessageType.reply, status: 'ok' in reply ? MessageStatus.ok : MessageStatus.error },
      w.bytes(),
    );
  }

  send(h: PacketHeader, payload?: Uint8Array): void {
    this.socket.write(encodePacket(h, payload));
  }

  sendStream(serial: number, procedure: number, status: number, payload?: Uint8Array): void {
    this.send(
      { program: REMOTE_PROGRAM, version: 1, procedure, type: MessageType.stream, serial, status: status as PacketHeader['status'] },
      payload,
    );
  }

  /** A stream failing, as libvirtd reports it: a STREAM packet with status ERROR. */
  sendStreamError(serial: number, procedure: number, error: { code: number; domain: number; message: string }): void {
    const w = new XdrWriter();
    writeError(w, error);
    this.sendStream(serial, procedure, MessageStatus.error, w.bytes());
  }

  sendEvent(procedure: number, write: (w: XdrWriter) => void): void {
    const w = new XdrWriter();
    write(w);
    this.send(
      { program: REMOTE_PROGRAM, version: 1, procedure, type: MessageType.message, serial: 0, status: MessageStatus.ok },
      w.bytes(),
    );
  }

  ping(): void {
    this.send({
      program: KEEPALIVE_PROGRAM,
      version: 1,
      procedure: KeepaliveProcedure.ping,
      type: MessageType.message,
      serial: 0,
      status: MessageStatus.ok,
    });
  }
}
