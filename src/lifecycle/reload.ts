import type { StorageVolRef } from '../libvirt/protocol/types.js';
import { machineResourceName, machineVolumeNames } from '../project/names.js';
import { UserError } from '../errors.js';
import { haltMachine } from './halt.js';
import type { MachineHandle } from '../hosts/handle.js';
import { upMachine, type UpOptions } from './up.js';
import { currentDomain } from '../hosts/live-domain.js';
import { requireRecord } from '../access/machine-ssh-config.js';
import { machineDomainXml } from './domain-xml.js';
import { ensureExtraDisks } from './machine-disks.js';
import { recordedNic } from './machine-record.js';
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

/**
 * Halts a machine, redefines its domain from the current vmenv.yaml (CPUs, memory, boot
 * options, shares, new extra disks, a larger root disk) keeping its UUID, MAC and
 * network, and brings it up again. Returns the up context with its SSH session.
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
  const growth = await rootDiskGrowth(h, resourceName);
  await haltMachine(h, { record, ...(options.force ? { force: true } : {}), ...(options.signal ? { signal: options.signal } : {}) });

  const nic = recordedNic(record, h.machine, resourceName);
  const before = await h.client.domainGetXmlDesc(live.domain);
  const ctx = { client: h.client, host: h.host, project: h.project, machine: h.machine, resourceName, nic, record, state: h.state };

  const disks = await ensureExtraDisks(ctx);
  if (disks > 0) options.onChange?.(`${disks} new disk${disks === 1 ? '' : 's'}`);
  if (growth) {
    await h.client.storageVolResize(growth.vol, growth.to);
    options.onChange?.(`disk ${gib(growth.from)} → ${gib(growth.to)} GiB`);
  }
  await h.client.domainDefineXml(await machineDomainXml(ctx, record.domain!.uuid));
  await h.client.domainSetAutostart(live.domain, h.machine.autostart);

  const after = await h.client.domainGetXmlDesc(live.domain);
  const memory = [xmlNumber(before, 'memory'), xmlNumber(after, 'memory')];
  if (memory[0] !== memory[1]) options.onChange?.(`memory ${(memory[0] ?? 0) / 1024} → ${(memory[1] ?? 0) / 1024} MiB`);
  const cpus = [xmlNumber(before, 'vcpu'), xmlNumber(after, 'vcpu')];
  if (cpus[0] !== cpus[1]) options.onChange?.(`cpus ${cpus[0] ?? '?'} → ${cpus[1] ?? '?'}`);

  return upMachine(h, options);
}

const gib = (bytes: bigint): string => (Number(bytes) / 2 ** 30).toFixed(1).replace(/\.0$/, '');

/** How the root overlay must grow for a larger `disk_size`; a smaller one is refused (disks never shrink). */
async function rootDiskGrowth(h: MachineHandle, resourceName: string): Promise<{ vol: StorageVolRef; from: bigint; to: bigint } | undefined> {
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
