/**
 * Binding a host port for TCP (a listening server) or UDP (a bound socket): resolves
 * once bound, rejects with the system's error (EADDRINUSE, EACCES, …) and nothing left
 * open.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { ipFamily } from '../util/ip.js';

export type BoundPort = { protocol: 'tcp'; server: net.Server } | { protocol: 'udp'; socket: dgram.Socket };

export interface BindPortOptions {
  /** TCP: accepted connections stay open for writing after the peer ends its side. */
  allowHalfOpen?: boolean;
}

/** Binds `host:port` (port 0: one the kernel picks) for `protocol`. */
export function bindPort(protocol: 'tcp' | 'udp', host: string, port: number, options: BindPortOptions = {}): Promise<BoundPort> {
  return new Promise((resolve, reject) => {
    if (protocol === 'tcp') {
      const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
      // A server whose listen fails has already dropped its handle: nothing to close.
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        resolve({ protocol: 'tcp', server });
      });
    } else {
      const socket = dgram.createSocket(ipFamily(host) === 'ipv6' ? 'udp6' : 'udp4');
      const failed = (err: Error): void => {
        try {
          socket.close();
        } catch {
          // Already closed.
        }
        reject(err);
      };
      socket.once('error', failed);
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.off('error', failed);
        resolve({ protocol: 'udp', socket });
      });
    }
  });
}

/** The port the kernel bound (its choice when asked for 0); undefined when no longer bound. */
export function boundPortNumber(b: BoundPort): number | undefined {
  if (b.protocol === 'tcp') {
    const a = b.server.address();
    return typeof a === 'object' && a !== null ? a.port : undefined;
  }
  try {
    return b.socket.address().port;
  } catch {
    return undefined;
  }
}

/** Closes what bindPort bound; resolves when it is closed (or was already). */
export function closeBoundPort(b: BoundPort): Promise<void> {
  return new Promise((resolve) => {
    if (b.protocol === 'tcp') b.server.close(() => resolve());
    else {
      try {
        b.socket.close(() => resolve());
      } catch {
        resolve();
      }
    }
  });
}
