import { join } from 'node:path';
import { vmenvHome } from '../project/home.js';
import { isSessionUri } from '../libvirt/uri.js';

/**
 * Where `up` puts a storage pool that does not exist yet. On a system daemon QEMU runs
 * as its own user (libvirt-qemu on Debian), which cannot enter a home folder (0700):
 * the pool goes where libvirt keeps images (the `default` pool where libvirt itself
 * would, /var/lib/libvirt/images); it is also the right place on a remote host. A
 * session daemon runs QEMU as the user, so the user's data folder does.
 */
export function newPoolPath(uri: string, name: string): string {
  if (isSessionUri(uri)) return join(vmenvHome(), 'pools', name);
  return name === 'default' ? '/var/lib/libvirt/images' : join('/var/lib/libvirt/vmenv-pools', name);
}
