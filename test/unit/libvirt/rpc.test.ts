import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { LibvirtClient } from '../../../src/libvirt/client.js';
import { DomainEventType } from '../../../src/libvirt/constants.js';
import {
  LibvirtConnectionClosedError,
  LibvirtError,
  LibvirtProtocolError,
  isDomainNotFound,
  isNotFound,
} from '../../../src/libvirt/errors.js';
import { KEEPALIVE_PROGRAM, KeepaliveProcedure, MessageStatus } from '../../../src/libvirt/protocol/packet.js';
import { Proc } from '../../../src/libvirt/protocol/procedures.js';
import { readDomain, readVolume, writeDomain, type DomainRef } from '../../../src/libvirt/protocol/types.js';
import { RpcConnection } from '../../../src/libvirt/rpc.js';
import { duplexPair } from '../../../src/libvirt/transport/memory.js';
import { FakeLibvirtd } from '../support/fake-libvirtd.js';

const dom = (name: string, id = -1): DomainRef => ({ name, uuid: Buffer.alloc(16, name.length), id });

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

function setup(): { client: LibvirtClient; rpc: RpcConnection; daemon: FakeLibvirtd } {
  const [a, b] = duplexPair();
  const rpc = new RpcConnection(a);
  const daemon = new FakeLibvirtd(b);
  cleanups.push(() => rpc.destroy());
  return { client: new LibvirtClient(rpc), rpc, daemon };
}

/** Scripts the daemon to accept an upload to `volume`, collecting the data packets. */
function acceptUploads(daemon: FakeLibvirtd, volume: string): Buffer[] {
  const got: Buffer[] = [];
  let serial = 0;
  daemon.on(Proc.StorageVolUpload, (args, p) => {
    expect(readVolume(args).name).toBe(volume);
    serial = p.header.serial;
    return { ok: () => undefined };
  });
  daemon.onStream = (p) => {
    if (p.header.status === MessageStatus.continue) got.push(Buffer.from(p.payload));
    if (p.header.status === MessageStatus.ok) daemon.sendStream(serial, p.header.procedure, MessageStatus.ok);
  };
  return got;
}

