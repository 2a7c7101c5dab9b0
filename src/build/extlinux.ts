/**
 * Step 4: the bootloader. SeaBIOS loads the MBR boot code (syslinux's mbr.bin), which
 * boots the active partition; its boot sector (written by `extlinux --install`) loads
 * ldlinux.sys from /boot/extlinux, which reads extlinux.conf and starts the recipe's
 * kernel and initrd from the root filesystem with root=UUID=… — a disk that boots by
 * itself, with no kernel handed over from the host.
 */
import { access, lstat, mkdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { run } from './exec.js';
import { withLoopMount } from './mounts.js';

export const EXTLINUX_DIR = 'boot/extlinux';

export interface ExtlinuxConfig {
  /** Paths inside the root filesystem, e.g. boot/vmlinuz (a leading / is added). */
  kernel: string;
  initrd: string;
  /** The recipe's kernel arguments (root= is added). */
  cmdline: string;
  rootUuid: string;
  /** Label of the one entry. */
  label?: string;
}

/** extlinux.conf: boot the one entry at once, and talk on the serial port too. Pure. */
export function renderExtlinuxConf(config: ExtlinuxConfig): string {
  const abs = (p: string): string => `/${p.replace(/^\/+/, '')}`;
  const label = config.label ?? 'linux';
  const append = ['root=UUID=' + config.rootUuid, 'ro', ...config.cmdline.split(/\s+/).filter(Boolean)].join(' ');
  return [
    '# written by vmenv box build',
    'SERIAL 0 115200',
    `DEFAULT ${label}`,
    'PROMPT 0',
    'TIMEOUT 0',
    '',
    `LABEL ${label}`,
    `  KERNEL ${abs(config.kernel)}`,
    `  INITRD ${abs(config.initrd)}`,
    `  APPEND ${append}`,
    '',
  ].join('\n');
}

export async function writeExtlinuxConf(rootfs: string, config: ExtlinuxConfig): Promise<string> {
  const dir = join(rootfs, EXTLINUX_DIR);
  await mkdir(dir, { recursive: true });
  const text = renderExtlinuxConf(config);
  await writeFile(join(dir, 'extlinux.conf'), text);
  return text;
}

/** Where syslinux's MBR boot code is on Debian (extlinux, then syslinux-common). */
export const MBR_BIN_CANDIDATES = ['/usr/lib/EXTLINUX/mbr.bin', '/usr/lib/syslinux/mbr/mbr.bin'];

export async function findMbrBin(): Promise<string> {
  for (const path of MBR_BIN_CANDIDATES) {
    try {
      await access(path);
      return path;
    } catch {
      // next
    }
  }
  throw new UserError("syslinux's MBR boot code (mbr.bin) is missing.", { hint: 'Install it: sudo apt-get install extlinux syslinux-common' });
}

/**
 * Installs extlinux's boot sector and ldlinux.sys into the filesystem image. extlinux
 * needs the filesystem mounted: the image is loop-mounted for this step only.
 */
export async function installExtlinux(image: string, mountPoint: string, signal?: AbortSignal): Promise<void> {
  await mkdir(mountPoint, { recursive: true });
  await withLoopMount(
    image,
    mountPoint,
    async () => {
      await run('extlinux', ['--install', join(mountPoint, EXTLINUX_DIR)], { what: 'installing extlinux', ...(signal ? { signal } : {}) });
    },
    signal,
  );
}

/**
 * Resolves a path inside a root filesystem directory the way the booted system will:
 * symbolic links (absolute ones relative to the rootfs) are followed, never leaving it.
 * Returns the real path on the host, or undefined when it does not lead to a file.
 */
export async function resolveInRoot(rootfs: string, path: string, maxLinks = 40): Promise<string | undefined> {
  let parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let done: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = join(rootfs, ...done, part);
    let st;
    try {
      st = await lstat(host);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++links > maxLinks) return undefined;
      const target = await readlink(host);
      if (target.startsWith('/')) done = [];
      parts = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...parts];
      continue;
    }
    done.push(part);
    if (parts.length > 0 && !st.isDirectory()) return undefined;
    if (parts.length === 0 && !st.isFile()) return undefined;
  }
  return done.length === 0 ? undefined : join(rootfs, ...done);
}

/** Checks that the recipe's kernel and initrd are in the rootfs. */
export async function checkBootFiles(rootfs: string, boot: { kernel: string; initrd: string }): Promise<void> {
  const missing: string[] = [];
  for (const key of ['kernel', 'initrd'] as const) {
    if ((await resolveInRoot(rootfs, boot[key])) === undefined) missing.push(`boot.${key} (/${boot[key]})`);
  }
  if (missing.length === 0) return;
  throw new UserError(`The root filesystem has no ${missing.join(' and no ')} after the customize hook.`, {
    hint: "The recipe must install a kernel (e.g. linux-image-amd64) and an initramfs generator, and boot.kernel/boot.initrd must name them (Debian: 'link_in_boot = yes' in /etc/kernel-img.conf keeps boot/vmlinuz and boot/initrd.img pointing at the current kernel).",
  });
}
