/**
 * What OpenSSH needs to reach a machine: its state record, and a client config with
 * the pinned host key in a known_hosts file beside it, for `ssh -F`, rsync and editors.
 * No SSH client is loaded here (`vmenv ssh` runs OpenSSH with it).
 */
import { join } from 'node:path';
import type { MachineConfig } from '../config/types.js';
import { managementNic, type MachineNic, type MachineState } from '../project/state.js';
import { renderSshConfigHost } from '../ssh/config.js';
import { fileHostKeyStore, writePinnedKnownHosts, type PinnedKey } from '../ssh/host-key.js';
import { writeFileAtomicIfChanged } from '../ssh/write-if-changed.js';
import { UserError } from '../errors.js';
import type { LibvirtClient } from '../libvirt/client.js';
import type { MachineRef } from '../hosts/handle.js';
import { machineStatus } from '../hosts/machine-status.js';
import { LibvirtHost } from '../hosts/libvirt-host.js';

/** Where SSH listens for the management NIC: the forwarded port on 127.0.0.1 in user mode, ssh.port on the guest's address otherwise. */
export function sshPort(nic: MachineNic | undefined, machine: Pick<MachineConfig, 'ssh'>): number {
  return nic?.mode === 'user' ? nic.sshHostPort : machine.ssh.port;
}

export async function requireRecord(h: MachineRef): Promise<MachineState> {
  const record = await h.state.read(h.machine.name);
  if (!record?.domain) {
    throw new UserError(`machine '${h.machine.name}' is not created`, { hint: `Run 'vmenv up ${h.machine.name}' first.` });
  }
  return record;
}

/** Where and how a machine is reached over SSH, as OpenSSH and Ansible need it. */
export interface MachineSshTarget {
  /** The machine's name (the Host alias, the inventory name). */
  name: string;
  /** The recorded IP, or 127.0.0.1 in user mode. */
  address: string;
  /** 22 (ssh.port), or the forwarded port in user mode. */
  port: number;
  user: string;
  privateKeyFile: string;
  /** The guest's host key pinned at first contact. */
  hostKey: PinnedKey;
  /** Reaches %h:%p where this machine cannot dial the guest itself (see LibvirtHost.reach). */
  proxyCommand?: string;
}

/** The machine's SSH target from its state record (read unless given) and its pinned host key. */
export async function machineSshTarget(h: MachineRef, record?: MachineState): Promise<MachineSshTarget> {
  record ??= await requireRecord(h);
  const hostKey = await fileHostKeyStore(join(h.state.machineDir(h.machine.name), 'host-key.json')).get();
  if (!record.ip || !hostKey) {
    throw new UserError(`machine '${h.machine.name}' has not been reached over SSH yet`, { hint: `Run 'vmenv up ${h.machine.name}' first.` });
  }
  const { sshProxyCommand } = LibvirtHost.of(record.uri);
  return {
    name: h.machine.name,
    address: record.ip,
    port: sshPort(managementNic(record), h.machine),
    user: record.ssh.username,
    privateKeyFile: record.ssh.privateKeyPath,
    hostKey,
    ...(sshProxyCommand ? { proxyCommand: sshProxyCommand } : {}),
  };
}

/**
 * An OpenSSH client config for the machine, with its pinned host key in a known_hosts
 * file beside it, that `ssh -F <file> <machine>` and `rsync -e 'ssh -F <file>'` use.
 * Returns the config text and the file it was written to (each file is written only
 * when its content changed). `record`: the machine's state record, when the caller has
 * read it already.
 */
export async function writeMachineSshConfig(h: MachineRef, record?: MachineState): Promise<{ text: string; path: string }> {
  const t = await machineSshTarget(h, record);
  const dir = h.state.machineDir(h.machine.name);
  const knownHostsFile = join(dir, 'known_hosts');
  await writePinnedKnownHosts(knownHostsFile, t.hostKey, t.address, t.port);
  const text = renderSshConfigHost({
    name: t.name,
    hostName: t.address,
    port: t.port,
    user: t.user,
    identityFile: t.privateKeyFile,
    knownHostsFile,
    ...(t.proxyCommand !== undefined ? { proxyCommand: t.proxyCommand } : {}),
    comment: `vmenv machine '${h.machine.name}' of ${h.project.dir}`,
  });
  const path = join(dir, 'ssh_config');
  await writeFileAtomicIfChanged(path, text, 0o600);
  return { text, path };
}

/** Why a machine cannot be reached over SSH, as libvirt sees it: not running, or no address known. */
export async function whyUnreachable(m: MachineRef, record: MachineState, libvirt: () => Promise<LibvirtClient>): Promise<UserError | undefined> {
  const { status } = await machineStatus({ ...m, client: await libvirt() }, record);
  if (status !== 'running') return new UserError(`machine '${m.machine.name}' is ${status}`, { hint: `Run 'vmenv up ${m.machine.name}' first.` });
  return record.ip ? undefined : noAddress(m);
}

export function noAddress(m: MachineRef): UserError {
  return new UserError(`machine '${m.machine.name}' runs, but its address is not known`, {
    hint: `Run 'vmenv up ${m.machine.name}': it finds the address and waits for SSH.`,
  });
}
