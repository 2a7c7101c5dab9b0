/**
 * 9p and virtiofs shares on `up` and `reload`: their host folders made ready before the
 * domain starts, QEMU's refusal to open one explained, and each share mounted in the
 * guest by the tag the running domain gives it (idempotent: a share already mounted at
 * its folder is left alone).
 */
import { LibvirtError } from '../libvirt/errors.js';
import { parseLibvirtUri, usesUserDaemon } from '../libvirt/uri.js';
import { firstAccessProblem, identityOf, parseDacBaselabel, processIdentity, statComponents, type Identity } from '../hosts/qemu-user.js';
import type { SshSession } from '../ssh/index.js';
import { UserError } from '../errors.js';
import type { MachineHandle } from '../hosts/handle.js';
import {
  accessModeOf,
  chownCommand,
  liveTagOf,
  machineShares,
  mountCommand,
  mountedAt,
  MountStatus,
  parseDomainFilesystems,
  parseProcMounts,
  shareModules,
  shareOwner,
  type Share,
} from './shares.js';
import { ensureFolderSource, folderSource } from './sync.js';

export interface MountSharesOptions {
  signal?: AbortSignal;
  /** One line per share mounted, prefixed with the machine's name. Default: stdout. */
  out?: NodeJS.WritableStream;
  /** Problems that leave a share usable but not as asked (default: `Warning: …` on stderr). */
  warn?: (line: string) => void;
}

/** What a box's kernel needs for a share type, for messages. */
export function kernelNeeds(driver: Share['driver']): string {
  return driver === '9p'
    ? 'CONFIG_NET_9P, CONFIG_NET_9P_VIRTIO and CONFIG_9P_FS (modules 9pnet, 9pnet_virtio, 9p)'
    : 'CONFIG_FUSE_FS and CONFIG_VIRTIO_FS (modules fuse, virtiofs; Linux 5.4 or later)';
}

function shareLabel(share: Share, source: string): string {
  const mode = share.driver === '9p' ? `, ${accessModeOf(share.folder)}` : '';
  return `${share.folder.guest} (${share.driver}${mode}${share.folder.readonly ? ', read-only' : ''}, from ${source})`;
}

/**
 * Makes every share's host folder ready before the domain is defined or started: QEMU
 * (or virtiofsd) cannot start without it. Missing folders are created with `create:
 * true`, else an error names them.
 */
export async function prepareShareSources(h: Pick<MachineHandle, 'project' | 'machine'>): Promise<void> {
  for (const share of machineShares(h.machine)) await ensureFolderSource(h, share.folder);
}

/** QEMU's user for a local libvirt: the session user, or the system daemon's DAC label. Undefined when it cannot be told. */
async function qemuIdentity(h: Pick<MachineHandle, 'client'>): Promise<Identity | undefined> {
  try {
    const uri = parseLibvirtUri(h.client.uri);
    if (uri.transport !== 'unix') return undefined;
    if (usesUserDaemon(uri, process.getuid?.() ?? 0)) return processIdentity();
    const label = parseDacBaselabel(await h.client.connectGetCapabilities(), 'qemu');
    return label === undefined ? undefined : await identityOf(label.uid, label.gid);
  } catch {
    return undefined;
  }
}

/** How to let `who` use `folder` (9p reads and writes it as QEMU's user). */
async function accessHint(folder: string, who: Identity | undefined): Promise<string> {
  const name = who?.name ?? "QEMU's user";
  const grant = `sudo setfacl -R -m u:${name}:rwX -m d:u:${name}:rwX ${folder}  (or: sudo chown -R ${name} ${folder})`;
  const problem = who === undefined ? undefined : firstAccessProblem((await statComponents(folder).catch(() => ({ entries: [] }))).entries, who, false);
  const parent = problem !== undefined && problem.path !== folder ? `sudo chmod o+x ${problem.path}  (or: sudo setfacl -m u:${name}:x ${problem.path}), then ` : '';
  return (
    `QEMU runs as ${name} and opens 9p folders with that user's rights: every folder on the way needs search (x) permission for it, ` +
    `the shared folder read and write. Give them: ${parent}${grant}. ` +
    "Or use type: virtiofs (its daemon runs as root) or qemu:///session (QEMU runs as you)."
  );
}

