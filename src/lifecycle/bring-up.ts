import type { MachineHandle } from '../hosts/handle.js';
import { mountShares, withShareSources } from '../sync/mounts.js';
import { syncAndProvision, type ProvisionOptions } from '../provision/provision.js';
import type { Reached } from './up-context.js';

/**
 * What `up` and `reload` do around bringing a machine up (`bringUp`): its shared folders'
 * sources ready first, then the shares mounted, the folders synced and the provisioners
 * run over the session the bring-up opened, which is closed at the end.
 */
export async function bringUpAndProvision(h: MachineHandle, bringUp: () => Promise<Reached>, options: ProvisionOptions): Promise<void> {
  const ctx = await withShareSources(h, bringUp);
  try {
    await mountShares(h, ctx.session, options.signal ? { signal: options.signal } : {});
    await syncAndProvision(h, ctx, options);
  } finally {
    await ctx.session.close();
  }
}
