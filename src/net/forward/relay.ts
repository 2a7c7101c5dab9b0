/**
 * Relaying from a bound listener to one guest address: every TCP connection gets its
 * own connection to the guest (half-closes passed on), every UDP client address its own
 * socket towards the guest, dropped after a quiet spell. The listener may have been
 * bound in another process and network namespace (see netns.ts): outgoing connections
 * are made from wherever this code runs.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { hostPortText } from '../../util/ip.js';
import { socketFamily } from './spec.js';

export type Log = (line: string) => void;

export interface GuestEnd {
  guestIp: string;
  guestPort: number;
}

export interface Relay {
  /** Stops accepting and ends every connection or client relay under way. */
  close(): Promise<void>;
}

/** Connections from one listener at a time, at most (the rest wait in the kernel's backlog). */
const MAX_TCP_CONNECTIONS = 1024;
/** UDP clients relayed at once; the one quiet the longest gives way to a new one. */
const MAX_UDP_CLIENTS = 512;

/** A net.Server's half-close setting, which the server handed over by node's IPC is created without. */
interface HalfOpenServer {
  allowHalfOpen: boolean;
}

export interface TcpRelay extends Relay {
  /** Relays a connection accepted elsewhere (by the process that bound the listener, before handing it over). */
  adopt(client: net.Socket): void;
}

export function relayTcp(server: net.Server, guest: GuestEnd, log: Log): TcpRelay {
  const target = hostPortText(guest.guestIp, guest.guestPort);
  const open = new Set<net.Socket>();
  (server as unknown as HalfOpenServer).allowHalfOpen = true;
  server.maxConnections = MAX_TCP_CONNECTIONS;

  server.on('connection', (client) => adopt(client));
  server.on('error', (err) => log(`listener error: ${err.message}`));

  function adopt(client: net.Socket): void {
    const from = hostPortText(client.remoteAddress ?? '?', client.remotePort ?? 0);
    const upstream = net.connect({ host: guest.guestIp, port: guest.guestPort, allowHalfOpen: true });
    open.add(client);
    open.add(upstream);
    let failed = false;
    const fail = (side: string, err: Error): void => {
      if (failed) return;
      failed = true;
      log(`tcp ${from} → ${target}: ${side}: ${err.message}`);
      // The other side sees a reset too (a refused guest: as from a closed port), not a
      // clean end that a half-open peer would wait on.
      const [broken, other] = side === 'guest' ? [upstream, client] : [client, upstream];
      broken.destroy();
      if (other.destroyed) return;
      other.resetAndDestroy();
    };
    client.on('error', (err) => fail('client', err));
    upstream.on('error', (err) => fail('guest', err));
    client.pipe(upstream);
    upstream.pipe(client);
    // Ends travel through the pipes (each side's end ends the other's writing), errors
    // through fail(); connections that end well are not logged, or a busy forward would
    // grow the log without end.
    client.on('close', () => open.delete(client));
    upstream.on('close', () => open.delete(upstream));
  }

  return {
    adopt,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
      }),
  };
}

interface UdpClient {
  upstream: dgram.Socket;
  timer: NodeJS.Timeout;
}

export function relayUdp(listener: dgram.Socket, guest: GuestEnd, idleMs: number, log: Log): Relay {
  const target = hostPortText(guest.guestIp, guest.guestPort);
  const clients = new Map<string, UdpClient>();
  const family = socketFamily(guest.guestIp);

  const drop = (key: string): void => {
    const c = clients.get(key);
    if (c === undefined) return;
    clients.delete(key);
    clearTimeout(c.timer);
    c.upstream.close();
  };
  const touch = (key: string, c: UdpClient): void => {
    c.timer.refresh();
    // Map order is the eviction order: the most recently heard-from last.
    clients.delete(key);
    clients.set(key, c);
  };

  listener.on('error', (err) => log(`udp listener error: ${err.message}`));
  listener.on('message', (msg, rinfo) => {
    const key = hostPortText(rinfo.address, rinfo.port);
    let c = clients.get(key);
    if (c === undefined) {
      if (clients.size >= MAX_UDP_CLIENTS) {
        const oldest = clients.keys().next().value;
        if (oldest !== undefined) drop(oldest);
      }
      const upstream = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
      const created: UdpClient = {
        upstream,
        timer: setTimeout(() => {
          log(`udp ${key} → ${target}: idle, dropped`);
          drop(key);
        }, idleMs),
      };
      c = created;
      clients.set(key, created);
      upstream.on('error', (err) => {
        log(`udp ${key} → ${target}: ${err.message}`);
        drop(key);
      });
      upstream.on('message', (reply, src) => {
        // Only the guest's answers go back; anything else that found this socket is dropped.
        if (src.port !== guest.guestPort) return;
        touch(key, created);
        listener.send(reply, rinfo.port, rinfo.address, (err) => {
          if (err) log(`udp ${key} ← ${target}: ${err.message}`);
        });
      });
      log(`udp ${key} → ${target}: new client`);
    } else {
      touch(key, c);
    }
    c.upstream.send(msg, guest.guestPort, guest.guestIp, (err) => {
      if (err) log(`udp ${key} → ${target}: ${err.message}`);
    });
  });

  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const key of [...clients.keys()]) drop(key);
        try {
          listener.close(() => resolve());
        } catch {
          resolve(); // already closed
        }
      }),
  };
}