/** QEMU's message when it cannot open a 9p folder at start: `cannot initialize fsdev '…': failed to open '/path': Permission denied`. */
export function fsdevOpenFailure(message: string): { path: string; reason: string } | undefined {
  const m = /cannot initialize fsdev '[^']*': failed to open '([^']+)': ([^\n(]+)/.exec(message);
  return m === null ? undefined : { path: m[1]!, reason: m[2]!.trim() };
}

/** A clearer error for a domain that did not start because of a share; undefined when it was something else. */
export async function explainShareFailure(h: Pick<MachineHandle, 'machine' | 'client'>, err: unknown): Promise<UserError | undefined> {
  if (!(err instanceof LibvirtError)) return undefined;
  const failure = fsdevOpenFailure(err.message);
  if (failure === undefined) return undefined;
  const denied = /permission denied/i.test(failure.reason);
  const who = denied ? await qemuIdentity(h) : undefined;
  return new UserError(
    `machine '${h.machine.name}' did not start: QEMU${who ? ` (user ${who.name})` : ''} cannot open the 9p shared folder ${failure.path}: ${failure.reason}`,
    { hint: denied ? await accessHint(failure.path, who) : 'Check that the folder exists on the libvirt host.', cause: err },
  );
}

/** Runs `up`/`reload` of a machine with its share folders made ready first and share failures explained. */
export async function withShareSources<T>(h: MachineHandle, bringUp: () => Promise<T>): Promise<T> {
  await prepareShareSources(h);
  try {
    return await bringUp();
  } catch (err) {
    throw (await explainShareFailure(h, err)) ?? err;
  }
}

function lastLine(s: string | undefined): string {
  return (s ?? '').trim().split('\n').at(-1) ?? '';
}

/** The error for a failed MOUNT_SCRIPT run. */
export function mountError(machine: string, share: Share, source: string, code: number | null, stderr: string | undefined): UserError {
  const what = `machine '${machine}' cannot mount ${shareLabel(share, source)}`;
  const box = `The box's kernel needs ${kernelNeeds(share.driver)}; vmenv's boxes (tiny, debian-12) and Debian's kernels have them.`;
  switch (code) {
    case MountStatus.noFilesystem:
      return new UserError(`${what}: its kernel has no ${share.driver} file system (modprobe ${shareModules(share.driver).join(', ')} found none)`, {
        hint: `${box} Or use type: rsync.`,
      });
    case MountStatus.noTransport:
      return new UserError(`${what}: its kernel has no virtio transport for 9p (module 9pnet_virtio)`, { hint: `${box} Or use type: rsync.` });
    case MountStatus.mkdirFailed:
      return new UserError(`${what}: cannot create ${share.folder.guest}: ${lastLine(stderr)}`, { hint: 'Choose another guest path.' });
    case MountStatus.mountFailed:
      return new UserError(`${what}: ${lastLine(stderr)}`, {
        hint: `The tag is ${share.tag}. ${box} Or set 'mount: false' on the folder and mount it yourself.`,
      });
    default:
      if (/sudo/.test(stderr ?? '')) {
        return new UserError(`${what}: ${lastLine(stderr)}`, { hint: 'Mounting needs root: the SSH user needs passwordless sudo (NOPASSWD), as in the boxes vmenv builds.' });
      }
      return new UserError(`${what} (exit ${String(code)}): ${lastLine(stderr)}`);
  }
}

/** The shares of the running domain as libvirt has them, by tag. */
async function liveDevices(h: MachineHandle): Promise<ReturnType<typeof parseDomainFilesystems>> {
  const record = await h.state.read(h.machine.name);
  if (!record?.domain) return [];
  const domain = await h.client.domainLookupByName(record.domain.name);
  return parseDomainFilesystems(await h.client.domainGetXmlDesc(domain));
}

/**
 * Mounts the machine's 9p and virtiofs folders (those without `mount: false`) in the
 * guest over `session`, loading their kernel modules when needed; with 9p `mapped`,
 * gives the mount point its owner and group (also when it was mounted already: the host
 * folder's permissions may have been fixed since). Returns how many it mounted now.
 */
export async function mountShares(h: MachineHandle, session: SshSession, options: MountSharesOptions = {}): Promise<number> {
  const shares = machineShares(h.machine).filter((s) => s.folder.mount);
  if (shares.length === 0) return 0;
  const out = options.out ?? process.stdout;
  const warn = options.warn ?? ((line: string) => void process.stderr.write(`Warning: ${line}\n`));
  const name = h.machine.name;
  const exec = (command: string): ReturnType<SshSession['exec']> => session.exec(command, options.signal ? { signal: options.signal } : {});

  const devices = await liveDevices(h);
  const procMounts = await exec('cat /proc/mounts');
  if (procMounts.code !== 0) throw new UserError(`cannot read /proc/mounts in machine '${name}': ${lastLine(procMounts.stderr)}`);
  const mounts = parseProcMounts(procMounts.stdout ?? '');

  let mounted = 0;
  for (const configured of shares) {
    const source = folderSource(h, configured.folder);
    const tag = liveTagOf(devices, configured, source);
    if (tag === undefined) {
      throw new UserError(`${shareLabel(configured, source)} is not attached to machine '${name}': its domain was defined before this folder was added or changed`, {
        hint: `Run 'vmenv reload ${name}': it redefines the domain with the shares of vmenv.yaml.`,
      });
    }
    const share: Share = { ...configured, tag };
    const at = mountedAt(mounts, share);
    if (at !== undefined && at.target !== share.folder.guest) {
      throw new UserError(`machine '${name}' has the share for ${share.folder.guest} (tag ${tag}) mounted at ${at.target} already`, {
        hint: `Unmount it there (vmenv ssh ${name} -c 'sudo umount ${at.target}'), or run 'vmenv reload ${name}'.`,
      });
    }
    if (at === undefined) {
      const r = await exec(mountCommand(share));
      if (r.code !== 0) throw mountError(name, share, source, r.code, r.stderr);
    }

    const owner = shareOwner(share, h.machine.ssh.username);
    if (owner !== undefined) {
      const c = await exec(chownCommand(share, owner));
      if (c.code !== 0 && /permission denied|operation not permitted/i.test(c.stderr ?? '')) {
        const who = await qemuIdentity(h);
        warn(
          `${name}: ${share.folder.guest} is mounted, but the guest cannot write to it nor own it (${owner.user}:${owner.group}): ` +
            `QEMU's user${who ? ` ${who.name}` : ''} cannot write to ${source} on the host. ${await accessHint(source, who)} Or set 'readonly: true' on the folder.`,
        );
      } else if (c.code !== 0) {
        throw new UserError(`machine '${name}': cannot give ${share.folder.guest} to ${owner.user}:${owner.group}: ${lastLine(c.stderr)}`, {
          hint: 'Set owner and group of the folder in vmenv.yaml to a user and group that exist in the guest.',
        });
      }
    }
    if (at === undefined) {
      out.write(`${name}: mounted ${shareLabel(share, source)}\n`);
      mounted++;
    }
  }
  return mounted;
}
