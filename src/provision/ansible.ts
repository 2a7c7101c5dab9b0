/**
 * The ansible provisioner: the host's `ansible-playbook` run against machines through a
 * generated inventory, over the same SSH as vmenv's own (the machine's key, its pinned
 * host key, the proxy command of the machine's libvirt host, if any).
 *
 * Each run gets a temporary folder under the state directory (the machine's, or the
 * project's `.vmenv/` for a run over several machines) for its inventory, its
 * known_hosts files and its extra vars, removed after it. Ansible's SSH connection
 * sharing gets a short folder of its own under the system's temp folder (a socket path
 * has a length limit a project path may exceed); its master connections are closed and
 * the folder removed after the run, so nothing is left running.
 *
 * With `limit: all` and several machines (Vagrant's `ansible.limit = "all"`), one run
 * covers them all: `up`, `reload` and `provision` hand each machine's provisioner to an
 * AnsibleBatch instead of running it, and the batch runs each such provisioner once,
 * after every machine's other provisioners, with every machine that asked for it in the
 * inventory.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnsibleProvisioner, ProjectConfig } from '../config/types.js';
import { ProjectState } from '../project/state.js';
import { writePinnedKnownHosts } from '../ssh/host-key.js';
import { UserError } from '../errors.js';
import { ansibleErrorLines, playbookArgs, renderInventory, type AnsibleHost } from './ansible-inventory.js';
import type { MachineHandle } from '../hosts/handle.js';
import { machineSshTarget } from '../access/machine-ssh-config.js';
import { prefixer } from '../util/prefixer.js';
import { exitControlMaster } from '../access/shared-ssh.js';

export interface AnsibleRunOptions {
  /** Where the output goes, each line prefixed. */
  out: NodeJS.WritableStream;
  /** The line prefix, e.g. `web: `. */
  prefix: string;
  /** A folder the run's temporary folder is made in. */
  stateDir: string;
  /** The folder ansible-playbook runs in (the project's: its ansible.cfg and roles). */
  cwd: string;
  signal?: AbortSignal;
  /** The program to run (tests). */
  program?: string;
}

/** The machine as Ansible reaches it, from its recorded state and pinned host key. */
export function ansibleHostOf(h: MachineHandle): Promise<AnsibleHost> {
  return machineSshTarget(h);
}

/** A clear error now, rather than ansible's later, when the playbook is not there. */
export async function checkPlaybook(p: AnsibleProvisioner, label: string): Promise<void> {
  const st = await stat(p.playbook).catch(() => undefined);
  if (!st) {
    throw new UserError(`the playbook of provisioner '${label}' does not exist: ${p.playbook}`, {
      hint: "Check 'playbook:' in vmenv.yaml (a relative path is taken from the project folder).",
    });
  }
  if (!st.isFile()) {
    throw new UserError(`the playbook of provisioner '${label}' is not a file: ${p.playbook}`, {
      hint: "Give 'playbook:' the playbook's YAML file.",
    });
  }
}

function hostsPhrase(hosts: readonly AnsibleHost[]): string {
  return hosts.length === 1 ? `machine '${hosts[0]!.name}'` : `machines ${hosts.map((h) => `'${h.name}'`).join(', ')}`;
}

/** Runs ansible-playbook once with `hosts` in its inventory; throws a UserError when it fails. */
export async function runAnsiblePlaybook(p: AnsibleProvisioner, label: string, hosts: readonly AnsibleHost[], options: AnsibleRunOptions): Promise<void> {
  await checkPlaybook(p, label);
  const dir = await mkdtemp(join(options.stateDir, 'ansible-'));
  const controlDir = await mkdtemp(join(tmpdir(), 'vmenv-cp-'));
  try {
    const knownHosts = (h: AnsibleHost): string => join(dir, `known_hosts-${h.name}`);
    for (const h of hosts) await writePinnedKnownHosts(knownHosts(h), h.hostKey, h.address, h.port);
    const inventory = join(dir, 'inventory.yml');
    await writeFile(inventory, renderInventory(hosts, knownHosts), { mode: 0o600 });
    let extraVars: string | undefined;
    if (Object.keys(p.extra_vars).length > 0) {
      extraVars = join(dir, 'extra-vars.json');
      await writeFile(extraVars, `${JSON.stringify(p.extra_vars)}\n`, { mode: 0o600 });
    }
    const args = playbookArgs(p, { inventory, ...(extraVars !== undefined ? { extraVars } : {}) });
    const code = await spawnPlaybook(options.program ?? 'ansible-playbook', args, controlDir, options);
    if (code.exit !== 0) {
      const said = ansibleErrorLines(code.stderr);
      throw new UserError(
        `provisioner '${label}' (ansible) failed on ${hostsPhrase(hosts)}: ansible-playbook exited with code ${code.exit}${said.length > 0 ? `\n${said.join('\n')}` : ''}`,
        { hint: "ansible-playbook's output is above. Fix the playbook, then run `vmenv provision`." },
      );
    }
  } finally {
    await closeControlMasters(controlDir);
    await rm(controlDir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
}

const STDERR_KEPT = 64 * 1024;

function spawnPlaybook(program: string, args: string[], controlDir: string, options: AnsibleRunOptions): Promise<{ exit: number | string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        // The pinned key is the point: a user's ANSIBLE_HOST_KEY_CHECKING=False must not switch it off.
        ANSIBLE_HOST_KEY_CHECKING: 'True',
        ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
        PYTHONUNBUFFERED: '1',
      },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const stdout = prefixer(options.prefix, options.out);
    const stderr = prefixer(options.prefix, options.out);
    let errText = '';
    child.stdout.on('data', (c: Buffer) => stdout.write(c));
    child.stderr.on('data', (c: Buffer) => {
      stderr.write(c);
      errText = (errText + c.toString('utf8')).slice(-STDERR_KEPT);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (options.signal?.aborted) reject(options.signal.reason);
      else if (err.code === 'ENOENT') {
        reject(new UserError('ansible-playbook is not installed on this host', { hint: 'sudo apt-get install ansible' }));
      } else reject(err);
    });
    child.on('close', (code, signal) => {
      stdout.end();
      stderr.end();
      if (options.signal?.aborted) reject(options.signal.reason);
      else resolve({ exit: code ?? signal ?? 'unknown', stderr: errText });
    });
  });
}

