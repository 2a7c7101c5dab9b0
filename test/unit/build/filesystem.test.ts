import { describe, expect, it } from 'vitest';
import { mkfsExt4Args, planExt4, renderFstab } from '../../../src/build/filesystem.js';

const MiB = 1024 * 1024;

describe('planExt4', () => {
  it('sizes the image to the content plus a fifth (at least 128 MiB), metadata and inode tables, in 4 MiB steps', () => {
    const plan = planExt4({ bytes: 900 * MiB, inodes: 30_000 });
    expect(plan.inodes).toBe(60_416); // 2x, rounded up to 1024
    expect(plan.sizeBytes % (4 * MiB)).toBe(0);
    expect(plan.sizeBytes).toBeGreaterThanOrEqual(900 * MiB + 180 * MiB + 96 * MiB + 60_416 * 256);
    expect(plan.sizeBytes).toBeLessThan(900 * MiB + 180 * MiB + 96 * MiB + 60_416 * 256 + 4 * MiB);
  });

  it('leaves at least 128 MiB and 16384 inodes for a small tree', () => {
    const plan = planExt4({ bytes: 10 * MiB, inodes: 100 });
    expect(plan.inodes).toBe(16_384);
    expect(plan.sizeBytes).toBe(Math.ceil((10 * MiB + 128 * MiB + 96 * MiB + 16_384 * 256) / (4 * MiB)) * 4 * MiB);
  });

  it('grows with the content', () => {
    expect(planExt4({ bytes: 2000 * MiB, inodes: 1000 }).sizeBytes).toBeGreaterThan(planExt4({ bytes: 1000 * MiB, inodes: 1000 }).sizeBytes);
  });
});

describe('mkfs.ext4 arguments and fstab', () => {
  it('fills the image from the directory, labelled root, with the fixed UUID, 4 KiB blocks and size in KiB', () => {
    const args = mkfsExt4Args({ sizeBytes: 1024 * MiB, inodes: 65_536 }, { image: '/w/root.ext4', sourceDir: '/w/rootfs', uuid: 'u-u-i-d' });
    expect(args).toEqual([
      '-q', '-F', '-t', 'ext4', '-L', 'root', '-U', 'u-u-i-d', '-N', '65536', '-b', '4096', '-m', '1',
      '-E', 'lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0',
      '-d', '/w/rootfs', '/w/root.ext4', '1048576k',
    ]);
  });

  it('mounts the root by UUID', () => {
    expect(renderFstab('abcd')).toContain('UUID=abcd  /  ext4  errors=remount-ro  0  1\n');
  });
});
