import { join } from 'node:path';
import type { MachineConfig, ProjectConfig } from '../config/types.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { DomainEventType, DomainShutdownFlags, DomainState, DomainUndefineFlags } from '../libvirt/constants.js';
import type { DomainRef } from '../libvirt/protocol/types.js';
import { sleep } from '../util/sleep.js';
import { isNotFound, isOperationInvalid } from '../libvirt/errors.js';
import { openLibvirt } from '../libvirt/index.js';
import { unregisterMachine } from '../project/machine-index.js';
import { machineResourceName } from '../project/names.js';
import { ProjectState, type MachineState } from '../project/state.js';
import {
  connectSsh,
  fileHostKeyStore,
  netnsProxyCommand,
  readPrivateKey,
  renderSshConfigHost,
  writePinnedKnownHosts,
  type SshSession,
} from '../ssh/index.js';
import { writeFileAtomic } from '../project/atomic.js';
import { TimeoutError, UserError } from '../ui/errors.js';
import { machineMac } from './domain-plan.js';
import { stopNatForwarder } from './forwarding.js';
import { removeNetworkIfUnused } from './network.js';
import { runPipeline, type PipelineOptions, type Step } from './pipeline.js';
import { createMachineSteps, currentDomain, machineRecord, reachSteps, refreshForwardedPorts, type UpContext } from './up.js';

/** The environment variable naming a network namespace from which guests are reached. */
export const GUEST_NETNS_ENV = 'VMENV_GUEST_NETNS';

export interface MachineHandle {
  project: ProjectConfig;
  machine: MachineConfig;
  state: ProjectState;
  client: LibvirtClient;
}

/** Connects to the machine's libvirt (its configured URI, else the default choice). */
export async function openMachine(project: ProjectConfig, machine: MachineConfig, signal?: AbortSignal): Promise<MachineHandle> {
  const state = new ProjectState(project.dir);
  const record = await state.read(machine.name);
  const client = await openLibvirt(record?.uri ?? machine.uri, { ...(signal ? { signal } : {}) });
  return { project, machine, state, client };
}

/**
 * One libvirt connection per URI for a command that works on several machines: they
 * share it (calls are matched by serial, so parallel use is safe), and it is closed once.
 */
export class LibvirtConnections {
  private readonly open = new Map<string, Promise<LibvirtClient>>();

  constructor(private readonly signal?: AbortSignal) {}

  async handle(project: ProjectConfig, machine: MachineConfig): Promise<MachineHandle> {
    const state = new ProjectState(project.dir);
    const uri = (await state.read(machine.name))?.uri ?? machine.uri;
    const key = uri ?? '';
    let client = this.open.get(key);
    if (!client) {
      client = openLibvirt(uri, { ...(this.signal ? { signal: this.signal } : {}) });
      this.open.set(key, client);
    }
    return { project, machine, state, client: await client };
  }

  async closeAll(): Promise<void> {
    const clients = await Promise.allSettled(this.open.values());
    this.open.clear();
    await Promise.all(clients.map((c) => (c.status === 'fulfilled' ? c.value.close().catch(() => undefined) : undefined)));
  }
}

/**
 * Runs `fn` for each machine with a handle on its libvirt, one after another or all at
 * once. In parallel every machine runs to its end; the first failure is then rethrown.
 */
export async function forEachMachine(
  project: ProjectConfig,
  machines: readonly MachineConfig[],
  options: { signal?: AbortSignal; parallel?: boolean | undefined },
  fn: (h: MachineHandle) => Promise<void>,
): Promise<void> {
  const connections = new LibvirtConnections(options.signal);
  try {
    if (!options.parallel) {
      for (const m of machines) await fn(await connections.handle(project, m));
      return;
    }
    const results = await Promise.allSettled(machines.map(async (m) => fn(await connections.handle(project, m))));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 1) {
      for (const f of failed.slice(1)) process.stderr.write(`Also failed: ${f.reason instanceof Error ? f.reason.message : String(f.reason)}\n`);
    }
    if (failed[0]) throw failed[0].reason;
  } finally {
    await connections.closeAll();
  }
}

