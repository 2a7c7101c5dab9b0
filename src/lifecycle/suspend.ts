import type { SuspendMode } from '../config/types.js';
import { DomainState } from '../libvirt/constants.js';
import { UserError } from '../errors.js';
import type { MachineHandle } from '../hosts/handle.js';
import type { DomainRef } from '../libvirt/protocol/types.js';
import { chain, type Chain, type Step } from '../pipeline/run.js';
import { releaseHostSideStep, runVerb, type Recorded } from './verb.js';
import type { UpOptions } from './up.js';
import { currentDomain } from '../hosts/live-domain.js';
import { requireRecord } from '../access/machine-ssh-config.js';
import { liveStatus, machineStatus } from '../hosts/machine-status.js';

export type SuspendOutcome = 'paused' | 'saved' | 'already suspended';

/**
 * Suspends a running machine: `pause` keeps its memory in the host (instant resume),
 * `managedsave` writes it to disk and frees the host's memory.
 */
export async function suspendMachine(h: MachineHandle, mode: SuspendMode): Promise<SuspendOutcome> {
  const record = await requireRecord(h);
  const live = await currentDomain(h.client, record);
  if (!live) {
    throw new UserError(`machine '${h.machine.name}' has state, but its domain is gone`, { hint: `Run 'vmenv destroy -f ${h.machine.name}' to clear it.` });
  }
  const status = await liveStatus(h.client, live);
  if (status === 'suspended') return 'already suspended';
  if (status === 'paused' && mode === 'pause') return 'already suspended';
  if (status !== 'running' && status !== 'paused') {
    throw new UserError(`machine '${h.machine.name}' is ${status}: only a running machine can be suspended`, { hint: `Run 'vmenv up ${h.machine.name}' first.` });
  }
  const done = await runVerb(suspendSteps(live, mode), { ...h, record });
  return done.outcome;
}

function suspendDomain(live: { domain: DomainRef; state: number }, mode: SuspendMode): Step<Recorded, { outcome: SuspendOutcome }> {
  return {
    title: mode === 'managedsave' ? 'Save the memory to disk' : 'Pause the domain',
    async run(ctx) {
      if (mode === 'managedsave') {
        await ctx.client.domainManagedSave(live.domain);
        return { outcome: 'saved' };
      }
      if (live.state !== DomainState.paused) await ctx.client.domainSuspend(live.domain);
      return { outcome: 'paused' };
    },
  };
}

/** Suspending a running (or paused) domain: the forwarder goes with the guest, and comes back with `resume` (which finds the address again). */
export function suspendSteps(live: { domain: DomainRef; state: number }, mode: SuspendMode): Chain<Recorded, { outcome: SuspendOutcome }> {
  return chain<Recorded>().then(releaseHostSideStep).then(suspendDomain(live, mode));
}

/** Resumes a suspended machine (paused or saved) and waits until SSH answers again. */
export async function resumeMachine(h: MachineHandle, options: UpOptions = {}): Promise<'resumed' | 'already running'> {
  const { status } = await machineStatus(h, await requireRecord(h));
  if (status === 'running') return 'already running';
  if (status !== 'paused' && status !== 'suspended') {
    throw new UserError(`machine '${h.machine.name}' is ${status}, not suspended`, { hint: `Run 'vmenv up ${h.machine.name}' to start it.` });
  }
  // The up pipeline is loaded only for a machine to resume.
  const { upMachine } = await import('./up.js');
  const ctx = await upMachine(h, options);
  await ctx.session.close();
  return 'resumed';
}
