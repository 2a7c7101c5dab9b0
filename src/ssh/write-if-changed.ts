/**
 * Files vmenv writes again at every `vmenv ssh` (a machine's ssh_config and known_hosts)
 * are left alone when they already hold what would be written: an atomic write costs two
 * fsyncs, and the content only changes when the machine's address, port or key does.
 */
import { open } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic.js';

/** Writes `text` to `path` atomically with `mode`, unless the file already holds exactly that; returns whether it wrote. */
export async function writeFileAtomicIfChanged(path: string, text: string, mode: number): Promise<boolean> {
  if (await fileHolds(path, text, mode)) return false;
  await writeFileAtomic(path, text, mode);
  return true;
}

/** Whether `path` is a regular file with exactly `text` and permission bits `mode` (false when it cannot be read). */
export async function fileHolds(path: string, text: string, mode: number): Promise<boolean> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (fh === undefined) return false;
  try {
    const st = await fh.stat();
    // A changed mode is mended by writing again (ssh refuses a config others can write).
    if (!st.isFile() || (st.mode & 0o777) !== mode || st.size !== Buffer.byteLength(text)) return false;
    return (await fh.readFile('utf8')) === text;
  } catch {
    return false;
  } finally {
    await fh.close();
  }
}
