import { LibvirtProtocolError } from '../errors.js';

/** The remote program: every libvirt API call. */
export const REMOTE_PROGRAM = 0x20008086;
export const REMOTE_PROTOCOL_VERSION = 1;
/** The keepalive program: PING and PONG messages with no payload. */
export const KEEPALIVE_PROGRAM = 0x6b656570;
export const KEEPALIVE_PROTOCOL_VERSION = 1;
export const KeepaliveProcedure = { ping: 1, pong: 2 } as const;

export const MessageType = {
  call: 0,
  reply: 1,
  message: 2,
  stream: 3,
  callWithFds: 4,
  replyWithFds: 5,
  streamHole: 6,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const MessageStatus = { ok: 0, error: 1, continue: 2 } as const;
export type MessageStatus = (typeof MessageStatus)[keyof typeof MessageStatus];

/** Length word + header. */
export const HEADER_SIZE = 28;
/** libvirt's VIR_NET_MESSAGE_MAX plus the length word. */
export const MAX_PACKET_SIZE = 16_777_216 + 4;
/**
 * libvirt's own client sends stream data in chunks of the legacy payload size; larger
 * chunks gain nothing and old daemons refuse them.
 */
export const STREAM_CHUNK_SIZE = 262_144 - 24;

export interface PacketHeader {
  program: number;
  version: number;
  procedure: number;
  type: MessageType;
  serial: number;
  status: MessageStatus;
}

export interface Packet {
  header: PacketHeader;
  /** The payload, a view into a buffer owned by this packet. */
  payload: Buffer;
}

export function writeHeader(buf: Buffer, totalLength: number, h: PacketHeader): void {
  buf.writeUInt32BE(totalLength, 0);
  buf.writeUInt32BE(h.program, 4);
  buf.writeUInt32BE(h.version, 8);
  buf.writeInt32BE(h.procedure, 12);
  buf.writeInt32BE(h.type, 16);
  buf.writeUInt32BE(h.serial, 20);
  buf.writeInt32BE(h.status, 24);
}

/** One packet as bytes: length word, header, payload. */
export function encodePacket(header: PacketHeader, payload?: Uint8Array): Buffer {
  const size = HEADER_SIZE + (payload?.length ?? 0);
  if (size > MAX_PACKET_SIZE) {
    throw new LibvirtProtocolError(`packet of ${size} bytes exceeds libvirt's limit of ${MAX_PACKET_SIZE}`);
  }
  const buf = Buffer.allocUnsafe(size);
  writeHeader(buf, size, header);
  if (payload) buf.set(payload, HEADER_SIZE);
  return buf;
}

function readHeader(buf: Buffer): PacketHeader {
  const type = buf.readInt32BE(16);
  const status = buf.readInt32BE(24);
  if (type < 0 || type > 6) throw new LibvirtProtocolError(`unknown message type ${type}`);
  if (status < 0 || status > 2) throw new LibvirtProtocolError(`unknown message status ${status}`);
  return {
    program: buf.readUInt32BE(4),
    version: buf.readUInt32BE(8),
    procedure: buf.readInt32BE(12),
    type: type as MessageType,
    serial: buf.readUInt32BE(20),
    status: status as MessageStatus,
  };
}

/**
 * Turns a byte stream cut at arbitrary places into whole packets. Feed it every
 * chunk as it arrives; it returns the packets completed by that chunk.
 */
export class PacketDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Packet[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Packet[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const length = this.peekLength();
      if (length < HEADER_SIZE) throw new LibvirtProtocolError(`packet length ${length} is shorter than a header`);
      if (length > MAX_PACKET_SIZE) {
        throw new LibvirtProtocolError(`packet length ${length} exceeds libvirt's limit of ${MAX_PACKET_SIZE}`);
      }
      if (this.buffered < length) break;
      const bytes = this.take(length);
      out.push({ header: readHeader(bytes), payload: bytes.subarray(HEADER_SIZE) });
    }
    return out;
  }

  /** Bytes received that do not yet form a whole packet. */
  get pending(): number {
    return this.buffered;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.concat(this.chunks, Math.min(4, this.buffered)).subarray(0, 4);
    return head.readUInt32BE(0);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}