describe('RpcConnection', () => {
  it('matches concurrent calls to replies that arrive out of order', async () => {
    const { client, daemon } = setup();
    const waiting: (() => void)[] = [];
    daemon.on(Proc.DomainLookupByName, (args) => {
      const name = args.string();
      return {
        later: new Promise((resolve) => {
          waiting.push(() => resolve({ ok: (w) => writeDomain(w, dom(name, name.length)) }));
        }),
      };
    });
    const names = ['a', 'bb', 'ccc', 'dddd', 'eeeee'];
    const calls = names.map((n) => client.domainLookupByName(n));
    while (waiting.length < names.length) await sleep(1);
    for (const release of waiting.reverse()) release();
    const results = await Promise.all(calls);
    expect(results.map((d) => d.name)).toEqual(names);
    expect(results.map((d) => d.id)).toEqual([1, 2, 3, 4, 5]);
  });

  it('turns error replies into typed LibvirtErrors', async () => {
    const { client, daemon } = setup();
    daemon.on(Proc.DomainLookupByName, () => ({
      error: { code: 42, domain: 10, message: "Domain not found: no domain with matching name 'x'" },
    }));
    const err = await client.domainLookupByName('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(isNotFound(err)).toBe(true);
    expect(isDomainNotFound(err)).toBe(true);
    expect((err as LibvirtError).procedure).toBe('DomainLookupByName');
  });

  it('fails pending and later calls when the connection closes', async () => {
    const { client, daemon } = setup();
    daemon.on(Proc.ConnectGetHostname, () => 'none');
    const pending = client.connectGetHostname();
    await sleep(5);
    daemon.socket.destroy();
    await expect(pending).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
    await expect(client.connectGetHostname()).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
  });

  it('closes with a protocol error on garbage from the daemon', async () => {
    const { client, daemon } = setup();
    daemon.on(Proc.ConnectGetHostname, () => 'none');
    const pending = client.connectGetHostname();
    await sleep(5);
    daemon.socket.write(Buffer.from([0, 0, 0, 4, 1, 2, 3, 4]));
    await expect(pending).rejects.toBeInstanceOf(LibvirtProtocolError);
  });

  it('answers keepalive PINGs with PONGs', async () => {
    const { daemon } = setup();
    daemon.ping();
    daemon.ping();
    await sleep(10);
    expect(daemon.pongs).toBe(2);
  });

  it('sends PINGs when the daemon is silent and gives up after the count', async () => {
    const { rpc, daemon } = setup();
    const closed = new Promise<Error | undefined>((resolve) => rpc.onClose(resolve));
    daemon.socket.pause(); // a daemon that hangs: it reads nothing and says nothing
    rpc.enableKeepalive({ intervalMs: 40, count: 2 });
    const reason = await closed;
    expect(reason?.message).toMatch(/keepalive/);
  });

  it('keeps an idle connection alive while the daemon answers PINGs', async () => {
    const { client, rpc, daemon } = setup();
    daemon.on(Proc.ConnectGetHostname, () => ({ ok: (w) => w.string('host') }));
    rpc.enableKeepalive({ intervalMs: 20, count: 2 });
    await sleep(200);
    const pings = daemon.received.filter((p) => p.header.program === KEEPALIVE_PROGRAM && p.header.procedure === KeepaliveProcedure.ping);
    expect(pings.length).toBeGreaterThan(2);
    expect(await client.connectGetHostname()).toBe('host');
  });
});

describe('events', () => {
  it('delivers a lifecycle event that follows the registration reply in the same chunk', async () => {
    const { client, daemon } = setup();
    daemon.on(Proc.ConnectDomainEventCallbackRegisterAny, (args, packet, d) => {
      expect(args.int()).toBe(0);
      const target = args.optional(readDomain);
      // Reply and event written back to back, before the client can run any continuation.
      void d.answer(packet.header, { ok: (w) => w.int(77) });
      d.sendEvent(Proc.DomainEventCallbackLifecycle, (w) => {
        w.int(77);
        writeDomain(w, target ?? dom('any'));
        w.int(DomainEventType.started).int(1);
      });
      return 'none';
    });
    daemon.on(Proc.ConnectDomainEventCallbackDeregisterAny, (args) => {
      expect(args.int()).toBe(77);
      return { ok: () => undefined };
    });
    const events: { name: string; event: number }[] = [];
    const off = await client.onDomainLifecycle(dom('web'), (e) => events.push({ name: e.domain.name, event: e.event }));
    await sleep(5);
    expect(events).toEqual([{ name: 'web', event: DomainEventType.started }]);
    await off();
    daemon.sendEvent(Proc.DomainEventCallbackLifecycle, (w) => {
      w.int(77);
      writeDomain(w, dom('web'));
      w.int(DomainEventType.stopped).int(0);
    });
    await sleep(5);
    expect(events).toHaveLength(1);
  });
});

describe('streams', () => {
  it('uploads in bounded packets and waits for the daemon to confirm', async () => {
    const { client, daemon } = setup();
    const got = acceptUploads(daemon, 'disk');
    const data = Buffer.alloc(3 * 1024 * 1024 + 123);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const progress: number[] = [];
    const sent = await client.storageVolUpload({ pool: 'p', name: 'disk', key: 'k' }, Readable.from([data.subarray(0, 1000), data.subarray(1000)]), {
      onProgress: (n) => progress.push(n),
    });
    expect(sent).toBe(data.length);
    expect(Buffer.concat(got).equals(data)).toBe(true);
    expect(Math.max(...got.map((c) => c.length))).toBeLessThanOrEqual(262_144);
    expect(progress.at(-1)).toBe(data.length);
  });

  it('stops an upload when the daemon reports an error and sends an abort', async () => {
    const { client, daemon } = setup();
    let serial = 0;
    daemon.on(Proc.StorageVolUpload, (_a, p) => {
      serial = p.header.serial;
      return { ok: () => undefined };
    });
    let errorSent = false;
    daemon.onStream = (p) => {
      if (!errorSent && p.header.status === MessageStatus.continue) {
        errorSent = true;
        daemon.sendStreamError(serial, p.header.procedure, { code: 38, domain: 18, message: 'No space left on device' });
      }
      if (p.header.status === MessageStatus.error) daemon.sendStream(serial, p.header.procedure, MessageStatus.ok);
    };
    async function* endless() {
      for (;;) {
        yield Buffer.alloc(256 * 1024);
        await sleep(1);
      }
    }
    await expect(client.storageVolUpload({ pool: 'p', name: 'd', key: 'k' }, endless())).rejects.toThrow(/No space left/);
  });

  it('downloads data, then finishes the stream with the daemon', async () => {
    const { client, daemon } = setup();
    const chunks = [Buffer.alloc(100_000, 1), Buffer.alloc(200_000, 2), Buffer.alloc(5, 3)];
    let finished = false;
    daemon.on(Proc.StorageVolDownload, (_a, p, d) => {
      void d.answer(p.header, { ok: () => undefined });
      for (const c of chunks) d.sendStream(p.header.serial, p.header.procedure, MessageStatus.continue, c);
      d.sendStream(p.header.serial, p.header.procedure, MessageStatus.continue); // end of data
      d.onStream = (s) => {
        if (s.header.status === MessageStatus.ok) {
          finished = true;
          d.sendStream(p.header.serial, p.header.procedure, MessageStatus.ok);
        }
      };
      return 'none';
    });
    const readable = await client.storageVolDownload({ pool: 'p', name: 'd', key: 'k' });
    const parts: Buffer[] = [];
    for await (const c of readable) {
      parts.push(c as Buffer);
      await sleep(2); // a slow consumer
    }
    expect(Buffer.concat(parts).equals(Buffer.concat(chunks))).toBe(true);
    expect(finished).toBe(true);
  });

  it('surfaces a stream error from the daemon as an error of the readable', async () => {
    const { client, daemon } = setup();
    daemon.on(Proc.StorageVolDownload, (_a, p, d) => {
      void d.answer(p.header, { ok: () => undefined });
      d.sendStream(p.header.serial, p.header.procedure, MessageStatus.continue, Buffer.alloc(10));
      d.sendStreamError(p.header.serial, p.header.procedure, { code: 38, domain: 18, message: 'I/O error reading volume' });
      return 'none';
    });
    const readable = await client.storageVolDownload({ pool: 'p', name: 'd', key: 'k' });
    await expect(
      (async () => {
        for await (const _ of readable) void _;
      })(),
    ).rejects.toThrow(/I\/O error/);
  });
});

describe('file uploads', () => {
  it('reads the file into a few reused buffers without corrupting data in flight', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { readFileChunks } = await import('../../../src/libvirt/stream.js');
    const dir = await mkdtemp(join(tmpdir(), 'vmenv-unit-'));
    try {
      const data = Buffer.alloc(5 * 262_120 + 999);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
      const path = join(dir, 'image');
      await writeFile(path, data);

      const { client, daemon } = setup();
      const got = acceptUploads(daemon, 'v');
      // Two buffers only: a buffer reused before its packet was written would show here.
      const sent = await client.storageVolUpload({ pool: 'p', name: 'v', key: 'k' }, readFileChunks(path, 262_120, 2));
      expect(sent).toBe(data.length);
      expect(Buffer.concat(got).equals(data)).toBe(true);

      const chunks: number[] = [];
      for await (const c of readFileChunks(path, 1 << 20, 1)) {
        chunks.push(c.data.length);
        c.release();
      }
      expect(chunks.reduce((a, b) => a + b, 0)).toBe(data.length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('review regressions', () => {
  /** A daemon that serves a download of `total` bytes in 64 KiB packets, then EOF. */
  function serveDownload(daemon: FakeLibvirtd, total: number): { finished: () => boolean; aborted: () => boolean } {
    let finished = false;
    let aborted = false;
    daemon.on(Proc.StorageVolDownload, (_a, p, d) => {
      void d.answer(p.header, { ok: () => undefined });
      for (let sent = 0; sent < total; sent += 65536) {
        d.sendStream(p.header.serial, p.header.procedure, MessageStatus.continue, Buffer.alloc(Math.min(65536, total - sent), 7));
      }
      d.sendStream(p.header.serial, p.header.procedure, MessageStatus.continue);
      d.onStream = (s) => {
        if (s.header.status === MessageStatus.ok) finished = true;
        if (s.header.status === MessageStatus.error) aborted = true;
        d.sendStream(p.header.serial, p.header.procedure, MessageStatus.ok);
      };
      return 'none';
    });
    daemon.on(Proc.ConnectGetType, () => ({ ok: (w) => w.string('QEMU') }));
    return { finished: () => finished, aborted: () => aborted };
  }

  it('a cancelled download neither freezes the connection nor leaks listeners', async () => {
    const { client, rpc, daemon } = setup();
    const served = serveDownload(daemon, 8 * 1024 * 1024);
    const ac = new AbortController();
    for (let round = 0; round < 3; round++) {
      const readable = await client.storageVolDownload({ pool: 'p', name: 'd', key: 'k' }, { signal: ac.signal });
      let got = 0;
      await expect(
        (async () => {
          for await (const c of readable) {
            got += (c as Buffer).length;
            if (got > 1024 * 1024) readable.destroy(new Error('consumer gave up'));
          }
        })(),
      ).rejects.toThrow('consumer gave up');
      // The connection still answers, at once.
      expect(await client.connectGetType()).toBe('QEMU');
    }
    await sleep(10);
    expect(served.aborted()).toBe(true);
    expect(rpc.openStreams).toBe(0);
    // No abort listener is left on a long-lived signal.
    const { EventEmitter } = await import('node:events');
    const getEventListeners = (t: EventTarget, name: string): unknown[] => (EventEmitter as unknown as { getEventListeners(t: EventTarget, n: string): unknown[] }).getEventListeners(t, name);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('a stalled download consumer does not trip keepalive, and close() still returns', async () => {
    const { client, rpc, daemon } = setup();
    serveDownload(daemon, 32 * 1024 * 1024);
    daemon.on(Proc.ConnectClose, () => ({ ok: () => undefined }));
    rpc.enableKeepalive({ intervalMs: 20, count: 2 });
    const readable = await client.storageVolDownload({ pool: 'p', name: 'd', key: 'k' });
    await sleep(200); // nobody reads: backpressure pauses the socket
    expect(rpc.closed).toBe(false);
    const t0 = Date.now();
    await client.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    readable.destroy();
  });

  it('a reply whose error cannot be decoded fails its call', async () => {
    const { client, daemon } = setup();
    daemon.on(Proc.ConnectGetHostname, (_a, p, d) => {
      d.send({ ...p.header, type: 1, status: MessageStatus.error }, Buffer.from([0, 0, 0, 1]));
      return 'none';
    });
    await expect(client.connectGetHostname()).rejects.toBeInstanceOf(LibvirtProtocolError);
  });

  it('a throwing event listener does not close the connection', async () => {
    const { client, rpc, daemon } = setup();
    daemon.on(Proc.ConnectDomainEventCallbackRegisterAny, () => ({ ok: (w) => w.int(5) }));
    daemon.on(Proc.ConnectGetType, () => ({ ok: (w) => w.string('QEMU') }));
    await client.onDomainLifecycle(null, () => {
      throw new Error('bug in a listener');
    });
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => void uncaught.push(e);
    process.prependListener('uncaughtException', onUncaught);
    try {
      daemon.sendEvent(Proc.DomainEventCallbackLifecycle, (w) => {
        w.int(5);
        writeDomain(w, dom('web'));
        w.int(DomainEventType.started).int(0);
      });
      expect(await client.connectGetType()).toBe('QEMU');
      await sleep(5);
    } finally {
      process.removeListener('uncaughtException', onUncaught);
    }
    expect(rpc.closed).toBe(false);
    expect((uncaught[0] as Error | undefined)?.message).toBe('bug in a listener');
  });

  it('an upload fails when the daemon ends with an error after an empty CONTINUE', async () => {
    const { client, daemon } = setup();
    let serial = 0;
    daemon.on(Proc.StorageVolUpload, (_a, p) => {
      serial = p.header.serial;
      return { ok: () => undefined };
    });
    daemon.onStream = (p) => {
      if (p.header.status !== MessageStatus.ok) return;
      daemon.sendStream(serial, p.header.procedure, MessageStatus.continue);
      // The error comes a moment later: an upload that took the empty CONTINUE for success would be gone.
      setTimeout(() => {
        daemon.sendStreamError(serial, p.header.procedure, { code: 1, domain: 38, message: 'stream had unexpected termination' });
      }, 20);
    };
    await expect(client.storageVolUpload({ pool: 'p', name: 'v', key: 'k' }, Readable.from([Buffer.alloc(1000)]))).rejects.toThrow(
      /unexpected termination/,
    );
  });

  it('bad arguments reject instead of throwing, and leave no stream attached', async () => {
    const { client, rpc } = setup();
    await expect(client.domainLookupByUuid(Buffer.alloc(3))).rejects.toThrow(RangeError);
    await expect(client.storageVolDownload({ pool: 'p', name: 'd', key: 'k' }, { offset: -1n })).rejects.toThrow(RangeError);
    expect(rpc.openStreams).toBe(0);
  });
});
