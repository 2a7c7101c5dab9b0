import { describe, expect, it } from 'vitest';
import { LibvirtProtocolError } from '../../../src/libvirt/errors.js';
import {
  HEADER_SIZE,
  MessageStatus,
  MessageType,
  PacketDecoder,
  REMOTE_PROGRAM,
  encodePacket,
  type Packet,
  type PacketHeader,
} from '../../../src/libvirt/protocol/packet.js';

const header = (serial: number, type: PacketHeader['type'] = MessageType.reply): PacketHeader => ({
  program: REMOTE_PROGRAM,
  version: 1,
  procedure: 23,
  type,
  serial,
  status: MessageStatus.ok,
});

const summary = (ps: Packet[]) => ps.map((p) => ({ ...p.header, payload: p.payload.toString('hex') }));

describe('packet framing', () => {
  const packets = [
    encodePacket(header(1), Buffer.from('first payload')),
    encodePacket(header(2)),
    encodePacket(header(3, MessageType.stream), Buffer.alloc(300, 0xab)),
    encodePacket({ ...header(0, MessageType.message), status: MessageStatus.ok }, Buffer.from([1, 2, 3, 4])),
  ];
  const stream = Buffer.concat(packets);
  const expected = summary(new PacketDecoder().push(stream));

  it('writes the length word and a 24-byte header', () => {
    const p = encodePacket(header(9), Buffer.from([1, 2, 3, 4]));
    expect(p.readUInt32BE(0)).toBe(HEADER_SIZE + 4);
    expect(p.readUInt32BE(4)).toBe(REMOTE_PROGRAM);
    expect(p.readUInt32BE(20)).toBe(9);
  });

  it('decodes a whole stream at once', () => {
    expect(expected).toHaveLength(4);
    expect(expected[0]!.payload).toBe(Buffer.from('first payload').toString('hex'));
    expect(expected[2]!.type).toBe(MessageType.stream);
  });

  it('gives the same packets for every split into two parts', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new PacketDecoder();
      const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(summary(got)).toEqual(expected);
      expect(d.pending).toBe(0);
    }
  });

  it('gives the same packets for every split into three parts', () => {
    for (let a = 0; a <= stream.length; a += 7) {
      for (let b = a; b <= stream.length; b += 5) {
        const d = new PacketDecoder();
        const got = [
          ...d.push(stream.subarray(0, a)),
          ...d.push(stream.subarray(a, b)),
          ...d.push(stream.subarray(b)),
        ];
        expect(summary(got)).toEqual(expected);
      }
    }
  });

  it('gives the same packets when fed one byte at a time', () => {
    const d = new PacketDecoder();
    const got: Packet[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...d.push(stream.subarray(i, i + 1)));
    expect(summary(got)).toEqual(expected);
  });

  it('rejects lengths shorter than a header or over the limit', () => {
    const short = Buffer.alloc(8);
    short.writeUInt32BE(8, 0);
    expect(() => new PacketDecoder().push(short)).toThrow(LibvirtProtocolError);
    const long = Buffer.alloc(4);
    long.writeUInt32BE(64 * 1024 * 1024, 0);
    expect(() => new PacketDecoder().push(long)).toThrow(/exceeds/);
  });

  it('rejects unknown message types', () => {
    const p = encodePacket(header(1));
    p.writeInt32BE(9, 16);
    expect(() => new PacketDecoder().push(p)).toThrow(/message type/);
  });
});
