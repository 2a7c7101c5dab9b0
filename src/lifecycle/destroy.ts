import { DomainUndefineFlags } from '../libvirt/constants.js';
import { isNotFound, isOperationInvalid } from '../libvirt/errors.js';
import { unregisterMachine } from '../project/machine-index.js';
import { releaseHostSide } from './release-host-side.js';
import type { MachineHandle } from '../hosts/handle.js';
import { removeNetworkIfUnused } from '../net/network.js';

/**
 * Removes a machine: its domain (with nvram, snapshots, managed save), its volumes, the
 * networks vmenv created for it when no other domain uses them, and its state. Never a
 * box volume. Safe to run on a half-made machine.
 */
export async function destroyMachine(h: MachineHandle): Promise<void> {
  const record = await h.state.read(h.machine.name);
  if (!record) return;
  await releaseHostSide(h.state, record);
  if (record.domain) {
    try {
      const d = await h.client.domainLookupByName(record.domain.name);
      await h.client.domainDestroy(d).catch((err: unknown) => {
        if (!isOperationInvalid(err)) throw err;
      });
      await h.client.domainUndefine(d, DomainUndefineFlags.nvram | DomainUndefineFlags.snapshotsMetadata | DomainUndefineFlags.managedSave);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  for (const v of record.volumes) {
    try {
      const pool = await h.client.storagePoolLookupByName(v.pool);
      await h.client.storageVolDelete(await h.client.storageVolLookupByName(pool, v.name));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  for (const n of record.networks.filter((x) => x.created)) await removeNetworkIfUnused(h.client, n.name);
  if (record.domain) await unregisterMachine(record.domain.uuid);
  await h.state.remove(h.machine.name);
}
