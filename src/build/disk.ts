/**
 * Step 5: the disk. A sparse raw image of the recipe's disk size gets the partition table
 * (sfdisk on the image file, no loop device), syslinux's MBR boot code in its first 440
 * bytes, and the filesystem image copied in at the partition's offset (dd, keeping holes);
 * then qemu-img converts it to a compressed qcow2 for the box.
 */
import { open, truncate } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { run } from './exec.js';
import { MBR_BOOT_CODE_BYTES, sfdiskScript, type DiskLayout } from './partition.js';
import { MiB } from './size.js';

export type Qcow2Compression = 'zlib' | 'zstd';

/** dd's arguments to place the filesystem image at the partition's offset. Pure. */
export function ddArgs(fsImage: string, rawDisk: string, layout: DiskLayout): string[] {
  if (layout.offsetBytes % MiB !== 0) throw new Error('partition offset must be a whole MiB');
  return [`if=${fsImage}`, `of=${rawDisk}`, 'bs=1M', `seek=${layout.offsetBytes / MiB}`, 'conv=notrunc,sparse', 'status=none'];
}

/** qemu-img's arguments for the compressed qcow2. Pure. */
export function qemuImgConvertArgs(rawDisk: string, qcow2: string, compression: Qcow2Compression = 'zlib'): string[] {
  return [
    'convert',
    '-f',
    'raw',
    '-O',
    'qcow2',
    '-c',
    // Out-of-order writes with several coroutines: compression runs on all cores.
    '-W',
    '-m',
    '8',
    ...(compression === 'zstd' ? ['-o', 'compression_type=zstd'] : []),
    rawDisk,
    qcow2,
  ];
}

export async function writeMbrBootCode(rawDisk: string, mbrBin: string): Promise<void> {
  const code = await readFile(mbrBin);
  if (code.length < MBR_BOOT_CODE_BYTES - 100 || code.length > MBR_BOOT_CODE_BYTES) {
    throw new Error(`${mbrBin} is ${code.length} bytes; syslinux's mbr.bin is at most ${MBR_BOOT_CODE_BYTES}`);
  }
  const fh = await open(rawDisk, 'r+');
  try {
    await fh.write(code, 0, code.length, 0);
  } finally {
    await fh.close();
  }
}

/** Builds the raw disk: sparse file, partition table, MBR boot code, filesystem at its offset. */
export async function assembleRawDisk(opts: { rawDisk: string; fsImage: string; layout: DiskLayout; mbrBin: string; signal?: AbortSignal }): Promise<void> {
  const signal = opts.signal ? { signal: opts.signal } : {};
  const fh = await open(opts.rawDisk, 'w');
  await fh.close();
  await truncate(opts.rawDisk, opts.layout.diskBytes);
  await run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', opts.rawDisk], { input: sfdiskScript(opts.layout), what: 'writing the partition table', ...signal });
  await writeMbrBootCode(opts.rawDisk, opts.mbrBin);
  await run('dd', ddArgs(opts.fsImage, opts.rawDisk, opts.layout), { what: 'copying the filesystem into the disk image', ...signal });
}

export async function convertToQcow2(opts: { rawDisk: string; qcow2: string; compression?: Qcow2Compression; signal?: AbortSignal }): Promise<void> {
  await run('qemu-img', qemuImgConvertArgs(opts.rawDisk, opts.qcow2, opts.compression), {
    what: 'converting the disk to qcow2',
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}
