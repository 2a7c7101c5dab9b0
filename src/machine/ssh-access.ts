/**
 * SSH to a machine: sessions with ssh2 (the machine's key, its pinned host key) and
 * OpenSSH client configs for `ssh -F`, rsync and editors.
 */
import { join } from 'node:path';
import type { LibvirtClient } from '../libvirt/client.js';
import type { MachineState } from '../project/state.js';
import { writeFileAtomic } from '../project/atomic.js';
import { connectSsh, type SshSession } from '../ssh/client.js';
import { netnsProxyCommand, renderSshConfigHost } from '../ssh/config.js';
import { fileHostKeyStore, writePinnedKnownHosts } from '../ssh/host-key.js';
import { readPrivateKey } from '../ssh/keys.js';
import { UserError } from '../ui/errors.js';
import type { MachineHandle, MachineRef } from './handle.js';
import { machineStatus } from './status.js';

/** The environment variable naming a network namespace from which guests are reached. */
export const GUEST_NETNS_ENV = 'VMENV_GUEST_NETNS';

export async function requireRecord(h: MachineRef): Promise<MachineState> {
  const record = await h.state.read(h.machine.name);
  if (!record?.domain) {
    throw new UserError(`machine '${h.machine.name}' is not created`, { hint: `Run 'vmenv up ${h.machine.name}' first.` });
  }
  return record;
}

/** Connects to a running machine over SSH, verifying its pinned host key. */
export function sshToMachine(h: MachineHandle, signal?: AbortSignal): Promise<SshSession> {
  return connectToMachine(h, { libvirt: () => Promise.resolve(h.client), ...(signal ? { signal } : {}) });
}

export interface ConnectToMachineOptions {
  signal?: AbortSignal;
  /** The machine's libvirt, asked only whether the machine runs. */
  libvirt: () => Promise<LibvirtClient>;
  /**
   * Ask libvirt only when SSH has not connected after this long (or failed sooner).
   * Default 0: at once, alongside the connection.
   */
  askLibvirtAfterMs?: number;
}

/**
 * Connects over SSH to the address recorded at `up`, verifying the pinned host key.
 * Whether the machine runs at all is asked of libvirt alongside (after
 * `askLibvirtAfterMs`, or as soon as connecting fails), never before: a machine that
 * runs pays nothing for it, and one that is off or paused fails at once, with its state
 * instead of a network error.
 */
export async function connectToMachine(m: MachineRef, options: ConnectToMachineOptions): Promise<SshSession> {
  const record = await requireRecord(m);
  let asked: Promise<UserError | undefined> | undefined;
  // A libvirt that cannot answer explains nothing: the SSH outcome speaks then.
  const whyNot = (): Promise<UserError | undefined> => (asked ??= whyUnreachable(m, record, options.libvirt).catch(() => undefined));
  if (!record.ip) throw (await whyNot()) ?? noAddress(m);
  const notRunning = new AbortController();
  const timer = setTimeout(() => {
    void whyNot().then((err) => err && notRunning.abort(err));
  }, options.askLibvirtAfterMs ?? 0);
  // QEMU runs where libvirtd runs: in that namespace its user-mode forwards listen too.
  const netns = process.env[GUEST_NETNS_ENV];
  try {
    return await connectSsh({
      host: record.ip,
      port: record.nic?.mode === 'user' ? record.nic.sshHostPort : m.machine.ssh.port,
      username: record.ssh.username,
      privateKey: await readPrivateKey(record.ssh.privateKeyPath),
      hostKey: fileHostKeyStore(join(m.state.machineDir(m.machine.name), 'host-key.json')),
      ...(netns ? { proxyCommand: netnsProxyCommand(netns) } : {}),
      signal: options.signal ? AbortSignal.any([options.signal, notRunning.signal]) : notRunning.signal,
      label: `machine '${m.machine.name}'`,
    });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw (await whyNot()) ?? err;
  } finally {
    clearTimeout(timer);
  }
}

async function whyUnreachable(m: MachineRef, record: MachineState, libvirt: () => Promise<LibvirtClient>): Promise<UserError | undefined> {
  const { status } = await machineStatus({ ...m, client: await libvirt() });
  if (status !== 'running') return new UserError(`machine '${m.machine.name}' is ${status}`, { hint: `Run 'vmenv up ${m.machine.name}' first.` });
  return record.ip ? undefined : noAddress(m);
}

function noAddress(m: MachineRef): UserError {
  return new UserError(`machine '${m.machine.name}' runs, but its address is not known`, {
    hint: `Run 'vmenv up ${m.machine.name}': it finds the address and waits for SSH.`,
  });
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

/**
 * An OpenSSH client config for the machine, with its pinned host key in a known_hosts
 * file beside it, that `ssh -F <file> <machine>` and `rsync -e 'ssh -F <file>'` use.
 * Returns the config text and the file it was written to.
 */
export async function writeMachineSshConfig(h: MachineRef): Promise<{ text: string; path: string }> {
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
