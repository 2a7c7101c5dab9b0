/**
 * The context of `up`, as it grows: what every step starts from, what a machine has once
 * its domain exists (whether `up` just made it or found it), and what reaching it adds.
 */
import type { MachineConfig, ProjectConfig } from '../config/types.js';
import type { LibvirtHost } from '../hosts/libvirt-host.js';
import type { LibvirtClient } from '../libvirt/client.js';
import type { DomainRef, NetworkRef } from '../libvirt/protocol/types.js';
import type { MachineNics, MachineState, ProjectState } from '../project/state.js';
import type { SshSession } from '../ssh/index.js';
import type { LoginKey } from '../access/login.js';

/** What every step of `up` starts from. */
export interface UpBase {
  project: ProjectConfig;
  machine: MachineConfig;
  state: ProjectState;
  client: LibvirtClient;
  /** The libvirt host: where its files are, how its guests are reached. */
  host: LibvirtHost;
  resourceName: string;
  record: MachineState;
  /** The keys tried after the machine's own (ssh.private_key_path, or Vagrant's insecure pair), read before anything is made. */
  fallbackKeys: LoginKey[];
}

/** A machine whose domain exists, with the NICs it was defined with. */
export interface Defined extends UpBase {
  domain: DomainRef;
  /** The first is the management NIC: the address SSH goes to is found on it. */
  nics: MachineNics;
  /** The libvirt network of a NAT management NIC. */
  network?: NetworkRef;
}

/** A machine that is up: its address known and an SSH session open. */
export interface Reached extends Defined {
  ip: string;
  session: SshSession;
}

/** A note for the user, outside the step list: "default: host port 8080 is in use: …". */
export function say(ctx: Pick<UpBase, 'machine'>, message: string): void {
  process.stderr.write(`${ctx.machine.name}: ${message}\n`);
}

/** Changes the machine's record and writes it at once, so a crash never loses what was made. */
export async function save(ctx: Pick<UpBase, 'record' | 'state'>, change: (r: MachineState) => void): Promise<void> {
  change(ctx.record);
  await ctx.state.write(ctx.record);
}
