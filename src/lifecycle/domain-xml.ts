import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { MachineConfig } from '../config/types.js';
import { detectVirtualization } from '../hosts/virtualization.js';
import { domainXml } from '../libvirt/xml/index.js';
import { extraDiskVolumeNames, machineVolumeNames } from '../project/names.js';
import type { MachineNic } from '../project/state.js';
import { machineDomainSpec } from './domain-plan.js';
import type { UpBase } from './up-context.js';

let hostVirtualization: ReturnType<typeof detectVirtualization> | undefined;

/** kvm where the host can run it, else qemu with the reason why; `driver:` in vmenv.yaml wins. */
export async function domainType(machine: MachineConfig): Promise<{ type: 'kvm' | 'qemu'; note?: string }> {
  if (machine.driver !== 'auto') return { type: machine.driver };
  // Asked once per process: the define step wants the note, and the domain XML the type.
  hostVirtualization ??= detectVirtualization();
  const virt = await hostVirtualization;
  return virt.domainType === 'kvm' ? { type: 'kvm' } : { type: 'qemu', note: `software emulation, slower: ${virt.reason ?? 'no usable KVM'}` };
}

/**
 * The machine's domain XML from its current config and recorded resources; with `uuid`,
 * the definition that replaces an existing domain's (reload).
 */
export async function machineDomainXml(
  ctx: Pick<UpBase, 'host' | 'project' | 'machine' | 'resourceName' | 'record'> & { nics: readonly MachineNic[] },
  uuid?: string,
): Promise<string> {
  const { type } = await domainType(ctx.machine);
  const names = machineVolumeNames(ctx.resourceName);
  const log = ctx.host.serialLogPath(ctx.resourceName);
  const spec = machineDomainSpec({
    name: ctx.resourceName,
    type,
    projectDir: ctx.project.dir,
    // Never a URL's credentials or query: the name the box is stored under.
    ...(ctx.record.box ? { boxName: ctx.record.box.name } : {}),
    machine: ctx.machine,
    volumes: {
      pool: ctx.machine.pool,
      root: names.root,
      seed: names.seed,
      extra: extraDiskVolumeNames(ctx.resourceName, ctx.machine.disks, ctx.record.volumes.map((v) => v.name)),
      // The overlays on the box's other disks, as recorded (in the box's order).
      boxDisks: ctx.record.volumes.filter((v) => v.role === 'box-disk').map((v) => v.name),
    },
    nics: ctx.nics,
    ...(log ? { serialLog: log } : {}),
  });
  const agent = ctx.host.agentSocketPath(ctx.resourceName);
  if (agent) await mkdir(dirname(agent), { recursive: true, mode: 0o700 });
  return domainXml({ ...spec, ...(uuid === undefined ? {} : { uuid }), ...(agent ? { guestAgentSocket: agent } : {}) });
}
