/**
 * Binding the host ends of a spec, all or none: when one cannot be bound, those already
 * bound are closed again and the failure names the listener and the system's error code.
 */
import { bindPort, boundPortNumber, closeBoundPort, type BoundPort } from '../bind-port.js';
import type { ForwardMapping } from './spec.js';

export type Listener = BoundPort & { mapping: ForwardMapping };

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
  return boundPortNumber(l) ?? l.mapping.hostPort;
}

async function bindOne(m: ForwardMapping): Promise<Listener> {
  try {
    return { ...(await bindPort(m.protocol, m.hostIp, m.hostPort, { allowHalfOpen: true })), mapping: m };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new BindFailure(m, e.code ?? 'UNKNOWN', e.message);
  }
}

export const closeListener: (l: Listener) => Promise<void> = closeBoundPort;

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