/** Runs `fn` over an SSH session to a running machine, closing it after. */
export async function withMachineSession<T>(h: MachineHandle, signal: AbortSignal | undefined, fn: (session: SshSession) => Promise<T>): Promise<T> {
  const session = await sshToMachine(h, signal);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

export type MachineStatus = 'not created' | 'running' | 'shutoff' | 'paused' | 'suspended' | 'crashed' | 'shutting down' | 'gone';

export interface StatusReport {
  machine: string;
  status: MachineStatus;
  domain?: string;
  ip?: string;
  uri?: string;
}

export async function machineStatus(h: MachineHandle): Promise<StatusReport> {
  const record = await h.state.read(h.machine.name);
  if (!record?.domain) return { machine: h.machine.name, status: 'not created' };
  const live = await currentDomain(h.client, record);
  const base = { machine: h.machine.name, domain: record.domain.name, uri: record.uri };
  if (!live) return { ...base, status: 'gone' };
  const status: MachineStatus =
    live.state === DomainState.running || live.state === DomainState.blocked
      ? 'running'
      : live.state === DomainState.paused
        ? 'paused'
        : live.state === DomainState.shutdown
          ? 'shutting down'
          : live.state === DomainState.crashed
            ? 'crashed'
            : live.state === DomainState.pmSuspended
              ? 'suspended'
              : (await h.client.domainHasManagedSaveImage(live.domain))
                ? 'suspended'
                : 'shutoff';
  return { ...base, status, ...(status === 'running' && record.ip ? { ip: record.ip } : {}) };
}

export interface UpOptions extends Pick<PipelineOptions, 'renderer' | 'signal'> {
  /** Keep what a failed first `up` made (`--no-destroy-on-error`). */
  keepOnError?: boolean;
  guestNetns?: string;
}

/**
 * Brings one machine up: creates it when it does not exist, starts it when shut off,
 * resumes it when paused, and only reconnects when it runs. Returns an SSH session.
 */
export async function upMachine(h: MachineHandle, options: UpOptions = {}): Promise<UpContext> {
  const { record, isNew } = await machineRecord(h.state, h.machine, h.client.uri);
  const ctx: UpContext = {
    project: h.project,
    machine: h.machine,
    state: h.state,
    client: h.client,
    guestNetns: options.guestNetns ?? process.env[GUEST_NETNS_ENV],
    resourceName: machineResourceName(h.project.dir, h.machine.name),
    record,
  };
  const live = isNew ? undefined : await currentDomain(h.client, record);
  let steps: Step<UpContext>[];
  if (!live) {
    if (!isNew && record.domain) {
      throw new UserError(`machine '${h.machine.name}' has state, but its domain ${record.domain.name} is gone from ${record.uri}`, {
        hint: `Run 'vmenv destroy -f ${h.machine.name}' to clear what is left, then 'vmenv up' again.`,
      });
    }
    await h.state.write(record);
    steps = createMachineSteps();
  } else {
    ctx.domain = live.domain;
    ctx.nic = record.nic ?? { mode: 'nat', network: h.machine.network.name ?? 'vmenv', mac: machineMac(ctx.resourceName) };
    if (ctx.nic.mode === 'user') ctx.sshPort = ctx.nic.sshHostPort;
    else ctx.network = await h.client.networkLookupByName(ctx.nic.network);
    const start: Step<UpContext> = {
      title: live.state === DomainState.paused ? 'Resume the domain' : 'Start the domain',
      skip: () => live.state === DomainState.running || live.state === DomainState.blocked,
      async run(c) {
        if (live.state === DomainState.paused) {
          await c.client.domainResume(c.domain!);
          return;
        }
        // A saved machine restores its own definition; only a fresh start can take new ports.
        if (!(await c.client.domainHasManagedSaveImage(c.domain!))) await refreshForwardedPorts(c);
        c.domain = await c.client.domainCreate(c.domain!);
      },
    };
    steps = [start, ...reachSteps()];
  }
  try {
    await runPipeline(steps, ctx, {
      ...(options.renderer ? { renderer: options.renderer } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      rollbackOnError: isNew && !options.keepOnError,
    });
  } catch (err) {
    // A first `up` that failed and was rolled back leaves no state behind either.
    if (isNew && !options.keepOnError && !ctx.record.domain && ctx.record.volumes.length === 0) await h.state.remove(h.machine.name);
    throw err;
  }
  return ctx;
}

/** Connects to a running machine over SSH, verifying its pinned host key. */
export async function sshToMachine(h: MachineHandle, signal?: AbortSignal): Promise<SshSession> {
  const record = await requireRecord(h);
  const status = await machineStatus(h);
  if (status.status !== 'running' || !record.ip) {
    throw new UserError(`machine '${h.machine.name}' is ${status.status}`, { hint: `Run 'vmenv up ${h.machine.name}' first.` });
  }
  // QEMU runs where libvirtd runs: in that namespace its user-mode forwards listen too.
  const netns = process.env[GUEST_NETNS_ENV];
  return connectSsh({
    host: record.ip,
    port: record.nic?.mode === 'user' ? record.nic.sshHostPort : h.machine.ssh.port,
    username: record.ssh.username,
    privateKey: await readPrivateKey(record.ssh.privateKeyPath),
    hostKey: fileHostKeyStore(join(h.state.machineDir(h.machine.name), 'host-key.json')),
    ...(netns ? { proxyCommand: netnsProxyCommand(netns) } : {}),
    ...(signal ? { signal } : {}),
    label: `machine '${h.machine.name}'`,
  });
}

/**
 * An OpenSSH client config for the machine, with its pinned host key in a known_hosts
 * file beside it, that `ssh -F <file> <machine>` and `rsync -e 'ssh -F <file>'` use.
 * Returns the config text and the file it was written to.
 */
export async function writeMachineSshConfig(h: MachineHandle): Promise<{ text: string; path: string }> {
  const record = await requireRecord(h);
  const dir = h.state.machineDir(h.machine.name);
  const pin = await fileHostKeyStore(join(dir, 'host-key.json')).get();
  if (!record.ip || !pin) {
    throw new UserError(`machine '${h.machine.name}' has not been reached over SSH yet`, { hint: `Run 'vmenv up ${h.machine.name}' first.` });
  }
  const port = record.nic?.mode === 'user' ? record.nic.sshHostPort : h.machine.ssh.port;
  const knownHostsFile = join(dir, 'known_hosts');
  await writePinnedKnownHosts(knownHostsFile, pin, record.ip, port);
  const netns = process.env[GUEST_NETNS_ENV];
  const text = renderSshConfigHost({
    name: h.machine.name,
    hostName: record.ip,
    port,
    user: record.ssh.username,
    identityFile: record.ssh.privateKeyPath,
    knownHostsFile,
    ...(netns ? { proxyCommand: netnsProxyCommand(netns) } : {}),
    comment: `vmenv machine '${h.machine.name}' of ${h.project.dir}`,
  });
  const path = join(dir, 'ssh_config');
  await writeFileAtomic(path, text, 0o600);
  return { text, path };
}

export async function requireRecord(h: MachineHandle): Promise<MachineState> {
  const record = await h.state.read(h.machine.name);
  if (!record?.domain) {
    throw new UserError(`machine '${h.machine.name}' is not created`, { hint: `Run 'vmenv up ${h.machine.name}' first.` });
  }
  return record;
}

/**
 * Waits until the domain is shut off: woken by libvirt's lifecycle events (the
 * "stopped" event), with a slow poll of its state as a backstop; false on timeout.
 */
async function waitShutoff(h: MachineHandle, domain: DomainRef, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let wake = new AbortController();
  const unsubscribe = await h.client
    .onDomainLifecycle(domain, (e) => {
      if (e.event === DomainEventType.stopped) wake.abort();
    })
    .catch(() => undefined); // no events (an old daemon): the poll alone will do
  try {
    while (Date.now() < deadline) {
      signal?.throwIfAborted();
      try {
        if ((await h.client.domainGetState(domain)).state === DomainState.shutoff) return true;
      } catch (err) {
        if (isNotFound(err)) return true;
        throw err;
      }
      const both = signal ? AbortSignal.any([signal, wake.signal]) : wake.signal;
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())), both).catch(() => undefined);
      if (wake.signal.aborted) wake = new AbortController();
    }
    return false;
  } finally {
    await unsubscribe?.().catch(() => undefined);
  }
}

