import { DomainState } from '../libvirt/constants.js';
import type { LibvirtClient } from '../libvirt/client.js';
import type { DomainRef } from '../libvirt/protocol/types.js';
import type { MachineState } from '../project/state.js';
import type { MachineHandle } from './handle.js';
import { currentDomain } from './live-domain.js';

export type MachineStatus = 'not created' | 'running' | 'shutoff' | 'paused' | 'suspended' | 'crashed' | 'shutting down' | 'gone';

export interface StatusReport {
  machine: string;
  status: MachineStatus;
  domain?: string;
  ip?: string;
  uri?: string;
}

/**
 * A domain's state in the words of `vmenv status`; a shut-off domain with a managed save
 * image is suspended. Undefined for a state libvirt reports only transiently (nostate).
 */
export function domainStatus(state: number, managedSave: boolean): MachineStatus | undefined {
  switch (state) {
    case DomainState.running:
    case DomainState.blocked:
      return 'running';
    case DomainState.paused:
      return 'paused';
    case DomainState.shutdown:
      return 'shutting down';
    case DomainState.shutoff:
      return managedSave ? 'suspended' : 'shutoff';
    case DomainState.crashed:
      return 'crashed';
    case DomainState.pmSuspended:
      return 'suspended';
    default:
      return undefined;
  }
}

/** The status of a domain as found; only one that is off (or in no clear state) is asked about a saved memory image. */
export async function liveStatus(client: LibvirtClient, live: { domain: DomainRef; state: number }): Promise<MachineStatus> {
  const known = domainStatus(live.state, false);
  if (known !== undefined && known !== 'shutoff') return known;
  return (await client.domainHasManagedSaveImage(live.domain)) ? 'suspended' : 'shutoff';
}

/** The machine's status; `record` is its state when the caller has read it already. */
export async function machineStatus(h: Pick<MachineHandle, 'machine' | 'state' | 'client'>, record?: MachineState): Promise<StatusReport> {
  record ??= await h.state.read(h.machine.name);
  if (!record?.domain) return { machine: h.machine.name, status: 'not created' };
  const live = await currentDomain(h.client, record);
  const base = { machine: h.machine.name, domain: record.domain.name, uri: record.uri };
  if (!live) return { ...base, status: 'gone' };
  const status = await liveStatus(h.client, live);
  return { ...base, status, ...(status === 'running' && record.ip ? { ip: record.ip } : {}) };
}
