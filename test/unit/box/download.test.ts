import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChecksumMismatchError, downloadFile, hashFile, parseChecksum, type DownloadProgress } from '../../../src/box/download.js';
import { UserError } from '../../../src/errors.js';
import { leftovers, tempDir } from './helpers.js';
import { TestServer } from './http-server.js';

const body = randomBytes(1024 * 1024 + 123);
const sha256 = createHash('sha256').update(body).digest('hex');
const goodSum = parseChecksum(`sha256:${sha256}`);
const badSum = parseChecksum(`sha256:${'0'.repeat(64)}`);

let tmp: ReturnType<typeof tempDir>;
let server: TestServer;
let n = 0;
const dest = (): string => join(tmp.path, `d${++n}`, 'file.box');
const fast = { retryDelayMs: 10 };
/** The offset a Range request asked for ("bytes=N-"). */
const resumedFrom = (range: string | undefined): number => Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1] ?? -1);

beforeAll(async () => {
  tmp = tempDir();
  server = await new TestServer().start();
  server.files.set('/file.box', { body });
});
afterAll(async () => {
  await server.stop();
  tmp.cleanup();
});
afterEach(() => {
  server.requests.length = 0;
  server.dropAfter = undefined;
  server.ranges = true;
});

describe('downloadFile', () => {
  it('downloads with progress, verifying the checksum', async () => {
    const events: DownloadProgress[] = [];
    const out = dest();
    const r = await downloadFile(server.url('/file.box'), out, { checksum: goodSum, alsoHash: ['md5'], onProgress: (p) => events.push(p) });
    expect(readFileSync(out).equals(body)).toBe(true);
    expect(r).toMatchObject({ size: body.length, resumed: false });
    expect(r.digests.sha256).toBe(sha256);
    expect(r.digests.md5).toBe(createHash('md5').update(body).digest('hex'));
    expect(events.length).toBeGreaterThan(3);
    expect(events.every((e) => e.total === body.length)).toBe(true);
    expect(events.at(-1)!.received).toBe(body.length);
    for (let i = 1; i < events.length; i++) expect(events[i]!.received).toBeGreaterThanOrEqual(events[i - 1]!.received);
    expect(existsSync(`${out}.part`)).toBe(false);
  });

  it('resumes with a Range request after a dropped connection', async () => {
    server.dropAfter = { bytes: 300_000, times: 1 };
    const out = dest();
    const r = await downloadFile(server.url('/file.box'), out, { checksum: goodSum, ...fast });
    expect(readFileSync(out).equals(body)).toBe(true);
    expect(r.resumed).toBe(true);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.range).toBeUndefined();
    expect(resumedFrom(server.requests[1]!.range)).toBeGreaterThan(0);
    expect(resumedFrom(server.requests[1]!.range)).toBeLessThanOrEqual(300_000);
  });

  it('resumes a part file left by an earlier run', async () => {
    const out = dest();
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(`${out}.part`, body.subarray(0, 500_000));
    const events: DownloadProgress[] = [];
    const r = await downloadFile(server.url('/file.box'), out, { checksum: goodSum, onProgress: (p) => events.push(p) });
    expect(r.resumed).toBe(true);
    expect(events[0]).toMatchObject({ received: 500_000, resumed: true, total: body.length });
    expect(readFileSync(out).equals(body)).toBe(true);
    expect(server.requests.map((q) => q.range)).toEqual(['bytes=500000-']);
  });

  it('restarts cleanly when the server ignores Range', async () => {
    server.ranges = false;
    server.dropAfter = { bytes: 400_000, times: 1 };
    const out = dest();
    const r = await downloadFile(server.url('/file.box'), out, { checksum: goodSum, ...fast });
    expect(readFileSync(out).equals(body)).toBe(true);
    expect(r.resumed).toBe(false);
    expect(server.requests).toHaveLength(2);
    expect(resumedFrom(server.requests[1]!.range)).toBeGreaterThan(0);
  });

  it('fetches again from scratch when a resumed file fails its checksum', async () => {
    const out = dest();
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(`${out}.part`, randomBytes(200_000)); // not a prefix of the file
    await downloadFile(server.url('/file.box'), out, { checksum: goodSum });
    expect(readFileSync(out).equals(body)).toBe(true);
    expect(server.requests.map((q) => q.range)).toEqual(['bytes=200000-', undefined]);
  });

  it('a checksum mismatch is an error and leaves no file', async () => {
    const out = dest();
    const err = await downloadFile(server.url('/file.box'), out, { checksum: badSum }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect((err as UserError).message).toContain(`expected sha256:${'0'.repeat(64)}, got sha256:${sha256}`);
    expect(leftovers(join(out, '..'))).toEqual([]);
  });

  it('an HTTP error is a UserError with the status', async () => {
    const err = await downloadFile(server.url('/missing.box'), dest()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/HTTP 404 \(not found\)/);
  });

  it('gives up after its retries and keeps the part file for the next run', async () => {
    server.dropAfter = { bytes: 100_000, times: 10 };
    const out = dest();
    const err = await downloadFile(server.url('/file.box'), out, { retries: 2, ...fast }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/Cannot download/);
    expect(server.requests).toHaveLength(3);
    expect(readFileSync(`${out}.part`).length).toBeGreaterThan(0);
    server.dropAfter = undefined;
    const r = await downloadFile(server.url('/file.box'), out, { checksum: goodSum });
    expect(r.resumed).toBe(true);
    expect(readFileSync(out).equals(body)).toBe(true);
  });

  it('stops when cancelled', async () => {
    const ac = new AbortController();
    const out = dest();
    const err = await downloadFile(server.url('/file.box'), out, {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.received > 100_000) ac.abort(new Error('user cancelled'));
      },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('user cancelled');
    expect(existsSync(out)).toBe(false);
  });

  it('hashFile', async () => {
    const path = join(tmp.path, 'hashed');
    writeFileSync(path, body);
    expect(await hashFile(path, 'sha256')).toBe(sha256);
    expect(await hashFile(path, 'sha1')).toBe(createHash('sha1').update(body).digest('hex'));
  });
});