/**
 * Shuts a machine down: `poweroff` over SSH, else the ACPI power button, then forced
 * off after `shutdown.timeout` seconds (or at once with `force`).
 */
export async function haltMachine(h: MachineHandle, options: { force?: boolean; signal?: AbortSignal } = {}): Promise<'already off' | 'graceful' | 'forced'> {
  const outcome = await haltDomain(h, options);
  const record = await h.state.read(h.machine.name);
  if (record) await stopNatForwarder(h.state, record);
  return outcome;
}

async function haltDomain(h: MachineHandle, options: { force?: boolean; signal?: AbortSignal }): Promise<'already off' | 'graceful' | 'forced'> {
  const record = await requireRecord(h);
  const live = await currentDomain(h.client, record);
  if (!live) return 'already off';
  if (live.state === DomainState.shutoff) {
    // A saved machine is off, but `up` would restore it: halting it drops the saved memory.
    if (!(await h.client.domainHasManagedSaveImage(live.domain))) return 'already off';
    await h.client.domainManagedSaveRemove(live.domain);
    return 'forced';
  }
  if (live.state === DomainState.paused && !options.force) {
    await h.client.domainResume(live.domain);
    live.state = DomainState.running;
  }
  const timeoutMs = h.machine.shutdown.timeout * 1000;
  if (!options.force && h.machine.shutdown.mode !== 'destroy') {
    if (h.machine.shutdown.mode === 'ssh' && live.state === DomainState.running) {
      const session = await sshToMachine(h, options.signal).catch(() => undefined);
      if (session) {
        // The channel dies with the guest rather than closing: do not wait on it.
        const sent = session.exec('sudo -n poweroff || poweroff').catch(() => undefined);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([sent, new Promise((r) => (timer = setTimeout(r, 2000)))]);
        clearTimeout(timer);
        void session.close().catch(() => undefined);
      }
    }
    if (!(await waitShutoff(h, live.domain, Math.min(timeoutMs, 2000), options.signal))) {
      await h.client.domainShutdown(live.domain, DomainShutdownFlags.acpiPowerButton).catch((err: unknown) => {
        if (!isOperationInvalid(err)) throw err;
      });
    }
    if (await waitShutoff(h, live.domain, timeoutMs, options.signal)) return 'graceful';
  }
  await h.client.domainDestroy(live.domain).catch((err: unknown) => {
    if (!isOperationInvalid(err)) throw err;
  });
  if (!(await waitShutoff(h, live.domain, 10_000, options.signal))) {
    throw new TimeoutError(`domain ${record.domain!.name} to power off`, 10_000);
  }
  return 'forced';
}

/**
 * Removes a machine: its domain (with nvram, snapshots, managed save), its volumes, the
 * networks vmenv created for it when no other domain uses them, and its state. Never a
 * box volume. Safe to run on a half-made machine.
 */
export async function destroyMachine(h: MachineHandle): Promise<void> {
  const record = await h.state.read(h.machine.name);
  if (!record) return;
  await stopNatForwarder(h.state, record);
  if (record.domain) {
    try {
      const d = await h.client.domainLookupByName(record.domain.name);
      await h.client.domainDestroy(d).catch((err: unknown) => {
        if (!isOperationInvalid(err)) throw err;
      });
      await h.client.domainUndefine(d, DomainUndefineFlags.nvram | DomainUndefineFlags.snapshotsMetadata | DomainUndefineFlags.managedSave);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  for (const v of record.volumes) {
    try {
      const pool = await h.client.storagePoolLookupByName(v.pool);
      await h.client.storageVolDelete(await h.client.storageVolLookupByName(pool, v.name));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  for (const n of record.networks.filter((x) => x.created)) await removeNetworkIfUnused(h.client, n.name);
  if (record.domain) await unregisterMachine(record.domain.uuid);
  await h.state.remove(h.machine.name);
}
