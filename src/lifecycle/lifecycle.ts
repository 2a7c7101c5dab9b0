/**
 * Bringing a machine up: create, start, resume or reconnect. The other operations live
 * in modules of their own (handle, status, halt, suspend, reload, destroy, ssh-access)
 * so that a command loads only what it runs: only `up`, `reload` and `resume` load the
 * `up` pipeline.
 */
import { DomainState } from '../libvirt/constants.js';
import { machineResourceName } from '../project/names.js';
import { UserError } from '../errors.js';
import type { MachineHandle } from '../hosts/handle.js';
import { currentDomain } from '../hosts/live-domain.js';
import { fallbackLoginKeys } from '../access/login.js';
import { runPipeline, type PipelineOptions, type Step } from './pipeline.js';
import { createMachineSteps, machineRecord, reachSteps, recordedNic, refreshForwardedPorts, type UpContext } from './up.js';

export interface UpOptions extends Pick<PipelineOptions, 'renderer' | 'signal'> {
  /** Keep what a failed first `up` made (`--no-destroy-on-error`). */
  keepOnError?: boolean;
}

/**
 * Brings one machine up: creates it when it does not exist, starts it when shut off,
 * resumes it when paused, and only reconnects when it runs. Returns an SSH session.
 */
export async function upMachine(h: MachineHandle, options: UpOptions = {}): Promise<UpContext> {
  const { record, isNew } = await machineRecord(h.state, h.machine, h.client.uri);
  // Before anything is made: a missing or encrypted ssh.private_key_path fails here.
  const fallbackKeys = await fallbackLoginKeys(h.machine);
  const ctx: UpContext = {
    project: h.project,
    machine: h.machine,
    state: h.state,
    client: h.client,
    host: h.host,
    resourceName: machineResourceName(h.project.dir, h.machine.name),
    record,
    fallbackKeys,
  };
  const live = isNew ? undefined : await currentDomain(h.client, record);
  let steps: Step<UpContext>[];
  if (!live) {
    if (!isNew && record.domain) {
      throw new UserError(`machine '${h.machine.name}' has state, but its domain ${record.domain.name} is gone from ${record.uri}`, {
        hint: `Run 'vmenv destroy -f ${h.machine.name}' to clear what is left, then 'vmenv up' again.`,
      });
    }
    await h.state.write(record);
    steps = createMachineSteps();
  } else {
    ctx.domain = live.domain;
    ctx.nic = recordedNic(record, h.machine, ctx.resourceName);
    if (ctx.nic.mode === 'user') ctx.sshPort = ctx.nic.sshHostPort;
    else ctx.network = await h.client.networkLookupByName(ctx.nic.network);
    const start: Step<UpContext> = {
      title: live.state === DomainState.paused ? 'Resume the domain' : 'Start the domain',
      skip: () => live.state === DomainState.running || live.state === DomainState.blocked,
      async run(c) {
        if (live.state === DomainState.paused) {
          await c.client.domainResume(c.domain!);
          return;
        }
        // A saved machine restores its own definition; only a fresh start can take new ports.
        if (!(await c.client.domainHasManagedSaveImage(c.domain!))) await refreshForwardedPorts(c);
        c.domain = await c.client.domainCreate(c.domain!);
      },
    };
    steps = [start, ...reachSteps()];
  }
  try {
    await runPipeline(steps, ctx, {
      ...(options.renderer ? { renderer: options.renderer } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      rollbackOnError: isNew && !options.keepOnError,
    });
  } catch (err) {
    // A first `up` that failed and was rolled back leaves no state behind either.
    if (isNew && !options.keepOnError && !ctx.record.domain && ctx.record.volumes.length === 0) await h.state.remove(h.machine.name);
    throw err;
  }
  return ctx;
}