/** Ends the SSH master connections ansible left in `controlDir` (ControlPersist), so none outlives the run. */
async function closeControlMasters(controlDir: string): Promise<void> {
  const sockets = await readdir(controlDir).catch(() => [] as string[]);
  await Promise.all(sockets.map((s) => exitControlMaster(join(controlDir, s), 5000)));
}

/** Runs an ansible provisioner for one machine, with that machine alone in the inventory. */
export async function provisionWithAnsible(h: MachineHandle, p: AnsibleProvisioner, label: string, out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void> {
  await runAnsiblePlaybook(p, label, [await ansibleHostOf(h)], {
    out,
    prefix: `${h.machine.name}: `,
    stateDir: h.state.machineDir(h.machine.name),
    cwd: h.project.dir,
    ...(signal ? { signal } : {}),
  });
}

/** A key equal for equal provisioners (a top-level one is copied into every machine). */
function provisionerKey(p: AnsibleProvisioner): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : typeof v === 'object' && v !== null
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, canonical(x)]))
        : v;
  return JSON.stringify(canonical(p));
}

interface BatchGroup {
  provisioner: AnsibleProvisioner;
  label: string;
  hosts: AnsibleHost[];
}

/**
 * The ansible provisioners with `limit: all` that the machines of one command asked
 * for: each equal provisioner is run once, with all of those machines in the inventory.
 */
export class AnsibleBatch {
  private readonly groups = new Map<string, BatchGroup>();

  constructor(private readonly project: ProjectConfig) {}

  /** Takes the machine's provisioner for the common run (checking what can be checked now). */
  async add(h: MachineHandle, p: AnsibleProvisioner, label: string): Promise<void> {
    await checkPlaybook(p, label);
    const host = await ansibleHostOf(h);
    const key = provisionerKey(p);
    const group = this.groups.get(key);
    if (group) group.hosts = [...group.hosts.filter((x) => x.name !== host.name), host];
    else this.groups.set(key, { provisioner: p, label, hosts: [host] });
  }

  /** What is waiting to run: each provisioner's label and its machines. */
  pending(): Array<{ label: string; machines: string[] }> {
    return [...this.groups.values()].map((g) => ({ label: g.label, machines: g.hosts.map((h) => h.name) }));
  }

  /** Runs each provisioner once for its machines, in the order they were first asked for; the first failure stops them. */
  async run(options: { out?: NodeJS.WritableStream; signal?: AbortSignal } = {}): Promise<void> {
    const out = options.out ?? process.stdout;
    const groups = [...this.groups.values()];
    this.groups.clear();
    for (const g of groups) {
      const names = g.hosts.map((h) => h.name);
      const prefix = `${names.join(',')}: `;
      out.write(`${prefix}running provisioner '${g.label}' (ansible, limit: all) once for ${hostsPhrase(g.hosts)}\n`);
      await runAnsiblePlaybook(g.provisioner, g.label, g.hosts, {
        out,
        prefix,
        stateDir: new ProjectState(this.project.dir).dir,
        cwd: this.project.dir,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    }
  }
}

/**
 * Runs `each` (the per-machine work of a command, which hands its `limit: all` ansible
 * provisioners to the batch), then the batch. When `each` fails, the batch does not run
 * and says so.
 */
export async function withAnsibleBatch(
  project: ProjectConfig,
  options: { out?: NodeJS.WritableStream; signal?: AbortSignal },
  each: (batch: AnsibleBatch) => Promise<void>,
): Promise<void> {
  const batch = new AnsibleBatch(project);
  try {
    await each(batch);
  } catch (err) {
    const out = options.out ?? process.stdout;
    for (const g of batch.pending()) {
      out.write(`${g.machines.join(',')}: provisioner '${g.label}' (ansible, limit: all) was not run, as a machine failed first; run 'vmenv provision' once it is fixed\n`);
    }
    throw err;
  }
  await batch.run(options);
}
