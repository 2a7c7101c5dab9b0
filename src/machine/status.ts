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

export async function machineStatus(h: MachineHandle): Promise<StatusReport> {
  const record = await h.state.read(h.machine.name);
  if (!record?.domain) return { machine: h.machine.name, status: 'not created' };
  const live = await currentDomain(h.client, record);
  const base = { machine: h.machine.name, domain: record.domain.name, uri: record.uri };
  if (!live) return { ...base, status: 'gone' };
  const status: MachineStatus =
    live.state === DomainState.running || live.state === DomainState.blocked
      ? 'running'
      : live.state === DomainState.paused
        ? 'paused'
        : live.state === DomainState.shutdown
          ? 'shutting down'
          : live.state === DomainState.crashed
            ? 'crashed'
            : live.state === DomainState.pmSuspended
              ? 'suspended'
              : (await h.client.domainHasManagedSaveImage(live.domain))
                ? 'suspended'
                : 'shutoff';
  return { ...base, status, ...(status === 'running' && record.ip ? { ip: record.ip } : {}) };
}
