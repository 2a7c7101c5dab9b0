/**
 * The build's temporary directory: created under $TMPDIR, removed after the build —
 * on success, on failure and on Ctrl-C — but only once nothing is mounted below it,
 * and never across a file-system boundary.
 */
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { run } from './exec.js';
import { unmountAllUnder } from './mounts.js';

export interface WorkDir {
  path: string;
  /** rootfs/ (mmdebstrap's target), mnt/ (loop mounts), and the image files. */
  rootfs: string;
  mnt: string;
  fsImage: string;
  rawDisk: string;
  qcow2: string;
}

export async function createWorkDir(name: string, base = tmpdir()): Promise<WorkDir> {
  const path = await mkdtemp(join(base, `vmenv-build-${name}-`));
  // apt downloads as its unprivileged _apt user: it must reach the chroot's folders.
  await chmod(path, 0o755);
  return {
    path,
    rootfs: join(path, 'rootfs'),
    mnt: join(path, 'mnt'),
    fsImage: join(path, 'root.ext4'),
    rawDisk: join(path, 'disk.raw'),
    qcow2: join(path, 'disk.qcow2'),
  };
}

/** Unmounts what is left below the work dir, then deletes it. */
export async function removeWorkDir(dir: string): Promise<void> {
  const left = await unmountAllUnder(dir);
  if (left.length > 0) {
    throw new UserError(`The build left ${left.join(', ')} mounted; ${dir} was not deleted.`, {
      hint: `Unmount it (umount -R ${left[left.length - 1]}) and delete ${dir}.`,
    });
  }
  // --one-file-system: even if a mount appeared meanwhile, never descend into it.
  await run('rm', ['-rf', '--one-file-system', '--', dir], { what: `removing ${dir}` });
}
