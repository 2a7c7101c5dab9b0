/**
 * Step 3: the root filesystem image. `mkfs.ext4 -d <rootfs>` fills a new ext4 image
 * from the directory without mounting anything. The image is made at the size of its
 * content plus slack, labelled `root`, with a UUID fixed by the build so that
 * extlinux.conf and /etc/fstab can name it; once the disk layout is known it is grown
 * offline (resize2fs on the image file, a fraction of a second) to fill its partition,
 * so that a machine whose disk is the box's size has nothing to grow at first boot.
 * A machine with a larger disk grows partition and filesystem at boot (the recipe's job:
 * debian-12's vmenv-growroot).
 */
import { randomUUID } from 'node:crypto';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';
import { alignUp, formatSize, MiB } from './size.js';

export interface TreeUsage {
  /** Bytes of disk blocks the tree uses (du). */
  bytes: number;
  /** Files, directories and links in the tree. */
  inodes: number;
}

export interface Ext4Plan {
  sizeBytes: number;
  inodes: number;
}

/** Filesystem metadata aside from inode tables: journal (64 MiB at most for these sizes), bitmaps, descriptors. */
const FIXED_OVERHEAD = 96 * MiB;
/** Free space left in the image, at least. */
const MIN_SLACK = 128 * MiB;
const INODE_BYTES = 256;

/**
 * How big the ext4 image for a tree must be, and how many inodes it needs: the content,
 * a fifth of it again (at least 128 MiB) free, the journal and metadata; twice the inodes
 * in use (at least 16384) so the guest can add files before it grows the filesystem.
 * Rounded up to 4 MiB. Pure.
 */
export function planExt4(usage: TreeUsage): Ext4Plan {
  const inodes = alignUp(Math.max(16_384, usage.inodes * 2), 1024);
  const slack = Math.max(MIN_SLACK, Math.ceil(usage.bytes / 5));
  const sizeBytes = alignUp(usage.bytes + slack + FIXED_OVERHEAD + inodes * INODE_BYTES, 4 * MiB);
  return { sizeBytes, inodes };
}

/** mkfs.ext4's arguments for a plan. Pure. */
export function mkfsExt4Args(plan: Ext4Plan, opts: { image: string; sourceDir: string; uuid: string; label?: string }): string[] {
  return [
    '-q',
    '-F',
    '-t',
    'ext4',
    '-L',
    opts.label ?? 'root',
    '-U',
    opts.uuid,
    '-N',
    String(plan.inodes),
    // mkfs picks 1 KiB blocks for small images, and SYSLINUX then fails to load the
    // kernel ("I/O error"): 4 KiB blocks boot, whatever the size.
    '-b',
    '4096',
    // 1% reserved for root (not 5%): a box disk is small and grows with the machine.
    '-m',
    '1',
    '-E',
    'lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0',
    '-d',
    opts.sourceDir,
    opts.image,
    `${Math.floor(plan.sizeBytes / 1024)}k`,
  ];
}

/** How much a directory tree uses (du -sx, in bytes; inode count). */
export async function measureTree(dir: string, signal?: AbortSignal): Promise<TreeUsage> {
  const opts = { what: 'measuring the root filesystem', ...(signal ? { signal } : {}) };
  const bytes = await run('du', ['-sx', '--block-size=1', dir], opts);
  const inodes = await run('du', ['-sx', '--inodes', dir], opts);
  return { bytes: Number.parseInt(bytes.stdout, 10), inodes: Number.parseInt(inodes.stdout, 10) };
}

export function newFsUuid(): string {
  return randomUUID();
}

/** /etc/fstab for a box whose root is this filesystem. */
export function renderFstab(uuid: string, fsType = 'ext4'): string {
  return [
    '# /etc/fstab: written by vmenv box build',
    '# <file system>  <mount point>  <type>  <options>  <dump>  <pass>',
    `UUID=${uuid}  /  ${fsType}  errors=remount-ro  0  1`,
    '',
  ].join('\n');
}

export async function writeFstab(rootfs: string, uuid: string): Promise<void> {
  await writeFile(join(rootfs, 'etc', 'fstab'), renderFstab(uuid));
}

/** Grows the filesystem image (a file) to fill `bytes`: truncate, then resize2fs offline. */
export async function growExt4Image(image: string, bytes: number, signal?: AbortSignal): Promise<void> {
  await truncate(image, bytes);
  const opts = { what: 'growing the filesystem to its partition', ...(signal ? { signal } : {}) };
  // resize2fs wants a freshly checked filesystem; -f skips nothing else.
  await run('e2fsck', ['-f', '-y', image], opts);
  await run('resize2fs', ['-f', image], opts);
}

export interface MadeFilesystem extends Ext4Plan {
  uuid: string;
  contentBytes: number;
}

/** Makes the ext4 image of the rootfs directory. */
export async function makeExt4Image(opts: { rootfs: string; image: string; uuid: string; signal?: AbortSignal; onStatus?: (text: string) => void }): Promise<MadeFilesystem> {
  const usage = await measureTree(opts.rootfs, opts.signal);
  const plan = planExt4(usage);
  opts.onStatus?.(`${formatSize(usage.bytes)} of files, image ${formatSize(plan.sizeBytes)}`);
  await run('mkfs.ext4', mkfsExt4Args(plan, { image: opts.image, sourceDir: opts.rootfs, uuid: opts.uuid }), {
    what: 'making the ext4 filesystem',
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { ...plan, uuid: opts.uuid, contentBytes: usage.bytes };
}
