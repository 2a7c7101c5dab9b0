/**
 * A libvirt host as vmenv sees it, from its URI: whether its files are ours to read, where
 * libvirt keeps a guest's console log, dnsmasq's leases and new pools there, and how
 * vmenv's own processes reach its guests. Every "is this host local / a session daemon"
 * question is answered here, once per URI.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isLocalUri, isSessionUri } from '../libvirt/uri.js';
import { vmenvHome } from '../project/home.js';
import { netnsProxyCommand } from '../ssh/config.js';
import { runtimeDirPath } from '../util/runtime-dir.js';

/** The environment variable naming a network namespace from which guests are reached. */
const GUEST_NETNS_ENV = 'VMENV_GUEST_NETNS';

/**
 * How a process on this machine reaches a guest's address: directly, or from inside the
 * network namespace libvirtd runs in (`ip netns exec`), where its NAT networks and QEMU's
 * user-mode forwards are.
 */
export type GuestReach = { via: 'direct' } | { via: 'netns'; netns: string };

export class LibvirtHost {
  /** libvirtd runs on this machine: its files (console logs, leases) are ours to read. */
  readonly local: boolean;
  /** A per-user session daemon: QEMU runs as the user, and there are no NAT networks of its own. */
  readonly session: boolean;

  constructor(
    readonly uri: string,
    readonly reach: GuestReach,
  ) {
    this.local = isLocalUri(uri);
    this.session = isSessionUri(uri);
  }

  /** The host behind `uri`, its guests reached as `env` says (VMENV_GUEST_NETNS). */
  static of(uri: string, env: NodeJS.ProcessEnv = process.env): LibvirtHost {
    const netns = env[GUEST_NETNS_ENV];
    return new LibvirtHost(uri, netns ? { via: 'netns', netns } : { via: 'direct' });
  }

  /** The network mode a machine gets when vmenv.yaml names none: QEMU user-mode on a session daemon. */
  get defaultNetworkMode(): 'user' | 'nat' {
    return this.session ? 'user' : 'nat';
  }

  /** Where the guest's serial console is written, when the file is on this machine. */
  serialLogPath(domainName: string): string | undefined {
    if (!this.local) return undefined; // a remote host's file is not ours to read
    if (this.session) return join(process.env.HOME ?? '/root', '.cache', 'libvirt', 'qemu', 'log', `${domainName}-serial.log`);
    return `/var/log/libvirt/qemu/${domainName}-serial.log`;
  }

  /** The last lines of the guest's serial console, or a line saying why there are none. */
  async consoleTail(domainName: string, lines = 25): Promise<string[]> {
    const path = this.serialLogPath(domainName);
    if (!path) return ['(the console log is on the remote libvirt host)'];
    try {
      return (await readFile(path, 'utf8')).replace(/\r/g, '').trimEnd().split('\n').slice(-lines);
    } catch {
      return [`(no console log at ${path})`];
    }
  }

  /** The folder of libvirt's dnsmasq lease and status files, when they are on this machine. */
  get leaseDir(): string | undefined {
    if (!this.local || this.session) return undefined; // session mode has no NAT networks of its own
    return '/var/lib/libvirt/dnsmasq';
  }

  /**
   * Where a session daemon's guest agent socket goes. libvirt's own choice, under
   * ~/.config/libvirt/qemu/channel/…, passes the 108 bytes a unix socket path may have
   * for a home or user name of ordinary length: vmenv puts it in a per-user folder in /tmp.
   */
  agentSocketPath(domainName: string): string | undefined {
    if (!this.session || !this.local) return undefined;
    const id = createHash('sha256').update(domainName).digest('hex').slice(0, 16);
    return join(runtimeDirPath(), `${id}.agent`);
  }

  /**
   * Where `up` puts a storage pool that does not exist yet. On a system daemon QEMU runs
   * as its own user (libvirt-qemu on Debian), which cannot enter a home folder (0700):
   * the pool goes where libvirt keeps images (the `default` pool where libvirt itself
   * would, /var/lib/libvirt/images); it is also the right place on a remote host. A
   * session daemon runs QEMU as the user, so the user's data folder does.
   */
  newPoolPath(name: string): string {
    if (this.session) return join(vmenvHome(), 'pools', name);
    return name === 'default' ? '/var/lib/libvirt/images' : join('/var/lib/libvirt/vmenv-pools', name);
  }

  /** The network namespace a helper process (forwarder, route listing) must run in to see the guests. */
  get guestNetns(): string | undefined {
    return this.reach.via === 'netns' ? this.reach.netns : undefined;
  }

  /** The ProxyCommand an SSH client dials guests through (`%h %p`), when it cannot dial them itself. */
  get sshProxyCommand(): string | undefined {
    return this.reach.via === 'netns' ? netnsProxyCommand(this.reach.netns) : undefined;
  }
}
