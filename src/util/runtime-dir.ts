import { lstat, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The per-user folder in /tmp for vmenv's unix sockets (`/tmp/vmenv-<uid>`): short
 * enough for the 108 bytes of a socket path whatever the home folder, 0700.
 */
export function runtimeDirPath(): string {
  return join(tmpdir(), `vmenv-${process.getuid?.() ?? 'user'}`);
}

/**
 * Creates the runtime folder if needed and returns it, or undefined when the path is
 * taken by something this user does not own alone (another user's folder, a symlink,
 * a folder others may enter): sockets there could be someone else's.
 */
export async function ensureRuntimeDir(): Promise<string | undefined> {
  const dir = runtimeDirPath();
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch(() => undefined);
  try {
    const s = await lstat(dir);
    const uid = process.getuid?.();
    if (!s.isDirectory() || (uid !== undefined && s.uid !== uid) || (s.mode & 0o077) !== 0) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}
