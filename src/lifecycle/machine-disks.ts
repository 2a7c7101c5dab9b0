import type { LibvirtClient } from '../libvirt/client.js';
import { isNotFound } from '../libvirt/errors.js';
import { volumeXml } from '../libvirt/xml/index.js';
import { extraDiskVolumeNames } from '../project/names.js';
import type { UpBase } from './up-context.js';

/** Deletes a volume; one that is gone already is fine. */
export async function deleteVolume(client: LibvirtClient, pool: string, name: string): Promise<void> {
  try {
    const p = await client.storagePoolLookupByName(pool);
    await client.storageVolDelete(await client.storageVolLookupByName(p, name));
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** Creates the volumes of the `disks:` that have none yet (all on a first up; new ones on reload). */
export async function ensureExtraDisks(ctx: Pick<UpBase, 'client' | 'machine' | 'resourceName' | 'record' | 'state'>): Promise<number> {
  const names = extraDiskVolumeNames(ctx.resourceName, ctx.machine.disks, ctx.record.volumes.map((v) => v.name));
  let made = 0;
  for (const [i, d] of ctx.machine.disks.entries()) {
    const name = names[i]!;
    if (ctx.record.volumes.some((v) => v.name === name)) continue;
    const pool = await ctx.client.storagePoolLookupByName(ctx.machine.pool);
    await ctx.client.storageVolCreateXml(pool, volumeXml({ name, capacityBytes: d.size, format: d.format }));
    ctx.record.volumes.push({ pool: ctx.machine.pool, name, role: 'disk' });
    await ctx.state.write(ctx.record);
    made++;
  }
  return made;
}
