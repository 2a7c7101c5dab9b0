/**
 * Before a build starts: it needs root (mmdebstrap's root mode, and a loop mount to
 * install extlinux) and the host tools. Both are checked at once, before any work, so
 * that a build never fails halfway for want of them.
 */
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { ExitCode, UserError } from '../errors.js';
import { TOOL_PACKAGES } from './exec.js';
import type { OutputFormat } from './recipe.js';

/** The error for a build run without root. Pure. */
export function needsRootError(argv: readonly string[]): UserError {
  const again = ['vmenv', ...argv].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
  return new UserError('Building a box needs root: mmdebstrap installs the packages in root mode and the bootloader is installed through a loop mount.', {
    exitCode: ExitCode.usage,
    hint: `Run it with sudo: sudo ${again}`,
  });
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The tools a build runs. Pure. */
export function requiredTools(formats: readonly OutputFormat[]): string[] {
  const tools = ['mmdebstrap', 'mkfs.ext4', 'e2fsck', 'resize2fs', 'sfdisk', 'extlinux', 'qemu-img', 'mount', 'umount', 'du', 'dd'];
  if (formats.includes('tar')) tools.push('tar');
  return tools;
}

async function onPath(tool: string, path = process.env['PATH'] ?? ''): Promise<boolean> {
  // root's tools live in sbin, which sudo's PATH may lack.
  const dirs = [...path.split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    try {
      await access(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** Throws one error naming every missing tool and the packages that provide them. */
export async function checkTools(tools: readonly string[]): Promise<void> {
  const missing: string[] = [];
  for (const tool of tools) if (!(await onPath(tool))) missing.push(tool);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => TOOL_PACKAGES[t] ?? t))];
  throw new UserError(`Building a box needs ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not installed.`, {
    hint: `Install ${packages.length === 1 ? 'it' : 'them'}: sudo apt-get install ${packages.join(' ')}`,
  });
}

/** PATH with the sbin folders, for the tools the build runs. */
export function buildPath(path = process.env['PATH'] ?? ''): string {
  const parts = path.split(delimiter).filter(Boolean);
  for (const dir of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!parts.includes(dir)) parts.push(dir);
  return parts.join(delimiter);
}
