import { DomainEventType, DomainShutdownFlags, DomainState } from '../libvirt/constants.js';
import { isNotFound, isOperationInvalid, LibvirtError } from '../libvirt/errors.js';
import type { DomainRef } from '../libvirt/protocol/types.js';
import { TimeoutError } from '../errors.js';
import { sleep } from '../util/sleep.js';
import type { MachineState } from '../project/state.js';
import type { MachineHandle } from '../hosts/handle.js';
import { chain, type Chain, type Step } from '../pipeline/run.js';
import { releaseHostSideStep, runVerb, type Recorded } from './verb.js';
import { currentDomain } from '../hosts/live-domain.js';
import { requireRecord, sshToMachine } from '../access/ssh-access.js';

/**
 * Waits until the domain is shut off: woken by libvirt's lifecycle events (the
 * "stopped" event), with a slow poll of its state as a backstop; false on timeout.
 */
async function waitShutoff(h: MachineHandle, domain: DomainRef, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let wake = new AbortController();
  const unsubscribe = await h.client
    .onDomainLifecycle(domain, (e) => {
      if (e.event === DomainEventType.stopped) wake.abort();
    })
    .catch(() => undefined); // no events (an old daemon): the poll alone will do
  try {
    // The state is asked once more at the deadline: a guest that stopped during the last sleep is off.
    for (;;) {
      signal?.throwIfAborted();
      try {
        if ((await h.client.domainGetState(domain)).state === DomainState.shutoff) return true;
      } catch (err) {
        if (isNotFound(err)) return true;
        throw err;
      }
      if (Date.now() >= deadline) return false;
      const both = signal ? AbortSignal.any([signal, wake.signal]) : wake.signal;
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())), both).catch(() => undefined);
      if (wake.signal.aborted) wake = new AbortController();
    }
  } finally {
    await unsubscribe?.().catch(() => undefined);
  }
}

export interface HaltOptions {
  force?: boolean;
  signal?: AbortSignal;
  record?: MachineState;
  /** What halt did on the way ("the guest agent shut it down", a fallback and why). */
  onNote?: (note: string) => void;
}

export type HaltOutcome = 'already off' | 'graceful' | 'forced';

/**
 * Shuts a machine down as `shutdown.mode` says — `poweroff` over SSH, the guest agent
 * (libvirt's shutdown with VIR_DOMAIN_SHUTDOWN_GUEST_AGENT) or the ACPI power button —,
 * falling back to the ACPI power button when that does not work, then forced off after
 * `shutdown.timeout` seconds (or at once with `force`, or `mode: destroy`).
 */
function shutDown(options: HaltOptions): Step<Recorded, { outcome: HaltOutcome }> {
  return {
    title: 'Shut down',
    run: async (ctx) => ({ outcome: await haltDomain(ctx, ctx.record, options) }),
  };
}

/** Halting: the guest shut down, then its forwarder and shared SSH connection stopped. */
export function haltSteps(options: HaltOptions = {}): Chain<Recorded, { outcome: HaltOutcome }> {
  return chain<Recorded>().then(shutDown(options)).then(releaseHostSideStep);
}

export async function haltMachine(h: MachineHandle, options: HaltOptions = {}): Promise<HaltOutcome> {
  // The caller's record, when it has one, is the one the forwarder's removal updates.
  const record = options.record ?? (await requireRecord(h));
  return (await runVerb(haltSteps(options), { ...h, record }, options.signal)).outcome;
}

/**
 * Asks the guest agent to power the guest off. libvirt answers at once with an error
 * when there is no agent ("QEMU guest agent is not connected", or not configured), and
 * otherwise holds the call until the guest has stopped (or its agent timeout). Resolves
 * to true once the domain is off, false when it is still running after `windowMs`, or
 * to libvirt's refusal.
 */
async function agentShutdown(h: MachineHandle, domain: DomainRef, windowMs: number, signal?: AbortSignal): Promise<boolean | LibvirtError> {
  const stop = new AbortController();
  const refused = h.client.domainShutdown(domain, DomainShutdownFlags.guestAgent).then(
    // Accepted: the guest is on its way down, which waitShutoff sees.
    () => new Promise<never>(() => undefined),
    (err: unknown) => {
      if (err instanceof LibvirtError) return err;
      throw err;
    },
  );
  try {
    return await Promise.race([refused, waitShutoff(h, domain, windowMs, signal ? AbortSignal.any([signal, stop.signal]) : stop.signal)]);
  } finally {
    stop.abort();
  }
}

async function haltDomain(h: MachineHandle, record: MachineState, options: HaltOptions): Promise<HaltOutcome> {
  const note = options.onNote ?? ((): void => undefined);
  const live = await currentDomain(h.client, record);
  if (!live) return 'already off';
  if (live.state === DomainState.shutoff) {
    // A saved machine is off, but `up` would restore it: halting it drops the saved memory.
    if (!(await h.client.domainHasManagedSaveImage(live.domain))) return 'already off';
    await h.client.domainManagedSaveRemove(live.domain);
    return 'forced';
  }
  if (live.state === DomainState.paused && !options.force) {
    await h.client.domainResume(live.domain);
    live.state = DomainState.running;
  }
  const timeoutMs = h.machine.shutdown.timeout * 1000;
  const mode = h.machine.shutdown.mode;
  if (!options.force && mode !== 'destroy') {
    let off = false;
    let acpiWaitMs = timeoutMs;
    if (mode === 'ssh' && live.state === DomainState.running) {
      const session = await sshToMachine(h, options.signal).catch(() => undefined);
      if (session) {
        // The channel dies with the guest rather than closing: do not wait on it.
        const sent = session.exec('sudo -n poweroff || poweroff').catch(() => undefined);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([sent, new Promise((r) => (timer = setTimeout(r, 2000)))]);
        clearTimeout(timer);
        void session.close().catch(() => undefined);
      }
      off = await waitShutoff(h, live.domain, Math.min(timeoutMs, 2000), options.signal);
    } else if (mode === 'agent' && live.state === DomainState.running) {
      // libvirt holds an accepted request until the guest is off, and forever with a hung
      // agent: half of shutdown.timeout for the agent, the other half for the power button.
      const windowMs = Math.round(timeoutMs / 2);
      const asked = Date.now();
      const answer = await agentShutdown(h, live.domain, windowMs, options.signal);
      if (answer === true) {
        note('the guest agent shut it down');
        return 'graceful';
      }
      // The power button gets what is left of shutdown.timeout, also after a late refusal.
      acpiWaitMs = Math.max(0, timeoutMs - (Date.now() - asked));
      note(
        answer === false
          ? `still running ${windowMs / 1000} s after asking the guest agent: pressing the ACPI power button`
          : `the guest agent cannot shut it down (${answer.message}): pressing the ACPI power button`,
      );
    }
    if (!off) {
      await h.client.domainShutdown(live.domain, DomainShutdownFlags.acpiPowerButton).catch((err: unknown) => {
        if (!isOperationInvalid(err)) throw err;
      });
    }
    if (await waitShutoff(h, live.domain, acpiWaitMs, options.signal)) return 'graceful';
  }
  await h.client.domainDestroy(live.domain).catch((err: unknown) => {
    if (!isOperationInvalid(err)) throw err;
  });
  if (!(await waitShutoff(h, live.domain, 10_000, options.signal))) {
    throw new TimeoutError(`domain ${record.domain!.name} to power off`, 10_000);
  }
  return 'forced';
}
