import { describe, expect, it } from 'vitest';
import { LibvirtProtocolError } from '../../../src/libvirt/errors.js';
import { XdrReader, XdrWriter } from '../../../src/libvirt/protocol/xdr.js';
import { readDomain, readError, writeDomain, writeError, formatUuid, parseUuid } from '../../../src/libvirt/protocol/types.js';

describe('XDR', () => {
  it('round-trips every primitive', () => {
    const w = new XdrWriter(4);
    w.int(-5).uint(0xffffffff).hyper(-(2n ** 63n)).uhyper(2n ** 64n - 1n).bool(true).bool(false).double(1.5);
    w.string('').string('héllo').string('abcd');
    w.opaque(Buffer.from([1, 2, 3])).fixedOpaque(Buffer.from([9, 8, 7, 6, 5]), 5);
    w.optionalString(null).optionalString('x');
    w.array([1, 2, 3], (x, v) => x.int(v));
    const r = new XdrReader(w.bytes());
    expect(r.int()).toBe(-5);
    expect(r.uint()).toBe(0xffffffff);
    expect(r.hyper()).toBe(-(2n ** 63n));
    expect(r.uhyper()).toBe(2n ** 64n - 1n);
    expect(r.bool()).toBe(true);
    expect(r.bool()).toBe(false);
    expect(r.double()).toBe(1.5);
    expect(r.string()).toBe('');
    expect(r.string()).toBe('héllo');
    expect(r.string()).toBe('abcd');
    expect([...r.opaque()]).toEqual([1, 2, 3]);
    expect([...r.fixedOpaque(5)]).toEqual([9, 8, 7, 6, 5]);
    expect(r.optionalString()).toBeNull();
    expect(r.optionalString()).toBe('x');
    expect(r.array((x) => x.int())).toEqual([1, 2, 3]);
    r.expectEnd('test');
  });

  it('pads strings and opaques to four bytes with zeros', () => {
    const bytes = new XdrWriter().string('abcde').bytes();
    expect(bytes.length).toBe(4 + 8);
    expect([...bytes.subarray(9)]).toEqual([0, 0, 0]);
    expect(new XdrWriter().opaque(Buffer.alloc(4)).length).toBe(8);
  });

  it('encodes big-endian as RFC 4506 requires', () => {
    expect([...new XdrWriter().uint(0x01020304).bytes()]).toEqual([1, 2, 3, 4]);
    expect([...new XdrWriter().hyper(-2n).bytes()]).toEqual([255, 255, 255, 255, 255, 255, 255, 254]);
  });

  it('rejects truncated input with a protocol error', () => {
    const bytes = new XdrWriter().string('hello world').bytes();
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => new XdrReader(bytes.subarray(0, cut)).string()).toThrow(LibvirtProtocolError);
    }
  });

  it('rejects lengths over their bounds without allocating', () => {
    const huge = new XdrWriter().uint(0x7fffffff).bytes();
    expect(() => new XdrReader(huge).string()).toThrow(/exceeds its bound/);
    expect(() => new XdrReader(huge).array((r) => r.int())).toThrow(LibvirtProtocolError);
  });

  it('rejects bad bool and optional flags', () => {
    expect(() => new XdrReader(new XdrWriter().int(2).bytes()).bool()).toThrow(LibvirtProtocolError);
    expect(() => new XdrReader(new XdrWriter().uint(7).bytes()).optionalString()).toThrow(LibvirtProtocolError);
  });

  it('round-trips a domain handle and formats UUIDs', () => {
    const uuid = parseUuid('4f9c2a1e-0b5d-4c3e-9a7f-1234567890ab');
    const w = new XdrWriter();
    writeDomain(w, { name: 'web"<&', uuid, id: 7 });
    const d = readDomain(new XdrReader(w.bytes()));
    expect(d.name).toBe('web"<&');
    expect(formatUuid(d.uuid)).toBe('4f9c2a1e-0b5d-4c3e-9a7f-1234567890ab');
    expect(d.id).toBe(7);
    expect(() => parseUuid('nope')).toThrow();
  });

  it('decodes libvirt error replies into typed errors', () => {
    const w = new XdrWriter();
    writeError(w, { code: 42, domain: 10, message: "Domain not found: no domain with matching name 'x'" });
    const err = readError(new XdrReader(w.bytes()), 'DomainLookupByName');
    expect(err.code).toBe(42);
    expect(err.domain).toBe(10);
    expect(err.domainName).toBe('qemu');
    expect(err.procedure).toBe('DomainLookupByName');
    expect(err.message).toMatch(/Domain not found/);
  });
});
