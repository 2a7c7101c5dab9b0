/**
 * Bringing a machine up: create, start, resume or reconnect. The other operations live
 * in modules of their own (halt, suspend, reload, destroy) so that a command loads only
 * what it runs: only `up`, `reload` and `resume` load the `up` steps.
 */
import { machineResourceName } from '../project/names.js';
import { UserError } from '../errors.js';
import type { MachineHandle } from '../hosts/handle.js';
import { currentDomain } from '../hosts/live-domain.js';
import { fallbackLoginKeys } from '../access/login.js';
import { runChain, type PipelineOptions } from '../pipeline/run.js';
import { createSteps } from './create-steps.js';
import { machineRecord, recordedNics } from './machine-record.js';
import { reachSteps } from './reach-steps.js';
import { startSteps } from './start-steps.js';
import type { Defined, Reached, UpBase } from './up-context.js';

export interface UpOptions extends Pick<PipelineOptions, 'renderer' | 'signal'> {
  /** Keep what a failed first `up` made (`--no-destroy-on-error`). */
  keepOnError?: boolean;
}

/**
 * Brings one machine up: creates it when it does not exist, starts it when shut off,
 * resumes it when paused, and only reconnects when it runs. Returns it with an SSH session.
 */
export async function upMachine(h: MachineHandle, options: UpOptions = {}): Promise<Reached> {
  const { record, isNew } = await machineRecord(h.state, h.machine, h.client.uri);
  // Before anything is made: a missing or encrypted ssh.private_key_path fails here.
  const fallbackKeys = await fallbackLoginKeys(h.machine);
  const base: UpBase = {
    project: h.project,
    machine: h.machine,
    state: h.state,
    client: h.client,
    host: h.host,
    resourceName: machineResourceName(h.project.dir, h.machine.name),
    record,
    fallbackKeys,
  };
  const run = {
    ...(options.renderer ? { renderer: options.renderer } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    rollbackOnError: isNew && !options.keepOnError,
  };
  const live = isNew ? undefined : await currentDomain(h.client, record);
  if (live) {
    const nics = recordedNics(record, h.machine, base.resourceName);
    const defined: Defined = { ...base, domain: live.domain, nics };
    if (nics[0].mode === 'nat') defined.network = await h.client.networkLookupByName(nics[0].network);
    return runChain(startSteps(live.state), defined, run);
  }
  if (!isNew && record.domain) {
    throw new UserError(`machine '${h.machine.name}' has state, but its domain ${record.domain.name} is gone from ${record.uri}`, {
      hint: `Run 'vmenv destroy -f ${h.machine.name}' to clear what is left, then 'vmenv up' again.`,
    });
  }
  await h.state.write(record);
  try {
    return await runChain(createSteps().concat(reachSteps()), base, run);
  } catch (err) {
    // A first `up` that failed and was rolled back leaves no state behind either.
    if (isNew && !options.keepOnError && !record.domain && record.volumes.length === 0) await h.state.remove(h.machine.name);
    throw err;
  }
}
