import { describe, expect, it } from 'vitest';
import { hostPortText, procHexWord } from '../../../src/util/ip.js';

describe('procHexWord', () => {
  it('reads a /proc/net word in the byte order it is told', () => {
    expect(procHexWord('0100007F', 'LE')).toBe(0x7f000001);
    expect(procHexWord('0002A8C0', 'LE')).toBe(0xc0a80200);
    expect(procHexWord('7F000001', 'BE')).toBe(0x7f000001);
    expect(procHexWord('FFFFFFFF', 'LE')).toBe(0xffffffff);
  });

  it('is undefined for anything but 8 hex digits', () => {
    expect(procHexWord('0100007', 'LE')).toBeUndefined();
    expect(procHexWord('XX00007F', 'LE')).toBeUndefined();
    expect(procHexWord('', 'BE')).toBeUndefined();
  });
});

describe('hostPortText', () => {
  it('brackets IPv6 addresses only', () => {
    expect(hostPortText('127.0.0.1', 8080)).toBe('127.0.0.1:8080');
    expect(hostPortText('example.org', 16509)).toBe('example.org:16509');
    expect(hostPortText('::1', 53)).toBe('[::1]:53');
  });
});
