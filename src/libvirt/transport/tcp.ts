/**
 * Plain TCP transport (`qemu+tcp://host[:16509]/system`). The daemon must listen on
 * TCP (listen_tcp=1 or libvirtd-tcp.socket); traffic is not encrypted.
 */
import type { Duplex } from 'node:stream';
import { hostPortText } from '../../util/ip.js';
import { DEFAULT_TCP_PORT } from '../uri.js';
import type { Dialer } from './dialer.js';
import { connectNet } from './unix.js';

export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 20_000;

export interface TcpDialerOptions {
  port?: number;
  timeoutMs?: number;
}

export function tcpDialer(host: string, opts: TcpDialerOptions = {}): Dialer {
  const port = opts.port ?? DEFAULT_TCP_PORT;
  const where = hostPortText(host, port);
  const target = `tcp ${where}`;
  return {
    describe: () => target,
    async dial(signal?: AbortSignal): Promise<Duplex> {
      const sock = await connectNet(
        { host, port },
        {
          signal,
          target,
          timeoutMs: opts.timeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS,
          explain: (err) => {
            switch (err.code) {
              case 'ECONNREFUSED':
                return (
                  `nothing accepts connections at ${where} — libvirtd must listen on TCP ` +
                  `(listen_tcp = 1 in libvirtd.conf, or libvirtd-tcp.socket); ` +
                  `qemu+ssh:// needs no daemon setup`
                );
              case 'ENOTFOUND':
              case 'EAI_AGAIN':
                return `cannot resolve the host name "${host}"`;
              case 'EHOSTUNREACH':
              case 'ENETUNREACH':
                return `no route to ${where}`;
              case 'ETIMEDOUT':
                return `connecting to ${where} timed out`;
              default:
                return undefined;
            }
          },
        },
      );
      sock.setNoDelay(true);
      return sock;
    },
  };
}
