/**
 * Step 5's arithmetic: an MBR ("dos") partition table with one bootable Linux
 * partition, starting at 1 MiB (sector 2048, the usual alignment) and running to the end
 * of the disk. Pure.
 */
import { MiB } from './size.js';

export const SECTOR = 512;
/** The first partition starts here: 1 MiB. */
export const PARTITION_START_BYTES = MiB;
/** The most sectors an MBR partition entry can address (32-bit LBA). */
export const MBR_MAX_SECTORS = 2 ** 32 - 1;
/** The part of the boot sector that holds boot code (the rest is the partition table). */
export const MBR_BOOT_CODE_BYTES = 440;

export interface DiskLayout {
  /** Total disk size in bytes (a whole number of MiB). */
  diskBytes: number;
  /** First sector of the partition, and its length in sectors. */
  startSector: number;
  sizeSectors: number;
  /** Where the partition begins in the raw image, in bytes. */
  offsetBytes: number;
  /** The partition's size in bytes. */
  partitionBytes: number;
  /** MBR disk identifier (hex, 8 digits). */
  diskId: string;
}

export class LayoutError extends Error {
  override name = 'LayoutError';
}

/** Rounds the disk size up to whole MiB and lays the partition out on it. */
export function planDisk(diskBytes: number, fsBytes: number, diskId: string): DiskLayout {
  if (!Number.isSafeInteger(diskBytes) || diskBytes <= 0) throw new LayoutError(`bad disk size ${diskBytes}`);
  if (!/^[0-9a-f]{8}$/.test(diskId)) throw new LayoutError(`bad disk id ${diskId}`);
  const total = Math.ceil(diskBytes / MiB) * MiB;
  const startSector = PARTITION_START_BYTES / SECTOR;
  const sizeSectors = total / SECTOR - startSector;
  if (sizeSectors <= 0) throw new LayoutError(`a ${total}-byte disk has no room for a partition after the first MiB`);
  if (startSector + sizeSectors > MBR_MAX_SECTORS) throw new LayoutError('the disk is larger than an MBR partition table can address (2 TiB)');
  const partitionBytes = sizeSectors * SECTOR;
  if (fsBytes > partitionBytes) {
    throw new LayoutError(`the root filesystem (${fsBytes} bytes) does not fit in the partition (${partitionBytes} bytes)`);
  }
  return { diskBytes: total, startSector, sizeSectors, offsetBytes: startSector * SECTOR, partitionBytes, diskId };
}

/** The sfdisk script for a layout. */
export function sfdiskScript(layout: DiskLayout): string {
  return [
    'label: dos',
    `label-id: 0x${layout.diskId}`,
    'unit: sectors',
    '',
    `start=${layout.startSector}, size=${layout.sizeSectors}, type=83, bootable`,
    '',
  ].join('\n');
}

/** A disk identifier derived from the filesystem UUID (so one build's ids agree). */
export function diskIdFromUuid(uuid: string): string {
  const hex = uuid.replace(/-/g, '').toLowerCase();
  const id = hex.slice(0, 8);
  return id === '00000000' ? '0000000f' : id;
}
