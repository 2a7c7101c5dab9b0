import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { duplexPair, memoryDialer } from '../../../src/libvirt/transport/memory.js';

function readAll(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

/** Write all of `data` in chunks, honouring write() === false; returns how often it had to wait. */
async function writeAll(s: Duplex, data: Buffer, chunk: number): Promise<number> {
  let waits = 0;
  for (let off = 0; off < data.length; off += chunk) {
    if (!s.write(data.subarray(off, off + chunk))) {
      waits++;
      await once(s, 'drain');
    }
  }
  s.end();
  return waits;
}

describe('duplexPair', () => {
  it('carries data both ways, in order', async () => {
    const [a, b] = duplexPair();
    const gotB = readAll(b);
    const gotA = readAll(a);
    a.write('hello ');
    a.end('world');
    b.end(Buffer.from('back'));
    expect((await gotB).toString()).toBe('hello world');
    expect((await gotA).toString()).toBe('back');
  });

  it('moves 8 MiB each way intact under backpressure, with bounded buffers', async () => {
    const hwm = 16 * 1024;
    const [a, b] = duplexPair({ highWaterMark: hwm, allowHalfOpen: true });
    const big1 = randomBytes(8 * 1024 * 1024);
    const big2 = randomBytes(8 * 1024 * 1024);

    // A slow reader on b: reads in paused mode, a bit at a time.
    let maxBuffered = 0;
    const slowRead = (s: Duplex): Promise<Buffer> =>
      new Promise((resolve) => {
        const parts: Buffer[] = [];
        const pump = (): void => {
          maxBuffered = Math.max(maxBuffered, s.readableLength);
          let d: Buffer | null;
          let n = 0;
          while (n < 4 && (d = s.read() as Buffer | null) !== null) {
            parts.push(d);
            n++;
          }
          if (s.readableEnded) return;
          setImmediate(pump);
        };
        s.once('end', () => resolve(Buffer.concat(parts)));
        pump();
      });
    const [waitsA, waitsB, atB, atA] = await Promise.all([
      writeAll(a, big1, 64 * 1024),
      writeAll(b, big2, 64 * 1024),
      slowRead(b),
      readAll(a),
    ]);
    expect(createHash('sha256').update(atB).digest('hex')).toBe(createHash('sha256').update(big1).digest('hex'));
    expect(atA.equals(big2)).toBe(true);
    // The writer had to wait for the reader: real backpressure.
    expect(waitsA).toBeGreaterThan(10);
    expect(waitsB).toBeGreaterThan(0);
    // The reader's buffer never grew beyond one write past the high-water mark.
    expect(maxBuffered).toBeLessThanOrEqual(hwm + 64 * 1024);
  });

  it('end on one side is end on the other; both close (no half-open by default)', async () => {
    const [a, b] = duplexPair();
    b.resume();
    a.resume();
    const closedA = once(a, 'close');
    const closedB = once(b, 'close');
    const endedB = once(b, 'end');
    a.end();
    await endedB;
    await Promise.all([closedA, closedB]);
    expect(a.destroyed && b.destroyed).toBe(true);
  });

  it('keeps the other direction open with allowHalfOpen', async () => {
    const [a, b] = duplexPair({ allowHalfOpen: true });
    b.resume();
    const got = readAll(a);
    a.end();
    await once(b, 'end');
    b.end('still here');
    expect((await got).toString()).toBe('still here');
  });

  it('destroy() is EOF to the other side after its buffered data, and later writes fail with EPIPE', async () => {
    const [a, b] = duplexPair({ allowHalfOpen: true });
    a.write('last words');
    a.destroy();
    const got = await readAll(b);
    expect(got.toString()).toBe('last words');
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      b.once('error', resolve);
      b.write('anyone?');
    });
    expect(err.code).toBe('EPIPE');
  });

  it('destroy(err) resets the other side', async () => {
    const [a, b] = duplexPair();
    const errP = once(b, 'error');
    a.on('error', () => {});
    a.destroy(new Error('boom'));
    const [err] = (await errP) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNRESET');
    expect(b.destroyed).toBe(true);
  });

  it('a write blocked on a reader that goes away fails', async () => {
    const [a, b] = duplexPair({ highWaterMark: 4 });
    const errs: Error[] = [];
    a.on('error', (e) => errs.push(e));
    a.write(Buffer.alloc(1024)); // fills b, blocks
    const cb = new Promise<Error | null | undefined>((resolve) => a.write(Buffer.alloc(10), resolve));
    b.destroy();
    const err = await cb;
    expect((err as NodeJS.ErrnoException).code).toBe('EPIPE');
  });
});

describe('memoryDialer', () => {
  it('hands the server end to the fake daemon on each dial', async () => {
    const servers: Duplex[] = [];
    const d = memoryDialer((s) => {
      servers.push(s);
      s.on('data', (chunk: Buffer) => s.write(chunk)); // echo
    });
    expect(d.describe()).toBe('in-memory pair');
    const c = await d.dial();
    c.write('ping');
    const [echo] = (await once(c, 'data')) as [Buffer];
    expect(echo.toString()).toBe('ping');
    await d.dial();
    expect(servers).toHaveLength(2);
    c.destroy();
  });

  it('rejects when already aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(memoryDialer(() => {}).dial(ac.signal)).rejects.toThrow('stop');
  });
});
