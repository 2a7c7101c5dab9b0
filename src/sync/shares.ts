/**
 * Host folders shared into a guest without copying: 9p (virtio-9p) and virtiofs. Pure
 * parts only: which synced folders are shares and their mount tags, the guest commands
 * that mount them, and parsers for what the guest (/proc/mounts) and libvirt (the live
 * domain XML) say. src/sync/mounts.ts does the talking.
 */
import type { MachineConfig, NinePAccessMode, SyncedFolder } from '../config/types.js';
import { shQuote } from '../ssh/known-hosts.js';
import { unescapeXml } from '../libvirt/xml/writer.js';

export type ShareDriver = '9p' | 'virtiofs';

/** A 9p or virtiofs synced folder with the mount tag its device carries. */
export interface Share {
  folder: SyncedFolder;
  driver: ShareDriver;
  /** The device's mount tag (`vmenv0`, `vmenv1`, …: in the order of the shares). */
  tag: string;
}

/** The 9p payload size asked for: 256 KiB (Debian 12's kernel caps virtio at 500 KiB; QEMU warns below 8 KiB). */
export const NINEP_MSIZE = 262144;

/** The mount tag of the i-th share of a machine. */
export function shareTag(i: number): string {
  return `vmenv${i}`;
}

/** A machine's 9p and virtiofs folders, in order, with their tags. */
export function machineShares(machine: Pick<MachineConfig, 'synced_folders'>): Share[] {
  return machine.synced_folders
    .filter((f) => !f.disabled && (f.type === '9p' || f.type === 'virtiofs'))
    .map((folder, i) => ({ folder, driver: folder.type as ShareDriver, tag: shareTag(i) }));
}

/** The 9p access mode of a folder (libvirt's default, `mapped`, when unset). */
export function accessModeOf(folder: Pick<SyncedFolder, 'accessmode'>): NinePAccessMode {
  return folder.accessmode ?? 'mapped';
}

/** `-o` options of the guest's mount. A read-only virtiofs share is read-only only by this mount (libvirt 9.0 has no read-only virtiofs). */
export function mountOptions(share: Pick<Share, 'driver'> & { folder: Pick<SyncedFolder, 'readonly'> }): string {
  const ro = share.folder.readonly;
  if (share.driver === 'virtiofs') return ro ? 'ro' : 'rw';
  return ['trans=virtio', 'version=9p2000.L', `msize=${NINEP_MSIZE}`, ...(ro ? ['ro'] : [])].join(',');
}

/** Kernel modules a share's file system needs, in load order. */
export function shareModules(driver: ShareDriver): string[] {
  return driver === '9p' ? ['9pnet_virtio', '9p'] : ['virtiofs'];
}

/** Exit statuses of MOUNT_SCRIPT besides 0 (mounted). */
export const MountStatus = {
  /** The kernel has no such file system, even after modprobe. */
  noFilesystem: 3,
  /** 9p: no virtio transport for 9p (module 9pnet_virtio). */
  noTransport: 4,
  mkdirFailed: 5,
  mountFailed: 6,
} as const;

/**
 * Mounts one share as root: $1 file system, $2 tag, $3 guest folder, $4 options, $5
 * modules. Loads the modules when the file system (or 9p's virtio transport) is missing,
 * then makes the folder and mounts. busybox sh and mount are enough.
 */
export const MOUNT_SCRIPT = [
  'fs=$1; tag=$2; dir=$3; opts=$4; mods=$5',
  'has_fs() { grep -q "[[:space:]]$fs\\$" /proc/filesystems; }',
  'has_transport() { [ "$fs" != 9p ] || [ -d /sys/bus/virtio/drivers/9pnet_virtio ]; }',
  'if ! has_fs || ! has_transport; then for m in $mods; do modprobe "$m" 2>/dev/null; done; fi',
  `has_fs || exit ${MountStatus.noFilesystem}`,
  `has_transport || exit ${MountStatus.noTransport}`,
  `mkdir -p -- "$dir" || exit ${MountStatus.mkdirFailed}`,
  `mount -t "$fs" -o "$opts" "$tag" "$dir" || exit ${MountStatus.mountFailed}`,
].join('\n');

/** Runs a script as root: directly when the SSH user is root, else through `sudo -n`. */
export function asRoot(script: string, args: readonly string[]): string {
  const argv = ['vmenv-mount', ...args].map(shQuote).join(' ');
  return `if [ "$(id -u)" -eq 0 ]; then sh -c ${shQuote(script)} ${argv}; else sudo -n sh -c ${shQuote(script)} ${argv}; fi`;
}

