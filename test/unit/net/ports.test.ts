import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ForwardedPort } from '../../../src/config/types.js';
import { NoFreePortError } from '../../../src/net/forward/ports.js';
import { choosePorts, freeLoopbackPort, isPortFree } from '../../../src/net/ports.js';

const fwd = (guest: number, host: number, auto_correct = false): ForwardedPort => ({ guest, host, host_ip: '127.0.0.1', protocol: 'tcp', auto_correct });
const takenSet = (...ports: number[]) => async (_ip: string, port: number): Promise<boolean> => !ports.includes(port);

describe('choosePorts', () => {
  it('keeps free ports as configured', async () => {
    expect(await choosePorts([fwd(80, 8080), fwd(443, 8443)], { isFree: takenSet() })).toEqual([
      { guest: 80, host: 8080, hostIp: '127.0.0.1', protocol: 'tcp' },
      { guest: 443, host: 8443, hostIp: '127.0.0.1', protocol: 'tcp' },
    ]);
  });

  it('auto_correct moves a taken port to the next free one, says so, and never gives a port twice', async () => {
    const said: string[] = [];
    const ports = await choosePorts([fwd(80, 8080, true), fwd(81, 8081, true)], { isFree: takenSet(8080, 8082), onCorrected: (m) => said.push(m) });
    expect(ports.map((p) => p.host)).toEqual([8081, 8083]);
    expect(said).toEqual([
      'host port 8080/tcp is in use: forwarding 127.0.0.1:8081 → guest 80 instead',
      'host port 8081/tcp is in use: forwarding 127.0.0.1:8083 → guest 81 instead',
    ]);
  });

  it('without auto_correct a taken port is an error naming it', async () => {
    await expect(choosePorts([fwd(80, 8080)], { isFree: takenSet(8080) })).rejects.toThrow(
      'host port 127.0.0.1:8080/tcp (forwarded to guest port 80) is already in use',
    );
  });

  it('auto_correct gives up with NoFreePortError when no port above is free', async () => {
    const checked: number[] = [];
    const none = async (_ip: string, port: number): Promise<boolean> => {
      checked.push(port);
      return false;
    };
    await expect(choosePorts([fwd(80, 8080, true)], { isFree: none })).rejects.toBeInstanceOf(NoFreePortError);
    expect(checked[0]).toBe(8080);
    expect(checked.at(-1)).toBe(8280);
  });

  it('prefers the port used last time while it is free', async () => {
    const previous = [{ guest: 80, host: 8081, hostIp: '127.0.0.1', protocol: 'tcp' as const }];
    expect((await choosePorts([fwd(80, 8080, true)], { previous, isFree: takenSet() }))[0]!.host).toBe(8081);
    expect((await choosePorts([fwd(80, 8080, true)], { previous, isFree: takenSet(8081) }))[0]!.host).toBe(8080);
  });
});

describe('isPortFree', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sees a port held by a listener, and one that is not', async () => {
    expect(await isPortFree('127.0.0.1', port, 'tcp')).toBe(false);
    const other = createServer();
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const freed = (other.address() as { port: number }).port;
    await new Promise<void>((r) => other.close(() => r()));
    expect(await isPortFree('127.0.0.1', freed, 'tcp')).toBe(true);
  });

  it('sees a UDP port held by a bound socket', async () => {
    const dgram = await import('node:dgram');
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind({ address: '127.0.0.1', port: 0, exclusive: true }, r));
    try {
      expect(await isPortFree('127.0.0.1', socket.address().port, 'udp')).toBe(false);
    } finally {
      await new Promise<void>((r) => socket.close(r));
    }
  });
});

describe('freeLoopbackPort', () => {
  it('gives a port that is free again', async () => {
    const port = await freeLoopbackPort();
    expect(port).toBeGreaterThan(0);
    expect(await isPortFree('127.0.0.1', port, 'tcp')).toBe(true);
  });
});
