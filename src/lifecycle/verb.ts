/**
 * What the verbs other than `up` (halt, suspend, reload, destroy) work on, and how they
 * run their steps: silently — their commands print one line per machine themselves —
 * and without rollback, as each step leaves the machine in a state of its own.
 */
import type { MachineHandle } from '../hosts/handle.js';
import type { MachineState } from '../project/state.js';
import { runChain, type Chain, type Step } from '../pipeline/run.js';
import { releaseHostSide } from './release-host-side.js';

/** A machine with its state record: the record the steps update. */
export interface Recorded extends MachineHandle {
  record: MachineState;
}

export function runVerb<S extends Recorded, C>(steps: Chain<S, C>, ctx: S, signal?: AbortSignal): Promise<S & C> {
  return runChain(steps, ctx, { renderer: 'silent', rollbackOnError: false, ...(signal ? { signal } : {}) });
}

/** Stops what runs on the host for a machine that goes down: its port forwarder and shared SSH connection. */
export const releaseHostSideStep: Step<Recorded> = {
  title: 'Release the host side',
  run: (ctx) => releaseHostSide(ctx.state, ctx.record),
};
