/**
 * Unix socket transport: the local libvirt daemon (`qemu:///system`, `qemu:///session`).
 * Also holds the small connect helper the TCP transport shares.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { LibvirtConnectError } from '../errors.js';
import type { Dialer } from './dialer.js';

export const DEFAULT_UNIX_CONNECT_TIMEOUT_MS = 10_000;

export interface ConnectNetOptions {
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  /** What is being reached, for messages: "unix socket /run/libvirt/libvirt-sock". */
  target: string;
  /** Turn a system error into a message; return undefined for the generic one. */
  explain?: (err: NodeJS.ErrnoException) => string | undefined;
}

/**
 * Open a net.Socket, honouring an AbortSignal (rejects with the signal's reason) and a
 * connect timeout (rejects with a LibvirtConnectError). Other failures become
 * LibvirtConnectError with `explain`'s message and the system error as cause.
 */
export function connectNet(connectOpts: net.NetConnectOpts, o: ConnectNetOptions): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(o.signal.reason);
      return;
    }
    const sock = net.connect(connectOpts);
    let settled = false;
    const finish = (err: unknown | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      sock.removeListener('error', onError);
      sock.removeListener('connect', onConnect);
      if (err === undefined) {
        resolve(sock);
      } else {
        sock.destroy();
        reject(err);
      }
    };
    const onAbort = (): void => finish(o.signal?.reason ?? new Error('aborted'));
    const onError = (err: NodeJS.ErrnoException): void => {
      const msg = o.explain?.(err) ?? `cannot connect to ${o.target}: ${err.message}`;
      finish(new LibvirtConnectError(msg, o.target, { cause: err }));
    };
    const onConnect = (): void => finish(undefined);
    const timer = setTimeout(() => {
      finish(
        new LibvirtConnectError(
          `timed out after ${(o.timeoutMs / 1000).toFixed(1)} s connecting to ${o.target}`,
          o.target,
        ),
      );
    }, o.timeoutMs);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    sock.once('error', onError);
    sock.once('connect', onConnect);
  });
}

/** libvirt writes abstract socket names with a leading "@"; Node wants a NUL. */
function socketAddress(path: string): string {
  return path.startsWith('@') ? `\0${path.slice(1)}` : path;
}

export interface UnixDialerOptions {
  timeoutMs?: number;
  /** Added to the "no socket" message, e.g. how to start the daemon. */
  missingHint?: string;
}

/** The message for a failed unix connect, by errno. */
export function explainUnixError(path: string, err: NodeJS.ErrnoException, missingHint?: string): string {
  switch (err.code) {
    case 'ENOENT':
      return `no libvirt socket at ${path} — is libvirtd running?${missingHint ? ` ${missingHint}` : ''}`;
    case 'EACCES':
    case 'EPERM':
      return (
        `permission denied opening the libvirt socket ${path}. ` +
        `Add your user to the group that owns it (usually "libvirt": sudo usermod -aG libvirt $USER, ` +
        `then log in again), or use qemu:///session`
      );
    case 'ECONNREFUSED':
      return (
        `the libvirt socket ${path} exists but nothing accepts connections on it ` +
        `(a stale socket left by a daemon that stopped) — restart the daemon`
      );
    case 'ENOTSOCK':
      return `${path} is not a socket`;
    case 'EAGAIN':
      return `the libvirt daemon at ${path} is not accepting connections (its queue is full)`;
    default:
      return `cannot connect to the libvirt socket ${path}: ${err.message}`;
  }
}

export function unixDialer(path: string, opts: UnixDialerOptions = {}): Dialer {
  const target = `unix socket ${path}`;
  return {
    describe: () => target,
    async dial(signal?: AbortSignal): Promise<Duplex> {
      return connectNet(
        { path: socketAddress(path) },
        {
          signal,
          target,
          timeoutMs: opts.timeoutMs ?? DEFAULT_UNIX_CONNECT_TIMEOUT_MS,
          explain: (err) => explainUnixError(path, err, opts.missingHint),
        },
      );
    },
  };
}

/**
 * Does something accept connections on this unix socket? Connects and closes at once;
 * never throws. The daemon sees a client that opens and leaves, which it tolerates.
 */
export async function probeUnixSocket(path: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const sock = await connectNet({ path: socketAddress(path) }, { timeoutMs, target: path });
    sock.destroy();
    return true;
  } catch {
    return false;
  }
}

/** Like probeUnixSocket but says why not: 'ok', 'missing', 'refused', 'denied', or 'error'. */
export async function checkUnixSocket(
  path: string,
  timeoutMs = 1000,
): Promise<'ok' | 'missing' | 'refused' | 'denied' | 'error'> {
  try {
    const sock = await connectNet({ path: socketAddress(path) }, { timeoutMs, target: path });
    sock.destroy();
    return 'ok';
  } catch (err) {
    const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
    if (code === 'ENOENT') return 'missing';
    if (code === 'ECONNREFUSED') return 'refused';
    if (code === 'EACCES' || code === 'EPERM') return 'denied';
    return 'error';
  }
}
