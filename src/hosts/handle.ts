/**
 * A machine with a connection to its libvirt: what every lifecycle operation works on.
 * Kept free of heavy imports (ssh2, listr2, the box store): `status` loads only this.
 */
import type { MachineConfig, ProjectConfig } from '../config/types.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { openLibvirt } from '../libvirt/index.js';
import { ProjectState, type MachineState } from '../project/state.js';
import { LibvirtHost } from './libvirt-host.js';

/** A machine of a project and its recorded state, without a libvirt connection. */
export interface MachineRef {
  project: ProjectConfig;
  machine: MachineConfig;
  state: ProjectState;
}

export interface MachineHandle extends MachineRef {
  client: LibvirtClient;
  /** The libvirt host the machine lives on: its files, how its guests are reached. */
  host: LibvirtHost;
}

/**
 * The libvirt URI a machine lives on: the one recorded at creation, else its configured
 * one. `record` is its state when the caller has read it already.
 */
async function machineUri(state: ProjectState, machine: MachineConfig, record?: MachineState): Promise<string | undefined> {
  return (record ?? (await state.read(machine.name)))?.uri ?? machine.uri;
}

/** Connects to the machine's libvirt (its configured URI, else the default choice). */
export async function openMachine(project: ProjectConfig, machine: MachineConfig, signal?: AbortSignal): Promise<MachineHandle> {
  const state = new ProjectState(project.dir);
  const client = await openLibvirt(await machineUri(state, machine), { ...(signal ? { signal } : {}) });
  return { project, machine, state, client, host: LibvirtHost.of(client.uri) };
}

/**
 * One libvirt connection per URI for a command that works on several machines: they
 * share it (calls are matched by serial, so parallel use is safe), and it is closed once.
 */
export class LibvirtConnections {
  private readonly open = new Map<string, Promise<LibvirtClient>>();

  constructor(private readonly signal?: AbortSignal) {}

  async handle(project: ProjectConfig, machine: MachineConfig, record?: MachineState): Promise<MachineHandle> {
    const state = new ProjectState(project.dir);
    const client = await this.client(await machineUri(state, machine, record));
    return { project, machine, state, client, host: LibvirtHost.of(client.uri) };
  }

  /** The shared connection to `uri` (undefined: the default choice), opened on first use. */
  private client(uri: string | undefined): Promise<LibvirtClient> {
    const key = uri ?? '';
    let client = this.open.get(key);
    if (!client) {
      client = openLibvirt(uri, { ...(this.signal ? { signal: this.signal } : {}) });
      this.open.set(key, client);
    }
    return client;
  }

  async closeAll(): Promise<void> {
    const clients = await Promise.allSettled(this.open.values());
    this.open.clear();
    await Promise.all(clients.map((c) => (c.status === 'fulfilled' ? c.value.close().catch(() => undefined) : undefined)));
  }
}
