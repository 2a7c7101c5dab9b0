import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boxVolumeName, ensureBoxVolumes, type BoxToUpload, type UploadRecord, type WithLock } from '../../src/box/upload.js';
import { openLibvirt, type LibvirtClient, type StoragePoolRef } from '../../src/libvirt/index.js';
import { volumeXml } from '../../src/libvirt/xml/index.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'vmenv-upload-'));
const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

let client: LibvirtClient;
let pool: StoragePoolRef;
let box: BoxToUpload;
const ours = new Set<string>();

/** A lock inside this process: what the box store's file lock does across processes. */
function memoryLock(): WithLock {
  const tails = new Map<string, Promise<unknown>>();
  return async (key, fn) => {
    const prev = tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    tails.set(key, next.catch(() => undefined));
    return next;
  };
}

async function volumeNames(): Promise<string[]> {
  await client.storagePoolRefresh(pool);
  return (await client.storagePoolListAllVolumes(pool)).map((v) => v.name).filter((n) => ours.has(n));
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  pool = await client.storagePoolLookupByName(host.pool);
  const raw = join(dir, 'disk.raw');
  const image = join(dir, 'disk.qcow2');
  execFileSync('sh', ['-c', `head -c ${24 * MiB} /dev/urandom > '${raw}' && truncate -s ${128 * MiB} '${raw}'`]);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
  box = { name: `vmenv-it/upload-${process.pid}`, version: '1.0.0', disks: [{ path: image, virtualSize: BigInt(128 * MiB) }] };
  ours.add(await boxVolumeName(box, 0, image));
});

afterAll(async () => {
  for (const name of ours) {
    const vol = await client.storageVolLookupByName(pool, name).catch(() => undefined);
    if (vol) await client.storageVolDelete(vol);
  }
  await client.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ensureBoxVolumes', () => {
  it('uploads the qcow2 file as it is, once', async () => {
    const records: UploadRecord[] = [];
    const [vol] = await ensureBoxVolumes(client, host.pool, box, { onUploaded: async (r) => void records.push(r) });
    const path = await client.storageVolGetPath(vol!);
    expect(sha(path)).toBe(sha(box.disks[0]!.path));
    // Not unsparsified: the volume file is the qcow2 file, far smaller than the virtual size.
    expect(statSync(path).size).toBe(statSync(box.disks[0]!.path).size);
    expect(statSync(path).size).toBeLessThan(64 * MiB);
    expect((await client.storageVolGetInfo(vol!)).capacity).toBe(BigInt(128 * MiB));
    expect(records).toEqual([{ uri: client.uri, pool: host.pool, volume: vol!.name }]);

    const again: UploadRecord[] = [];
    const [same] = await ensureBoxVolumes(client, host.pool, box, { onUploaded: async (r) => void again.push(r) });
    expect(same!.key).toBe(vol!.key);
    expect(again).toEqual([]);
  });

  it('replaces a half-uploaded volume instead of reusing it', async () => {
    const [vol] = await ensureBoxVolumes(client, host.pool, box);
    const name = vol!.name;
    await client.storageVolDelete(vol!);
    const half = join(dir, 'half.qcow2');
    execFileSync('sh', ['-c', `head -c ${Math.floor(statSync(box.disks[0]!.path).size / 2)} '${box.disks[0]!.path}' > '${half}'`]);
    const partial = await client.storageVolCreateXml(pool, volumeXml({ name, capacityBytes: 128 * MiB }));
    await client.storageVolUploadFile(partial, half);

    const records: UploadRecord[] = [];
    const [fresh] = await ensureBoxVolumes(client, host.pool, box, { onUploaded: async (r) => void records.push(r) });
    expect(records).toHaveLength(1);
    expect(sha(await client.storageVolGetPath(fresh!))).toBe(sha(box.disks[0]!.path));
  });

  it('leaves no volume behind when the upload is cancelled', async () => {
    const other: BoxToUpload = { ...box, version: '2.0.0' };
    const name = await boxVolumeName(other, 0, other.disks[0]!.path);
    ours.add(name);
    const ac = new AbortController();
    const err = await ensureBoxVolumes(client, host.pool, other, {
      signal: ac.signal,
      onProgress: (_d, sent) => {
        if (sent > 2 * MiB) ac.abort(new Error('cancelled by the test'));
      },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('cancelled by the test');
    expect(await volumeNames()).not.toContain(name);
  });

  it('uploads once when several callers want the same box at the same time', async () => {
    const other: BoxToUpload = { ...box, version: '3.0.0' };
    ours.add(await boxVolumeName(other, 0, other.disks[0]!.path));
    const withLock = memoryLock();
    const records: UploadRecord[] = [];
    const results = await Promise.all(
      Array.from({ length: 4 }, () => ensureBoxVolumes(client, host.pool, other, { withLock, onUploaded: async (r) => void records.push(r) })),
    );
    expect(records).toHaveLength(1);
    expect(new Set(results.map(([v]) => v!.key)).size).toBe(1);
  });
});
