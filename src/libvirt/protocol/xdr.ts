import { LibvirtProtocolError } from '../errors.js';

/** libvirt bounds every string it decodes (VIR_NET_MESSAGE_STRING_MAX). */
export const XDR_STRING_MAX = 4_194_304;

const pad = (n: number): number => (4 - (n % 4)) % 4;

/**
 * Encodes XDR (RFC 4506) into a growable buffer. Every value is big-endian and
 * padded to four bytes. 64-bit values are bigint so nothing is silently rounded.
 */
export class XdrWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initialSize));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  hyper(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
    return this;
  }

  uhyper(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.pos);
    this.pos += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.int(v ? 1 : 0);
  }

  double(v: number): this {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
    return this;
  }

  /** Fixed-length opaque data: exactly `length` bytes, then padding. */
  fixedOpaque(data: Uint8Array, length: number): this {
    if (data.length !== length) {
      throw new RangeError(`fixed opaque needs ${length} bytes, got ${data.length}`);
    }
    this.ensure(length + pad(length));
    this.buf.set(data, this.pos);
    this.pos += length;
    this.zeroPad(length);
    return this;
  }

  /** Variable-length opaque data: a length word, the bytes, padding. */
  opaque(data: Uint8Array): this {
    this.uint(data.length);
    this.ensure(data.length + pad(data.length));
    this.buf.set(data, this.pos);
    this.pos += data.length;
    this.zeroPad(data.length);
    return this;
  }

  string(s: string): this {
    const len = Buffer.byteLength(s, 'utf8');
    this.uint(len);
    this.ensure(len + pad(len));
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
    this.zeroPad(len);
    return this;
  }

  /** An XDR optional (`T *`): a presence word, then the value when present. */
  optional<T>(v: T | null | undefined, write: (w: this, v: T) => void): this {
    if (v === null || v === undefined) return this.uint(0);
    this.uint(1);
    write(this, v);
    return this;
  }

  optionalString(s: string | null | undefined): this {
    return this.optional(s, (w, v) => w.string(v));
  }

  /** A variable-length array: a count word, then each element. */
  array<T>(items: readonly T[], write: (w: this, v: T) => void): this {
    this.uint(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  private zeroPad(len: number): void {
    const p = pad(len);
    for (let i = 0; i < p; i++) this.buf[this.pos++] = 0;
  }

  get length(): number {
    return this.pos;
  }

  /** The encoded bytes. The view shares memory with the writer until it writes again. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Decodes XDR from one buffer, checking every bound. Malformed data raises LibvirtProtocolError. */
export class XdrReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    offset = 0,
    private readonly end = buf.length,
  ) {
    this.pos = offset;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new LibvirtProtocolError(
        `truncated XDR: ${what} needs ${n} bytes at offset ${this.pos}, ${this.end - this.pos} left`,
      );
    }
  }

  int(): number {
    this.need(4, 'int');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint(): number {
    this.need(4, 'unsigned int');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  hyper(): bigint {
    this.need(8, 'hyper');
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  uhyper(): bigint {
    this.need(8, 'unsigned hyper');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  bool(): boolean {
    const v = this.int();
    if (v !== 0 && v !== 1) throw new LibvirtProtocolError(`XDR bool must be 0 or 1, got ${v}`);
    return v === 1;
  }

  double(): number {
    this.need(8, 'double');
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  fixedOpaque(length: number): Buffer {
    this.need(length + pad(length), 'fixed opaque');
    const v = Buffer.from(this.buf.subarray(this.pos, this.pos + length));
    this.pos += length + pad(length);
    return v;
  }

  opaque(max = Number.MAX_SAFE_INTEGER): Buffer {
    const len = this.uint();
    if (len > max) throw new LibvirtProtocolError(`XDR opaque of ${len} bytes exceeds its bound ${max}`);
    return this.fixedOpaque(len);
  }

  string(max = XDR_STRING_MAX): string {
    const len = this.uint();
    if (len > max) throw new LibvirtProtocolError(`XDR string of ${len} bytes exceeds its bound ${max}`);
    this.need(len + pad(len), 'string');
    const v = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len + pad(len);
    return v;
  }

  optional<T>(read: (r: this) => T): T | null {
    const present = this.uint();
    if (present === 0) return null;
    if (present !== 1) throw new LibvirtProtocolError(`XDR optional flag must be 0 or 1, got ${present}`);
    return read(this);
  }

  optionalString(): string | null {
    return this.optional((r) => r.string());
  }

  array<T>(read: (r: this) => T, max = 1 << 24): T[] {
    const count = this.uint();
    if (count > max) throw new LibvirtProtocolError(`XDR array of ${count} items exceeds its bound ${max}`);
    // Each element takes at least 4 bytes: refuse counts the remaining data cannot hold.
    if (count * 4 > this.end - this.pos) {
      throw new LibvirtProtocolError(`XDR array claims ${count} items but only ${this.end - this.pos} bytes remain`);
    }
    const out: T[] = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = read(this);
    return out;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get offset(): number {
    return this.pos;
  }

  /** Call when a message should be fully consumed. */
  expectEnd(what: string): void {
    if (this.pos !== this.end) {
      throw new LibvirtProtocolError(`${what}: ${this.end - this.pos} unexpected trailing bytes`);
    }
  }
}
