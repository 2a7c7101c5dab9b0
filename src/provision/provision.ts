import type { Provisioner } from '../config/types.js';
import type { SshSession } from '../ssh/index.js';
import type { AnsibleBatch } from './ansible.js';
import { runProvisioner } from './registry.js';
import { limitsToAll } from './ansible-inventory.js';
import type { MachineHandle } from '../hosts/handle.js';
import { sshToMachine } from '../access/ssh-access.js';
import { syncFolders } from '../sync/sync.js';

export interface ProvisionOptions {
  signal?: AbortSignal;
  /** --provision (true), --no-provision (false), or neither. */
  provision?: boolean | undefined;
  /** --provision-with: run only these, by name or type. */
  only?: readonly string[];
  /** Where provisioner output goes, each line prefixed with the machine's name. */
  out?: NodeJS.WritableStream;
  /**
   * Takes the ansible provisioners with `limit: all`, to run once for all the machines
   * of the command (see withAnsibleBatch); without it they run for this machine alone.
   */
  ansibleBatch?: AnsibleBatch;
}

export { AnsibleBatch, withAnsibleBatch } from './ansible.js';

function provisionerLabel(p: Provisioner, i: number): string {
  return p.name ?? `${p.type} #${i + 1}`;
}

/** Which provisioners this run executes, by vmenv's rules (first up, --provision, run: once|always|never, --provision-with). */
export function provisionersToRun(all: readonly Provisioner[], alreadyProvisioned: boolean, options: Pick<ProvisionOptions, 'provision' | 'only'>): Provisioner[] {
  if (options.provision === false) return [];
  const only = options.only ?? [];
  return all.filter((p, i) => {
    if (only.length > 0) return only.includes(provisionerLabel(p, i)) || only.includes(p.name ?? '') || only.includes(p.type);
    if (p.run === 'never') return false;
    if (p.run === 'always') return true;
    return !alreadyProvisioned || options.provision === true;
  });
}

/** Runs the chosen provisioners over an open session, in order; the first failure stops them. */
export async function runProvisioners(h: MachineHandle, session: SshSession, list: readonly Provisioner[], options: ProvisionOptions = {}): Promise<void> {
  const out = options.out ?? process.stdout;
  for (const [i, p] of list.entries()) {
    const label = provisionerLabel(p, h.machine.provision.indexOf(p) >= 0 ? h.machine.provision.indexOf(p) : i);
    if (p.type === 'ansible' && limitsToAll(p) && options.ansibleBatch) {
      await options.ansibleBatch.add(h, p, label);
      out.write(`${h.machine.name}: provisioner '${label}' (ansible, limit: all) runs once for all machines, after their other provisioners\n`);
      continue;
    }
    out.write(`${h.machine.name}: running provisioner '${label}' (${p.type})\n`);
    await runProvisioner(p, { h, session, label, out, ...(options.signal ? { signal: options.signal } : {}) });
  }
}

/** Runs the provisioners that are due on a machine and records that it was provisioned. */
export async function provisionMachine(h: MachineHandle, session: SshSession, options: ProvisionOptions = {}): Promise<number> {
  const record = await h.state.read(h.machine.name);
  const list = provisionersToRun(h.machine.provision, record?.provisioned ?? false, options);
  await runProvisioners(h, session, list, options);
  if (list.length > 0 || !record?.provisioned) {
    await h.state.update(h.machine.name, (r) => {
      r.provisioned = true;
    });
  }
  return list.length;
}

/** After `up` and `reload`: rsync the synced folders, then run the provisioners that are due. */
export async function syncAndProvision(h: MachineHandle, ctx: { session?: SshSession | undefined }, options: ProvisionOptions = {}): Promise<void> {
  const session = ctx.session ?? (await sshToMachine(h, options.signal));
  try {
    await syncFolders(h, session, options.signal);
    await provisionMachine(h, session, options);
  } finally {
    if (!ctx.session) await session.close();
  }
}
