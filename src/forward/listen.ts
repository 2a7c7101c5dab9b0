/**
 * Binding the host ends of a spec, all or none: when one cannot be bound, those already
 * bound are closed again and the failure names the listener and the system's error code.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { socketFamily, type ForwardMapping } from './spec.js';

export type Listener = { protocol: 'tcp'; mapping: ForwardMapping; server: net.Server } | { protocol: 'udp'; mapping: ForwardMapping; socket: dgram.Socket };

/** One host end that could not be bound. */
export class BindFailure extends Error {
  readonly mapping: ForwardMapping;
  /** The system's code: EADDRINUSE, EACCES, EADDRNOTAVAIL, … (or UNKNOWN). */
  readonly code: string;
  constructor(mapping: ForwardMapping, code: string, message: string) {
    super(message);
    this.name = 'BindFailure';
    this.mapping = mapping;
    this.code = code;
  }
}

/** The port a listener ended up on (the kernel's choice when the spec said 0). */
export function boundPort(l: Listener): number {
  if (l.protocol === 'tcp') {
    const a = l.server.address();
    return typeof a === 'object' && a !== null ? a.port : l.mapping.hostPort;
  }
  return l.socket.address().port;
}

function bindOne(m: ForwardMapping): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => reject(new BindFailure(m, err.code ?? 'UNKNOWN', err.message));
    if (m.protocol === 'tcp') {
      const server = net.createServer({ allowHalfOpen: true });
      server.once('error', failed);
      server.listen({ host: m.hostIp, port: m.hostPort }, () => {
        server.off('error', failed);
        resolve({ protocol: 'tcp', mapping: m, server });
      });
    } else {
      const socket = dgram.createSocket(socketFamily(m.hostIp) === 6 ? 'udp6' : 'udp4');
      socket.once('error', failed);
      socket.bind({ address: m.hostIp, port: m.hostPort, exclusive: true }, () => {
        socket.off('error', failed);
        resolve({ protocol: 'udp', mapping: m, socket });
      });
    }
  });
}

export function closeListener(l: Listener): Promise<void> {
  return new Promise((resolve) => {
    if (l.protocol === 'tcp') l.server.close(() => resolve());
    else {
      try {
        l.socket.close(() => resolve());
      } catch {
        resolve();
      }
    }
  });
}

/** Binds every mapping's host end in order; throws the first BindFailure with nothing left bound. */
export async function bindListeners(mappings: readonly ForwardMapping[]): Promise<Listener[]> {
  const bound: Listener[] = [];
  try {
    for (const m of mappings) bound.push(await bindOne(m));
    return bound;
  } catch (err) {
    await Promise.all(bound.map(closeListener));
    throw err;
  }
}
