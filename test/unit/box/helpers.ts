/** Helpers for the box tests: real qcow2 images, hand-made tar archives, temp folders. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

export function tempDir(prefix = 'vmenv-box-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** A real qcow2 image made by qemu-img. */
export function makeQcow2(path: string, size = '64M'): string {
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, size]);
  return path;
}

export interface TarEntry {
  name: string;
  type?: tar.Header['type'];
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
}

/** Packs entries into a tar (gzip optional) in memory. */
export async function makeTar(entries: TarEntry[], options: { gzip?: boolean } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
    await new Promise<void>((resolve, reject) => {
      const header: Partial<tar.Header> & { name: string } = {
        name: e.name,
        type: e.type ?? 'file',
        mode: e.mode ?? 0o644,
        mtime: new Date(0),
        ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
        ...(e.type === 'character-device' || e.type === 'block-device' ? { devmajor: 1, devminor: 3 } : {}),
      };
      if ((e.type ?? 'file') === 'file') {
        pack.entry({ ...header, size: data.length }, data, (err) => (err ? reject(err) : resolve()));
      } else {
        pack.entry({ ...header, size: 0 }, (err) => (err ? reject(err) : resolve()));
      }
    });
  }
  pack.finalize();
  await done;
  const tarball = Buffer.concat(chunks);
  return options.gzip === true ? gzipSync(tarball) : tarball;
}

/** Offsets of the 512-byte headers in a plain tar, by entry name. */
export function headerOffsets(tarball: Buffer): Map<string, number> {
  const out = new Map<string, number>();
  let off = 0;
  while (off + 512 <= tarball.length) {
    const h = tarball.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
    out.set(name, off);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** Rewrites the size field of the header at `offset` and fixes its checksum. */
export function patchTarSize(tarball: Buffer, offset: number, size: number): Buffer {
  const b = Buffer.from(tarball);
  b.write(size.toString(8).padStart(11, '0') + '\0', offset + 124, 12, 'ascii');
  b.fill(0x20, offset + 148, offset + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[offset + i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', offset + 148, 8, 'ascii');
  return b;
}

/** Files and folders left under a folder (names relative to it). */
export function leftovers(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true }).map(String).sort();
  } catch {
    return [];
  }
}

export const libvirtMetadata = JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 });
