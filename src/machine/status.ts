import { DomainState } from '../libvirt/constants.js';
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

export async function machineStatus(h: MachineHandle): Promise<StatusReport> {
  const record = await h.state.read(h.machine.name);
  if (!record?.domain) return { machine: h.machine.name, status: 'not created' };
  const live = await currentDomain(h.client, record);
  const base = { machine: h.machine.name, domain: record.domain.name, uri: record.uri };
  if (!live) return { ...base, status: 'gone' };
  const known = domainStatus(live.state, false);
  // Only a domain that is off (or in no clear state) may have a saved memory image to ask about.
  const status: MachineStatus =
    known !== undefined && known !== 'shutoff' ? known : (await h.client.domainHasManagedSaveImage(live.domain)) ? 'suspended' : 'shutoff';
  return { ...base, status, ...(status === 'running' && record.ip ? { ip: record.ip } : {}) };
}
