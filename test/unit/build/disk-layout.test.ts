import { describe, expect, it } from 'vitest';
import { ddArgs, qemuImgConvertArgs } from '../../../src/build/disk.js';
import { diskIdFromUuid, LayoutError, MBR_MAX_SECTORS, planDisk, sfdiskScript } from '../../../src/build/partition.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('planDisk', () => {
  it('puts one partition at 1 MiB (sector 2048) running to the end of the disk', () => {
    const layout = planDisk(10 * GiB, 1 * GiB, 'deadbeef');
    expect(layout).toEqual({
      diskBytes: 10 * GiB,
      startSector: 2048,
      sizeSectors: (10 * GiB) / 512 - 2048,
      offsetBytes: MiB,
      partitionBytes: 10 * GiB - MiB,
      diskId: 'deadbeef',
    });
    expect(layout.offsetBytes + layout.partitionBytes).toBe(layout.diskBytes);
  });

  it('rounds the disk up to whole MiB', () => {
    const layout = planDisk(100 * MiB + 1, 10 * MiB, '00000001');
    expect(layout.diskBytes).toBe(101 * MiB);
    expect(layout.sizeSectors).toBe(100 * 2048);
  });

  it('refuses a filesystem bigger than the partition, a disk with no room, and disks past 2 TiB', () => {
    expect(() => planDisk(1 * GiB, 1 * GiB, 'deadbeef')).toThrow(LayoutError);
    expect(() => planDisk(1 * GiB, 1 * GiB - MiB, 'deadbeef')).not.toThrow();
    expect(() => planDisk(MiB, 0, 'deadbeef')).toThrow(/no room/);
    expect(() => planDisk(2 * 1024 * GiB, MiB, 'deadbeef')).toThrow(/2 TiB/);
    const biggest = planDisk(2 * 1024 * GiB - MiB, MiB, 'deadbeef');
    expect(biggest.startSector + biggest.sizeSectors).toBeLessThanOrEqual(MBR_MAX_SECTORS);
    expect(() => planDisk(0, 0, 'deadbeef')).toThrow(/bad disk size/);
    expect(() => planDisk(GiB, 0, 'xyz')).toThrow(/bad disk id/);
  });

  it('writes the sfdisk script: dos label, its id, one bootable Linux partition', () => {
    expect(sfdiskScript(planDisk(2 * GiB, MiB, '12ab34cd'))).toBe(
      ['label: dos', 'label-id: 0x12ab34cd', 'unit: sectors', '', 'start=2048, size=4192256, type=83, bootable', ''].join('\n'),
    );
  });

  it('derives the disk id from the filesystem UUID, never zero', () => {
    expect(diskIdFromUuid('3B9E24ED-0a11-4bb6-95f9-d82c9e1f550a')).toBe('3b9e24ed');
    expect(diskIdFromUuid('00000000-0a11-4bb6-95f9-d82c9e1f550a')).toBe('0000000f');
  });
});

describe('disk assembly commands', () => {
  it('copies the filesystem in at the partition offset, keeping holes and the partition table', () => {
    const layout = planDisk(4 * GiB, GiB, 'deadbeef');
    expect(ddArgs('/w/root.ext4', '/w/disk.raw', layout)).toEqual(['if=/w/root.ext4', 'of=/w/disk.raw', 'bs=1M', 'seek=1', 'conv=notrunc,sparse', 'status=none']);
    expect(() => ddArgs('a', 'b', { ...layout, offsetBytes: 512 })).toThrow(/whole MiB/);
  });

  it('converts to a compressed qcow2 (zlib by default, zstd on request)', () => {
    expect(qemuImgConvertArgs('/w/disk.raw', '/w/disk.qcow2')).toEqual(['convert', '-f', 'raw', '-O', 'qcow2', '-c', '-W', '-m', '8', '/w/disk.raw', '/w/disk.qcow2']);
    expect(qemuImgConvertArgs('a', 'b', 'zstd')).toContain('compression_type=zstd');
  });
});
