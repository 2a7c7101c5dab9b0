import { formatUuid, type DomainRef, type StorageVolRef } from '../libvirt/protocol/types.js';
import { chain, type Chain, type Step } from '../pipeline/run.js';
import { machineResourceName, machineVolumeNames } from '../project/names.js';
import { UserError } from '../errors.js';
import { haltSteps } from './halt.js';
import { runVerb, type Recorded } from './verb.js';
import type { MachineHandle } from '../hosts/handle.js';
import { upMachine, type UpOptions } from './up.js';
import { currentDomain } from '../hosts/live-domain.js';
import { requireRecord } from '../access/machine-ssh-config.js';
import { machineDomainXml } from './domain-xml.js';
import { ensureExtraDisks } from './machine-disks.js';
import { recordedNics } from './machine-record.js';
import type { Reached } from './up-context.js';

export interface ReloadOptions extends UpOptions {
  /** Power off at once instead of shutting down gracefully. */
  force?: boolean;
  /** Told each change applied to the domain ("memory 256 → 512 MiB"). */
  onChange?: (change: string) => void;
}

function xmlNumber(xml: string, tag: string): number | undefined {
  const m = new RegExp(`<${tag}\\b[^>]*>(\\d+)</${tag}>`).exec(xml);
  return m ? Number(m[1]) : undefined;
}

/** What reloading works on: the machine, its domain, and how its root disk must grow. */
interface Reloading extends Recorded {
  domain: DomainRef;
  resourceName: string;
  growth: RootGrowth | undefined;
}

/** Redefines the domain from the current vmenv.yaml, keeping its UUID, MAC and network, and says what changed. */
function applyConfig(onChange: (change: string) => void): Step<Reloading> {
  return {
    title: 'Apply vmenv.yaml to the domain',
    async run(ctx) {
      const nics = recordedNics(ctx.record, ctx.machine, ctx.resourceName);
      const before = await ctx.client.domainGetXmlDesc(ctx.domain);
      const disks = await ensureExtraDisks(ctx);
      if (disks > 0) onChange(`${disks} new disk${disks === 1 ? '' : 's'}`);
      if (ctx.growth) {
        await ctx.client.storageVolResize(ctx.growth.vol, ctx.growth.to);
        onChange(`disk ${gib(ctx.growth.from)} → ${gib(ctx.growth.to)} GiB`);
      }
      await ctx.client.domainDefineXml(await machineDomainXml({ ...ctx, nics }, formatUuid(ctx.domain.uuid)));
      await ctx.client.domainSetAutostart(ctx.domain, ctx.machine.autostart);

      const after = await ctx.client.domainGetXmlDesc(ctx.domain);
      const memory = [xmlNumber(before, 'memory'), xmlNumber(after, 'memory')];
      if (memory[0] !== memory[1]) onChange(`memory ${(memory[0] ?? 0) / 1024} → ${(memory[1] ?? 0) / 1024} MiB`);
      const cpus = [xmlNumber(before, 'vcpu'), xmlNumber(after, 'vcpu')];
      if (cpus[0] !== cpus[1]) onChange(`cpus ${cpus[0] ?? '?'} → ${cpus[1] ?? '?'}`);
    },
  };
}

/** Reloading up to the new definition: halted (as `halt` does), then redefined. */
function reloadSteps(options: ReloadOptions): Chain<Reloading, unknown> {
  const halt = haltSteps({ ...(options.force ? { force: true } : {}), ...(options.signal ? { signal: options.signal } : {}) });
  return chain<Reloading>()
    .concat(halt)
    .then(applyConfig(options.onChange ?? ((): void => undefined)));
}

/**
 * Halts a machine, redefines its domain from the current vmenv.yaml (CPUs, memory, boot
 * options, shares, new extra disks, a larger root disk) keeping its UUID, MAC and
 * network, and brings it up again. Returns it up, with its SSH session.
 */
export async function reloadMachine(h: MachineHandle, options: ReloadOptions = {}): Promise<Reached> {
  const record = await requireRecord(h);
  const live = await currentDomain(h.client, record);
  if (!live) {
    throw new UserError(`machine '${h.machine.name}' has state, but its domain ${record.domain!.name} is gone`, {
      hint: `Run 'vmenv destroy -f ${h.machine.name}', then 'vmenv up'.`,
    });
  }
  const resourceName = machineResourceName(h.project.dir, h.machine.name);
  // Before anything changes: a disk_size that would shrink the disk is refused here.
  const growth = await rootDiskGrowth(h, resourceName);
  const ctx: Reloading = { ...h, record, domain: live.domain, resourceName, growth };
  await runVerb(reloadSteps(options), ctx, options.signal);
  return upMachine(h, options);
}

interface RootGrowth {
  vol: StorageVolRef;
  from: bigint;
  to: bigint;
}

const gib = (bytes: bigint): string => (Number(bytes) / 2 ** 30).toFixed(1).replace(/\.0$/, '');

/** How the root overlay must grow for a larger `disk_size`; a smaller one is refused (disks never shrink). */
async function rootDiskGrowth(h: MachineHandle, resourceName: string): Promise<RootGrowth | undefined> {
  if (h.machine.disk_size === undefined) return undefined;
  const pool = await h.client.storagePoolLookupByName(h.machine.pool);
  const vol = await h.client.storageVolLookupByName(pool, machineVolumeNames(resourceName).root);
  const { capacity } = await h.client.storageVolGetInfo(vol);
  const wanted = BigInt(h.machine.disk_size);
  if (wanted === capacity) return undefined;
  if (wanted < capacity) {
    throw new UserError(`disk_size ${gib(wanted)} GiB would shrink the disk of machine '${h.machine.name}' (${gib(capacity)} GiB now)`, {
      hint: 'Disks never shrink: raise disk_size back, or destroy the machine and bring it up again.',
    });
  }
  return { vol, from: capacity, to: wanted };
}
