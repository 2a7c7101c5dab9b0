import { LibvirtClient } from './client.js';
import type { KeepaliveOptions } from './rpc.js';
import { RpcConnection } from './rpc.js';
import { dialerForUri } from './transport/select.js';
import { formatLibvirtUri, parseLibvirtUri, remoteOpenName, resolveUri, type LibvirtUri } from './uri.js';

export { LibvirtClient } from './client.js';
export * from './errors.js';
export * from './constants.js';
export type { DomainRef, NetworkRef, StoragePoolRef, StorageVolRef, SnapshotRef } from './protocol/types.js';
export { formatUuid, parseUuid } from './protocol/types.js';

export interface OpenOptions {
  signal?: AbortSignal;
  /** The `uri` from vmenv.yaml; used when no explicit URI is given. */
  configured?: string;
  /** Keepalive settings, or false to leave it off. Default: a PING after 5 s of silence, give up after 5. */
  keepalive?: KeepaliveOptions | false;
}

/**
 * Opens a connection to libvirt: picks the URI (explicit, configured, environment,
 * system socket, else the session daemon, started when absent), dials its transport,
 * authenticates, opens the driver and starts keepalive.
 */
export async function openLibvirt(uri?: string | LibvirtUri, options: OpenOptions = {}): Promise<LibvirtClient> {
  const target =
    typeof uri === 'object'
      ? uri
      : uri !== undefined && uri !== ''
        ? parseLibvirtUri(uri)
        : (await resolveUri({ configured: options.configured })).uri;
  const dialer = dialerForUri(target);
  const socket = await dialer.dial(options.signal);
  const client = new LibvirtClient(new RpcConnection(socket), formatLibvirtUri(target));
  const onAbort = (): void => client.rpc.destroy(new Error('cancelled while connecting to libvirt'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await client.authenticate();
    await client.connectOpen(remoteOpenName(target));
    if (options.keepalive !== false) await client.startKeepalive(options.keepalive);
  } catch (err) {
    client.rpc.destroy();
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  return client;
}
