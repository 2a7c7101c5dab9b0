/** Starting (or resuming) a machine whose domain exists. */
import { DomainState } from '../libvirt/constants.js';
import { formatUuid } from '../libvirt/protocol/types.js';
import { stopNatForwarder } from '../net/forwarding.js';
import { choosePorts, freeLoopbackPort, isPortFree } from '../net/ports.js';
import { chain, type Chain, type Step } from '../pipeline/run.js';
import { machineDomainXml } from './domain-xml.js';
import { reachSteps } from './reach-steps.js';
import { say, save, type Defined, type Reached } from './up-context.js';

/**
 * Before a shut-off machine starts again: its forwarded host ports (SSH, then
 * forwarded_ports) may have been taken meanwhile. Re-chooses those that are, records
 * them and redefines the domain with them. Returns whether anything changed.
 */
export async function refreshForwardedPorts(ctx: Defined): Promise<boolean> {
  const nic = ctx.nics[0];
  if (nic.mode !== 'user') {
    // A guest that shut down on its own left its forwarder running, on these very ports.
    await stopNatForwarder(ctx.state, ctx.record);
    const ports = await choosePorts(ctx.machine.forwarded_ports, { previous: ctx.record.ports ?? [], onCorrected: (m) => say(ctx, m) });
    if (JSON.stringify(ports) !== JSON.stringify(ctx.record.ports ?? [])) await save(ctx, (r) => (r.ports = ports));
    return false;
  }
  let sshHostPort = nic.sshHostPort;
  if (!(await isPortFree('127.0.0.1', sshHostPort, 'tcp'))) {
    sshHostPort = await freeLoopbackPort();
    say(ctx, `SSH's host port ${nic.sshHostPort} is in use: SSH is on 127.0.0.1:${sshHostPort} now`);
  }
  const ports = await choosePorts(ctx.machine.forwarded_ports, { previous: nic.forwards ?? [], onCorrected: (m) => say(ctx, m) });
  if (sshHostPort === nic.sshHostPort && JSON.stringify(ports) === JSON.stringify(nic.forwards ?? [])) return false;
  ctx.nics = [{ mode: 'user', mac: nic.mac, sshHostPort, forwards: ports }, ...ctx.nics.slice(1)];
  await save(ctx, (r) => {
    r.nics = ctx.nics;
    r.ports = ports;
  });
  await ctx.client.domainDefineXml(await machineDomainXml(ctx, formatUuid(ctx.domain.uuid)));
  return true;
}

/** Starts a shut-off domain (taking new ports where the old are taken), or resumes a paused one; skipped when it runs. */
function startDomain(state: number): Step<Defined> {
  return {
    title: state === DomainState.paused ? 'Resume the domain' : 'Start the domain',
    skip: () => state === DomainState.running || state === DomainState.blocked,
    async run(ctx) {
      if (state === DomainState.paused) {
        await ctx.client.domainResume(ctx.domain);
        return;
      }
      // A saved machine restores its own definition; only a fresh start can take new ports.
      if (!(await ctx.client.domainHasManagedSaveImage(ctx.domain))) await refreshForwardedPorts(ctx);
      ctx.domain = await ctx.client.domainCreate(ctx.domain);
    },
  };
}

/** From a domain in `state` (as libvirt reported it) to a machine that is up. */
export function startSteps(state: number): Chain<Defined, Reached> {
  return chain<Defined>().then(startDomain(state)).concat(reachSteps());
}
