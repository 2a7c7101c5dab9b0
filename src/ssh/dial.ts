/**
 * Open a TCP connection to an SSH server that has actually answered.
 *
 * QEMU's user-mode forward accepts a connection on the host before the guest is there
 * and then relays SYNs into a guest that is still booting; such a connection can sit
 * silent for many seconds (slirp's retransmission back-off) even after the guest's sshd
 * listens. So while no connection has sent a byte, another one is opened every
 * `staggerMs` (the earlier ones stay open: a slow server still wins with its first
 * connection), and the first that sends something is the one returned; the rest are
 * closed.
 */
import { connect, type Socket } from 'node:net';
import { SshError, type SshFailureKind } from './errors.js';

export interface DialOptions {
  /** Open another connection when none has answered for this long. Default 1000 ms. */
  staggerMs?: number;
  /** Connections open at once, at most. Default 4. */
  maxOpen?: number;
  /** Give up (SshError 'timeout') after this long. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** For messages, e.g. "machine 'web' (vagrant@127.0.0.1:2222)". */
  target: string;
}

/**
 * Resolves with a connected socket whose server has sent its first bytes (put back
 * into the socket, which is paused, for the SSH client to read). Rejects with an
 * SshError when every connection failed (its kind: refused, closed, unreachable) or
 * with kind 'timeout', or with `signal.reason`.
 */
export function dialUntilAnswered(host: string, port: number, options: DialOptions): Promise<Socket> {
  const staggerMs = options.staggerMs ?? 1000;
  const maxOpen = options.maxOpen ?? 4;
  return new Promise<Socket>((resolve, reject) => {
    const open = new Set<Socket>();
    let settled = false;
    let lastFailure: { kind: SshFailureKind; detail: string } | undefined;

    const finish = (err: unknown, winner?: Socket): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearInterval(stagger);
      options.signal?.removeEventListener('abort', onAbort);
      for (const s of open) if (s !== winner) s.destroy();
      open.clear();
      if (winner) resolve(winner);
      else reject(err);
    };
    const onAbort = (): void => finish(options.signal?.reason ?? new Error('aborted'));

    const dial = (): void => {
      const s = connect({ host, port, noDelay: true });
      open.add(s);
      const onData = (chunk: Buffer): void => {
        s.pause();
        s.removeListener('data', onData);
        s.removeListener('error', onError);
        s.removeListener('close', onClose);
        s.unshift(chunk);
        finish(undefined, s);
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        lastFailure = { kind: kindOf(err.code), detail: err.message };
      };
      const onClose = (): void => {
        open.delete(s);
        lastFailure ??= { kind: 'closed', detail: 'closed before the server said anything' };
        if (open.size === 0 && !settled) {
          const { kind, detail } = lastFailure;
          finish(new SshError(kind, failureMessage(kind, options.target, detail), options.target));
        }
      };
      s.on('data', onData);
      s.on('error', onError);
      s.once('close', onClose);
    };

    const deadline = setTimeout(
      () => finish(new SshError('timeout', `no SSH answer from ${options.target} within ${(options.timeoutMs / 1000).toFixed(1)} s`, options.target)),
      Math.max(1, options.timeoutMs),
    );
    const stagger = setInterval(() => {
      if (open.size < maxOpen) dial();
    }, staggerMs);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    dial();
  });
}

function kindOf(code: string | undefined): SshFailureKind {
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'closed';
  if (code === 'ETIMEDOUT') return 'timeout';
  return 'unreachable';
}

function failureMessage(kind: SshFailureKind, target: string, detail: string): string {
  switch (kind) {
    case 'refused':
      return `nothing accepts SSH connections at ${target} (connection refused)`;
    case 'closed':
      return `the connection to ${target} closed before the SSH session was set up (${detail})`;
    default:
      return `cannot connect to ${target}: ${detail}`;
  }
}
