import { isAbsolute, resolve } from 'node:path';
import type { Provisioner, ShellProvisioner } from '../config/types.js';
import { shQuote } from '../ssh/known-hosts.js';
import type { SshSession } from '../ssh/index.js';
import { ExitCode, UserError } from '../errors.js';
import { provisionWithAnsible, type AnsibleBatch } from './ansible.js';
import { limitsToAll } from './ansible-inventory.js';
import type { MachineHandle } from '../hosts/handle.js';
import { sshToMachine } from '../access/ssh-access.js';
import { prefixer } from '../util/prefixer.js';
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

async function runShell(h: MachineHandle, session: SshSession, p: ShellProvisioner, label: string, out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void> {
  let script = p.inline;
  if (p.path !== undefined) {
    const local = isAbsolute(p.path) ? p.path : resolve(h.project.dir, p.path);
    script = await import('node:fs/promises').then((fs) => fs.readFile(local, 'utf8'));
  }
  const remote = `/tmp/vmenv-provision-${process.pid}-${Date.now().toString(36)}.sh`;
  const env = Object.entries(p.env).map(([k, v]) => `export ${k}=${shQuote(v)}`).join('\n');
  const upload = await session.exec(`cat > ${remote} && chmod 0755 ${remote}`, { stdin: `${script ?? ''}\n` });
  if (upload.code !== 0) throw new UserError(`could not copy provisioner '${label}' into machine '${h.machine.name}'`);
  const command = `${env ? `${env}\n` : ''}${p.privileged ? 'sudo -n -E ' : ''}${remote} ${p.args.map(shQuote).join(' ')}; s=$?; rm -f ${remote}; exit $s`;
  const stdout = prefixer(`${h.machine.name}: `, out);
  const stderr = prefixer(`${h.machine.name}: `, out);
  const r = await session.exec(command, { onStdout: (c) => stdout.write(c), onStderr: (c) => stderr.write(c), ...(signal ? { signal } : {}) });
  stdout.end();
  stderr.end();
  if (r.code !== 0) {
    throw new UserError(`provisioner '${label}' failed in machine '${h.machine.name}' with exit code ${String(r.code ?? r.signal)}`, {
      hint: 'Its output is above. Fix it, then run `vmenv provision`.',
      exitCode: ExitCode.user,
    });
  }
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
    if (p.type === 'shell') await runShell(h, session, p, label, out, options.signal);
    else if (p.type === 'file') {
      const source = isAbsolute(p.source) ? p.source : resolve(h.project.dir, p.source);
      await session.upload(source, p.destination);
    } else await provisionWithAnsible(h, p, label, out, options.signal);
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
