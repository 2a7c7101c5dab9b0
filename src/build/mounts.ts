/**
 * Mounts a build makes or leaves: the loop mount of the root filesystem image (to
 * install extlinux) and, if mmdebstrap was killed, its /proc, /sys and /dev mounts inside
 * the rootfs. Nothing under a build directory is deleted while anything is mounted
 * there: the build directory's rootfs/dev may be a bind mount of the host's /dev.
 */
import { readFile } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { run } from './exec.js';

/** Decodes the octal escapes of /proc/self/mountinfo paths (`\040` for a space). */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points listed in /proc/self/mountinfo text (field 5). Pure. */
export function parseMountPoints(mountinfo: string): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    if (fields.length >= 5 && fields[4] !== undefined) out.push(unescapeMountPath(fields[4]));
  }
  return out;
}

/** Mount points at or below dir, deepest first. Pure. */
export function mountsUnder(mountPoints: readonly string[], dir: string): string[] {
  const base = resolve(dir);
  return [...new Set(mountPoints.filter((m) => m === base || m.startsWith(base + sep)))].sort((a, b) => b.length - a.length);
}

export async function currentMountsUnder(dir: string): Promise<string[]> {
  return mountsUnder(parseMountPoints(await readFile('/proc/self/mountinfo', 'utf8')), dir);
}

/** Unmounts everything at or below dir (deepest first; lazily when busy). Returns what is still mounted. */
export async function unmountAllUnder(dir: string): Promise<string[]> {
  for (let round = 0; round < 3; round++) {
    const mounts = await currentMountsUnder(dir);
    if (mounts.length === 0) return [];
    for (const m of mounts) {
      try {
        await run('umount', [m], { what: `unmounting ${m}` });
      } catch {
        try {
          await run('umount', ['-l', m], { what: `unmounting ${m}` });
        } catch {
          // reported below if it stays mounted
        }
      }
    }
  }
  return currentMountsUnder(dir);
}

/** Mounts an image file (through a loop device) and runs fn; always unmounts. */
export async function withLoopMount<T>(image: string, mountPoint: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  await run('mount', ['-o', 'loop', image, mountPoint], { what: 'mounting the root filesystem image', ...(signal ? { signal } : {}) });
  try {
    return await fn();
  } finally {
    const left = await unmountAllUnder(mountPoint);
    if (left.length > 0) throw new Error(`could not unmount ${left.join(', ')}`);
  }
}
