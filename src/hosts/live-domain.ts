import type { LibvirtClient } from '../libvirt/client.js';
import { isNotFound } from '../libvirt/errors.js';
import type { DomainRef } from '../libvirt/protocol/types.js';
import type { MachineState } from '../project/state.js';

/** The machine's domain as libvirt has it now, with its state; undefined when it is gone. */
export async function currentDomain(client: LibvirtClient, record: MachineState): Promise<{ domain: DomainRef; state: number } | undefined> {
  if (!record.domain) return undefined;
  try {
    const domain = await client.domainLookupByName(record.domain.name);
    return { domain, state: (await client.domainGetState(domain)).state };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
