import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, type LockHandle } from '../util/file-lock.js';
import { ExitCode, UserError } from '../errors.js';
import type { Protocol } from '../config/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { STATE_DIR } from '../config/project-file.js';

const STATE_VERSION = 1;

/** A host port forwarded to a guest port, as it is in effect (after auto_correct). */
export interface PortMapping {
  guest: number;
  host: number;
  hostIp: string;
  protocol: Protocol;
}

/** A libvirt object that vmenv created for a machine and must remove with it. */
export interface OwnedVolume {
  pool: string;
  name: string;
  /** root: the overlay on the box's first disk; box-disk: one on another of its disks (in the box's order); disk: a `disks:` entry. */
  role: 'root' | 'seed' | 'disk' | 'box-disk';
}

export interface OwnedNetwork {
  name: string;
  /** Whether vmenv created it (and so may remove it when no domain uses it any more). */
  created: boolean;
}

/** A NIC on a libvirt network: the NAT management network (and, later, networks of vmenv.yaml). */
export interface NetworkNic {
  mode: 'nat';
  network: string;
  mac: string;
}

/** QEMU user-mode networking: SSH (and forwarded_ports) on host ports of 127.0.0.1. */
export interface UserNic {
  mode: 'user';
  mac: string;
  sshHostPort: number;
  /** The forwarded_ports in effect (after auto_correct). */
  forwards?: PortMapping[];
}

export type MachineNic = NetworkNic | UserNic;

/** A machine's NICs in the domain's order: the first is the management NIC, which SSH goes through. */
export type MachineNics = [MachineNic, ...MachineNic[]];

/** What vmenv knows of one machine of the project. Written atomically after every change. */
export interface MachineState {
  version: typeof STATE_VERSION;
  machine: string;
  uri: string;
  pool: string;
  /** The libvirt domain, once defined. */
  domain?: { name: string; uuid: string };
  box?: { name: string; version: string };
  volumes: OwnedVolume[];
  networks: OwnedNetwork[];
  /**
   * The key later commands log in with (the machine's own, or the one `up` found in use
   * with `ssh.insert_key: false`); the guest's pinned host key is in host-key.json beside
   * it. `keyInserted`: when `up` replaced a Vagrant insecure key with the machine's key.
   */
  ssh: { username: string; privateKeyPath: string; keyInserted?: string };
  /** Its NICs, once chosen; the first is the management NIC. */
  nics?: MachineNics;
  /** The forwarded ports in effect (after auto_correct). */
  ports?: PortMapping[];
  /** The process serving the forwarded ports of a NAT machine. */
  forwarder?: { pid: number; startedAt?: number; tag: string; /** What it forwards (its spec), to tell whether it needs a restart. */ serves: string };
  /** The last address the machine was reached at. */
  ip?: string;
  /** Whether the first provisioning ran (provisioners with run: once). */
  provisioned: boolean;
  createdAt: string;
  updatedAt: string;
}

/** State written before a machine could have several NICs held its one NIC as `nic`. */
function fromOneNic(state: MachineState & { nic?: MachineNic }): MachineState {
  const { nic, ...rest } = state;
  return nic && !rest.nics ? { ...rest, nics: [nic] } : rest;
}

/** The NIC SSH goes through (undefined before the network step of the first `up`). */
export function managementNic(record: Pick<MachineState, 'nics'>): MachineNic | undefined {
  return record.nics?.[0];
}

/** Paths of a project's state. */
export class ProjectState {
  readonly dir: string;

  constructor(readonly projectDir: string) {
    this.dir = join(projectDir, STATE_DIR);
  }

  machineDir(machine: string): string {
    return join(this.dir, 'machines', machine);
  }

  private stateFile(machine: string): string {
    return join(this.machineDir(machine), 'state.json');
  }

  /** The machine's state, or undefined when the machine was never created. */
  async read(machine: string): Promise<MachineState | undefined> {
    let text: string;
    try {
      text = await readFile(this.stateFile(machine), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new UserError(`the state of machine '${machine}' (${this.stateFile(machine)}) is not valid JSON`, {
        hint: `If the machine is gone, delete ${this.machineDir(machine)}; otherwise restore the file.`,
      });
    }
    const state = parsed as Partial<MachineState>;
    if (state.version !== STATE_VERSION) {
      throw new UserError(`the state of machine '${machine}' has version ${String(state.version)}; this vmenv reads version ${STATE_VERSION}`, {
        hint: 'Use the vmenv that created the machine, or destroy it with that vmenv first.',
      });
    }
    return fromOneNic(state as MachineState & { nic?: MachineNic });
  }

  async write(state: MachineState): Promise<void> {
    const next = { ...state, updatedAt: new Date().toISOString() };
    await writeFileAtomic(this.stateFile(state.machine), `${JSON.stringify(next, null, 2)}\n`, 0o600);
  }

  /** Reads, changes and writes a machine's state; the caller holds the project lock. */
  async update(machine: string, change: (s: MachineState) => MachineState | void): Promise<MachineState> {
    const current = await this.read(machine);
    if (!current) throw new Error(`machine '${machine}' has no state to update`);
    const next = change(current) ?? current;
    await this.write(next);
    return next;
  }

  /** Forgets a machine: its state, key and pinned host key. */
  async remove(machine: string): Promise<void> {
    await rm(this.machineDir(machine), { recursive: true, force: true });
  }

  /** Machines that have state. */
  async machines(): Promise<string[]> {
    try {
      return (await readdir(join(this.dir, 'machines'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /**
   * Serializes commands on this project. A second command waits (telling the user who
   * holds the lock) up to `timeoutMs`, then fails clearly.
   */
  async lock(purpose: string, options: { signal?: AbortSignal; timeoutMs?: number; onWait?: (holder: string) => void } = {}): Promise<LockHandle> {
    try {
      return await acquireLock(join(this.dir, 'lock'), {
        purpose,
        timeoutMs: options.timeoutMs ?? 600_000,
        ...(options.signal ? { signal: options.signal } : {}),
        onWait: (holder) =>
          options.onWait?.(holder ? `pid ${holder.pid} (${holder.purpose ?? 'another vmenv command'}) since ${holder.since}` : 'another vmenv command'),
      });
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`another vmenv command is working on this project (${this.projectDir})`, {
        hint: 'Wait for it to finish, or stop it; its pid is in .vmenv/lock.',
        exitCode: ExitCode.user,
        cause: err,
      });
    }
  }
}

export function newMachineState(fields: Omit<MachineState, 'version' | 'createdAt' | 'updatedAt' | 'volumes' | 'networks' | 'provisioned'>): MachineState {
  const now = new Date().toISOString();
  return { version: STATE_VERSION, volumes: [], networks: [], provisioned: false, createdAt: now, updatedAt: now, ...fields };
}
