/**
 * What OpenSSH needs to reach a machine: its state record, and a client config with
 * the pinned host key in a known_hosts file beside it, for `ssh -F`, rsync and editors.
 * No SSH client is loaded here (`vmenv ssh` runs OpenSSH with it).
 */
import { join } from 'node:path';
import type { MachineState } from '../project/state.js';
import { netnsProxyCommand, renderSshConfigHost } from '../ssh/config.js';
import { fileHostKeyStore, writePinnedKnownHosts } from '../ssh/host-key.js';
import { writeFileAtomicIfChanged } from '../ssh/write-if-changed.js';
import { UserError } from '../ui/errors.js';
import type { LibvirtClient } from '../libvirt/client.js';
import type { MachineRef } from './handle.js';
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

/**
 * An OpenSSH client config for the machine, with its pinned host key in a known_hosts
 * file beside it, that `ssh -F <file> <machine>` and `rsync -e 'ssh -F <file>'` use.
 * Returns the config text and the file it was written to (each file is written only
 * when its content changed). `record`: the machine's state record, when the caller has
 * read it already.
 */
export async function writeMachineSshConfig(h: MachineRef, record?: MachineState): Promise<{ text: string; path: string }> {
  record ??= await requireRecord(h);
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
  await writeFileAtomicIfChanged(path, text, 0o600);
  return { text, path };
}

/** Why a machine cannot be reached over SSH, as libvirt sees it: not running, or no address known. */
export async function whyUnreachable(m: MachineRef, record: MachineState, libvirt: () => Promise<LibvirtClient>): Promise<UserError | undefined> {
  const { status } = await machineStatus({ ...m, client: await libvirt() });
  if (status !== 'running') return new UserError(`machine '${m.machine.name}' is ${status}`, { hint: `Run 'vmenv up ${m.machine.name}' first.` });
  return record.ip ? undefined : noAddress(m);
}

export function noAddress(m: MachineRef): UserError {
  return new UserError(`machine '${m.machine.name}' runs, but its address is not known`, {
    hint: `Run 'vmenv up ${m.machine.name}': it finds the address and waits for SSH.`,
  });
}
