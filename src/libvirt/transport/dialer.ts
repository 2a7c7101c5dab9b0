import type { Duplex } from 'node:stream';

/**
 * A Dialer opens one byte stream to a libvirt daemon. The RPC client never knows
 * whether the bytes cross a unix socket, TCP, or an SSH channel; unit tests hand it
 * one end of an in-memory pair.
 */
export interface Dialer {
  /** Open the stream. Rejects with a LibvirtConnectError naming what was tried. */
  dial(signal?: AbortSignal): Promise<Duplex>;
  /** A short human description for messages, e.g. "unix socket /run/libvirt/libvirt-sock". */
  describe(): string;
}
