/**
 * SSH sessions to a machine with ssh2 (the machine's key, its pinned host key), and why
 * a machine cannot be reached. OpenSSH configs: machine-ssh-config.ts.
 */
import { join } from 'node:path';
import type { LibvirtClient } from '../libvirt/client.js';
import { connectSsh, type SshSession } from '../ssh/client.js';
import { fileHostKeyStore } from '../ssh/host-key.js';
import { readPrivateKey } from '../ssh/keys.js';
import { UserError } from '../errors.js';
import type { MachineHandle, MachineRef } from '../hosts/handle.js';
import { LibvirtHost } from '../hosts/libvirt-host.js';
import { managementNic } from '../project/state.js';
import { noAddress, requireRecord, sshPort, whyUnreachable } from './machine-ssh-config.js';

export { requireRecord } from './machine-ssh-config.js';

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
  // QEMU runs where libvirtd runs: in its namespace, if any, its user-mode forwards listen too.
  const { sshProxyCommand } = LibvirtHost.of(record.uri);
  try {
    return await connectSsh({
      host: record.ip,
      port: sshPort(managementNic(record), m.machine),
      username: record.ssh.username,
      privateKey: await readPrivateKey(record.ssh.privateKeyPath),
      hostKey: fileHostKeyStore(join(m.state.machineDir(m.machine.name), 'host-key.json')),
      ...(sshProxyCommand ? { proxyCommand: sshProxyCommand } : {}),
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

/** Runs `fn` over an SSH session to a running machine, closing it after. */
export async function withMachineSession<T>(h: MachineHandle, signal: AbortSignal | undefined, fn: (session: SshSession) => Promise<T>): Promise<T> {
  const session = await sshToMachine(h, signal);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}
