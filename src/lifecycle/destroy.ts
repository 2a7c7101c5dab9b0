import { DomainUndefineFlags } from '../libvirt/constants.js';
import { isNotFound, isOperationInvalid } from '../libvirt/errors.js';
import { unregisterMachine } from '../project/machine-index.js';
import type { MachineHandle } from '../hosts/handle.js';
import { removeNetworkIfUnused } from '../net/network.js';
import { chain, type Chain, type Step } from '../pipeline/run.js';
import { deleteVolume } from './machine-disks.js';
import { releaseHostSideStep, runVerb, type Recorded } from './verb.js';

const removeDomain: Step<Recorded> = {
  title: 'Remove the domain',
  async run(ctx) {
    if (!ctx.record.domain) return; // a machine whose making stopped before its domain
    try {
      const d = await ctx.client.domainLookupByName(ctx.record.domain.name);
      await ctx.client.domainDestroy(d).catch((err: unknown) => {
        if (!isOperationInvalid(err)) throw err;
      });
      await ctx.client.domainUndefine(d, DomainUndefineFlags.nvram | DomainUndefineFlags.snapshotsMetadata | DomainUndefineFlags.managedSave);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};

const removeVolumes: Step<Recorded> = {
  title: 'Remove the volumes',
  async run(ctx) {
    for (const v of ctx.record.volumes) await deleteVolume(ctx.client, v.pool, v.name);
  },
};

const removeNetworks: Step<Recorded> = {
  title: 'Remove the networks vmenv created, when unused',
  async run(ctx) {
    for (const n of ctx.record.networks.filter((x) => x.created)) await removeNetworkIfUnused(ctx.client, n.name);
  },
};

const forgetMachine: Step<Recorded> = {
  title: 'Forget the machine',
  async run(ctx) {
    if (ctx.record.domain) await unregisterMachine(ctx.record.domain.uuid);
    await ctx.state.remove(ctx.machine.name);
  },
};

/** Destroying: what runs on the host, the domain (with nvram, snapshots, managed save), the volumes, created networks, the state. */
export function destroySteps(): Chain<Recorded, Recorded> {
  return chain<Recorded>().then(releaseHostSideStep).then(removeDomain).then(removeVolumes).then(removeNetworks).then(forgetMachine);
}

/**
 * Removes a machine: its domain (with nvram, snapshots, managed save), its volumes, the
 * networks vmenv created for it when no other domain uses them, and its state. Never a
 * box volume. Safe to run on a half-made machine.
 */
export async function destroyMachine(h: MachineHandle): Promise<void> {
  const record = await h.state.read(h.machine.name);
  if (!record) return;
  await runVerb(destroySteps(), { ...h, record });
}
