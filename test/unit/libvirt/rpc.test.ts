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
        void daemon.answer(
          { ...p.header, serial },
          { error: { code: 38, domain: 18, message: 'No space left on device' } },
        );
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
      d.sendStream(p.header.serial, p.header.procedure, MessageStatus.ok);
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
      void d.answer(
        { ...p.header, type: 3 },
        { error: { code: 38, domain: 18, message: 'I/O error reading volume' } },
      );
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
