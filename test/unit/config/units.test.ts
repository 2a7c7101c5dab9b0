import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance } from '../../../src/config/did-you-mean.js';
import { formatSize, GiB, MiB, parseSize } from '../../../src/config/units.js';

describe('parseSize', () => {
  it.each<[number | string, 'MiB' | 'GiB', number | undefined]>([
    [512, 'MiB', 512 * MiB],
    [20, 'GiB', 20 * GiB],
    ['20', 'GiB', 20 * GiB],
    ['2G', 'MiB', 2 * GiB],
    ['2 GiB', 'MiB', 2 * GiB],
    ['2gb', 'MiB', 2 * GiB],
    ['1.5G', 'MiB', 1.5 * GiB],
    ['.5G', 'MiB', 0.5 * GiB],
    ['100K', 'MiB', 100 * 1024],
    ['100KiB', 'MiB', 100 * 1024],
    ['4096B', 'MiB', 4096],
    ['4096b', 'MiB', 4096],
    ['1T', 'MiB', 1024 * GiB],
    ['1P', 'MiB', 1024 ** 5],
    ['2X', 'MiB', undefined],
    ['2 G B', 'MiB', undefined],
    ['G', 'MiB', undefined],
    ['-1G', 'MiB', undefined],
    ['', 'MiB', undefined],
    [-1, 'MiB', undefined],
    [Infinity, 'MiB', undefined],
  ])('%s (bare %s) → %s bytes', (value, bare, bytes) => {
    expect(parseSize(value, bare)).toBe(bytes);
  });

  it('formatSize', () => {
    expect(formatSize(64 * MiB)).toBe('64 MiB');
    expect(formatSize(1.5 * GiB)).toBe('1.5 GiB');
    expect(formatSize(512)).toBe('512 bytes');
  });
});

describe('did you mean', () => {
  it('edit distance counts a swap of neighbours as one edit', () => {
    expect(editDistance('memory', 'memory')).toBe(0);
    expect(editDistance('memroy', 'memory')).toBe(1);
    expect(editDistance('cpu', 'cpus')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('suggests the closest candidate within reach, or nothing', () => {
    const keys = ['memory', 'cpus', 'disk_size', 'synced_folders', 'forwarded_ports', 'box'];
    expect(didYouMean('memroy', keys)).toBe('memory');
    expect(didYouMean('DiskSize', keys)).toBe('disk_size');
    expect(didYouMean('synced-folders', keys)).toBe('synced_folders');
    expect(didYouMean('forward_ports', keys)).toBe('forwarded_ports');
    expect(didYouMean('bx', keys)).toBe('box');
    expect(didYouMean('colour', keys)).toBeUndefined();
    expect(didYouMean('a', keys)).toBeUndefined();
  });
});