/** The guest command that mounts a share at its guest folder (see MOUNT_SCRIPT for its exit statuses). */
export function mountCommand(share: Share): string {
  return asRoot(MOUNT_SCRIPT, [share.driver, share.tag, share.folder.guest, mountOptions(share), shareModules(share.driver).join(' ')]);
}

/**
 * Who should own a share's guest folder, when vmenv can say: only a 9p share in `mapped`
 * mode stores the guest's ownership (in extended attributes on the host). With
 * `passthrough`, `squash` and virtiofs the guest sees the host's owners, and a chown
 * would change (or try to change) the host folder itself. Undefined: leave it.
 */
export function shareOwner(share: Share, sshUser: string): { user: string; group: string } | undefined {
  if (share.driver !== '9p' || accessModeOf(share.folder) !== 'mapped' || share.folder.readonly) return undefined;
  const user = share.folder.owner ?? sshUser;
  return { user, group: share.folder.group ?? user };
}

/** The guest command giving the share's mount point its owner (not recursive: the host's files keep theirs). */
export function chownCommand(share: Share, owner: { user: string; group: string }): string {
  return asRoot('chown -- "$1" "$2"', [`${owner.user}:${owner.group}`, share.folder.guest]);
}

/** One line of /proc/mounts, with its octal escapes (`\040` for a space, …) decoded. */
export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string[];
}

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseProcMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    out.push({ source: unescapeMountField(f[0]!), target: unescapeMountField(f[1]!), fstype: f[2]!, options: f[3]!.split(',') });
  }
  return out;
}

/** Where a share's tag is mounted now: the last (topmost) mount of that tag and file system. */
export function mountedAt(mounts: readonly MountEntry[], share: Pick<Share, 'driver' | 'tag'>): MountEntry | undefined {
  return mounts.filter((m) => m.source === share.tag && m.fstype === share.driver).at(-1);
}

/** A `<filesystem>` device of a domain as libvirt reports it. */
export interface DomainFilesystem {
  driver: ShareDriver;
  source: string;
  tag: string;
  accessmode: NinePAccessMode | undefined;
  readonly: boolean;
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(tag);
  const v = m?.[1] ?? m?.[2];
  return v === undefined ? undefined : unescapeXml(v);
}

/** The mount-type `<filesystem>` devices of a domain's XML (libvirt's own output). */
export function parseDomainFilesystems(xml: string): DomainFilesystem[] {
  const out: DomainFilesystem[] = [];
  for (const m of xml.matchAll(/<filesystem\b([^>]*)>([\s\S]*?)<\/filesystem>/g)) {
    const open = `<filesystem${m[1] ?? ''}>`;
    const body = m[2] ?? '';
    const type = attr(open, 'type') ?? 'mount';
    if (type !== 'mount') continue;
    const driverTag = /<driver\b[^>]*>/.exec(body)?.[0];
    const source = attr(/<source\b[^>]*>/.exec(body)?.[0] ?? '', 'dir');
    const tag = attr(/<target\b[^>]*>/.exec(body)?.[0] ?? '', 'dir');
    if (source === undefined || tag === undefined) continue;
    const driver: ShareDriver = driverTag !== undefined && attr(driverTag, 'type') === 'virtiofs' ? 'virtiofs' : '9p';
    const mode = attr(open, 'accessmode');
    out.push({
      driver,
      source,
      tag,
      accessmode: mode === 'mapped' || mode === 'passthrough' || mode === 'squash' ? mode : undefined,
      readonly: /<readonly\s*\/>/.test(body),
    });
  }
  return out;
}

/**
 * The tag under which the running domain shares this folder: the device with the same
 * driver and host folder (and for 9p the same access mode and read-only flag). Undefined
 * when the domain was defined before the folder was added or changed (`vmenv reload`
 * redefines it).
 */
export function liveTagOf(devices: readonly DomainFilesystem[], share: Share, source: string): string | undefined {
  const matches = devices.filter(
    (d) =>
      d.driver === share.driver &&
      d.source.replace(/\/+$/, '') === source.replace(/\/+$/, '') &&
      (share.driver !== '9p' || ((d.accessmode ?? 'passthrough') === accessModeOf(share.folder) && d.readonly === share.folder.readonly)),
  );
  return (matches.find((d) => d.tag === share.tag) ?? matches[0])?.tag;
}
