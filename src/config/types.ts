/**
 * The typed, fully defaulted configuration that loadConfig returns. Property names are
 * the keys of vmenv.yaml (snake_case), so a value is found under the name the user
 * wrote. Fields that have a default are always set; fields typed `| undefined` have no
 * default and are decided later (by the box, the session, the host).
 *
 * What each key means, its default and its checks are defined once, in fields.ts, which
 * both the validator and the JSON Schema generator read.
 */

/** `kvm` (hardware virtualization), `qemu` (software emulation), `auto`: kvm when the host can run it. */
export type Driver = 'auto' | 'kvm' | 'qemu';
/** `nat`: a libvirt network with DHCP; `user`: QEMU user-mode networking, SSH forwarded to 127.0.0.1. */
export type NetworkMode = 'nat' | 'user';
export type SyncedFolderType = 'rsync' | '9p' | 'virtiofs';
export type NinePAccessMode = 'mapped' | 'passthrough' | 'squash';
export type ProvisionerType = 'shell' | 'file' | 'ansible';
/** `once`: on the first `up` (and when asked); `always`: on every `up`/`reload`/`provision`; `never`: only when named with --provision-with. */
export type ProvisionRun = 'once' | 'always' | 'never';
/** How `halt` stops the guest first: `poweroff` over SSH, an ACPI request, the guest agent, or at once. */
export type ShutdownMode = 'ssh' | 'acpi' | 'agent' | 'destroy';
export type MachineType = 'pc' | 'q35';
export type Firmware = 'bios' | 'uefi';
export type DiskFormat = 'qcow2' | 'raw';
export type DiskBus = 'virtio' | 'sata' | 'scsi';
export type Protocol = 'tcp' | 'udp';
export type SuspendMode = 'pause' | 'managedsave';

export interface BoxRef {
  /** A box name (`tiny`, `debian-12`, `org/name`), a `.box` file or a URL, as written. */
  name: string;
  /** A version constraint (`1.2.0`, `>= 1.0, < 2`, `~> 1.2`); undefined: the newest. */
  version: string | undefined;
}

export interface NetworkConfig {
  /** undefined: decided later (`nat` on qemu:///system, `user` on qemu:///session). */
  mode: NetworkMode | undefined;
  /** libvirt network to use (nat); undefined: one vmenv creates and owns. */
  name: string | undefined;
  /** IPv4 CIDR (network address, e.g. 192.168.121.0/24); undefined: a free one is picked. */
  subnet: string | undefined;
  /** Absolute path of a dnsmasq lease/status file or a folder of them; undefined: libvirt's own on a local host. */
  lease_file: string | undefined;
}

export interface SshConfig {
  username: string;
  /** The guest's SSH port. */
  port: number;
  /** Absolute path (resolved against the project folder, `~` expanded); undefined: the per-machine key. */
  private_key_path: string | undefined;
  /** Replace a well-known insecure key with the per-machine key on first contact. */
  insert_key: boolean;
}

export interface SyncedFolder {
  /** Absolute path on the host (resolved against the project folder, `~` expanded). */
  host: string;
  /** Absolute path in the guest, without a trailing slash. */
  guest: string;
  type: SyncedFolderType;
  /** rsync exclude patterns. */
  exclude: string[];
  /** Extra rsync arguments. */
  args: string[];
  /** rsync: honour the folder's `.gitignore` files (and leave `.git/` out). */
  exclude_vcs_ignored: boolean;
  owner: string | undefined;
  group: string | undefined;
  /** Create the host folder when it is missing. */
  create: boolean;
  /** Always false here: disabled folders are left out of MachineConfig.synced_folders. */
  disabled: boolean;
  /** Mount it in the guest (9p, virtiofs). */
  mount: boolean;
  /** 9p only. */
  accessmode: NinePAccessMode | undefined;
  readonly: boolean;
}

interface ProvisionerBase {
  /** For --provision-with; undefined: matched by type only. Unique per machine. */
  name: string | undefined;
  run: ProvisionRun;
}

/** Exactly one of `inline` and `path` is set. */
export interface ShellProvisioner extends ProvisionerBase {
  type: 'shell';
  inline: string | undefined;
  /** Absolute path of a script on the host. */
  path: string | undefined;
  args: string[];
  env: Record<string, string>;
  /** Run with sudo. */
  privileged: boolean;
}

export interface FileProvisioner extends ProvisionerBase {
  type: 'file';
  /** Absolute path of a file or folder on the host. */
  source: string;
  /** Path in the guest: absolute or starting with `~`. */
  destination: string;
}

export interface AnsibleProvisioner extends ProvisionerBase {
  type: 'ansible';
  /** Absolute path of the playbook on the host. */
  playbook: string;
  extra_vars: Record<string, unknown>;
  /** ansible-playbook --limit (a list is joined with commas). */
  limit: string | undefined;
  tags: string[];
  become: boolean;
}

export type Provisioner = ShellProvisioner | FileProvisioner | AnsibleProvisioner;

export interface ShutdownConfig {
  mode: ShutdownMode;
  /** Seconds to wait for the guest to stop before forcing it off. */
  timeout: number;
}

export interface BootConfig {
  machine: MachineType;
  firmware: Firmware;
  /** Seconds to wait for the IP address and SSH. */
  timeout: number;
}

export interface DiskConfig {
  /** Bytes. */
  size: number;
  format: DiskFormat;
  bus: DiskBus;
  name: string | undefined;
}

export interface ForwardedPort {
  guest: number;
  host: number;
  host_ip: string;
  protocol: Protocol;
  /** Pick another free host port when this one is taken. */
  auto_correct: boolean;
}

/**
 * A cloud-init document as vmenv.yaml gives it: a file, as written (relative to the
 * project folder, `~` expands; read and checked at the machine's first `up`), or inline
 * (a mapping, or `#cloud-config` text already parsed).
 */
export type CloudInitSource = { file: string } | { inline: Record<string, unknown> };

/** The user's own cloud-init, merged with vmenv's seed (see lifecycle/seed.ts). */
export interface CloudInitConfig {
  /** `#cloud-config` user data; vmenv's user, key and host name are merged in. */
  user_data: CloudInitSource | undefined;
  /** network-config (v1 or v2), instead of DHCP on the first NIC. */
  network_config: CloudInitSource | undefined;
}

/** One machine, with the top-level defaults and its own overrides merged and every default filled. */
export interface MachineConfig {
  /** The key under `machines:`, or `default` when the file has no `machines:`. */
  name: string;
  /** The default machine for single-machine commands. */
  primary: boolean;
  box: BoxRef;
  cpus: number;
  /** MiB. */
  memory: number;
  /** Bytes; undefined: the box's own size. */
  disk_size: number | undefined;
  /** RFC 1123 label; default: the machine's name. */
  hostname: string;
  /** libvirt URI; undefined: resolved later (VMENV_LIBVIRT_URI, LIBVIRT_DEFAULT_URI, system, session). */
  uri: string | undefined;
  driver: Driver;
  /** Storage pool. */
  pool: string;
  network: NetworkConfig;
  ssh: SshConfig;
  /** Enabled folders only; the project folder on /vagrant unless replaced or disabled. */
  synced_folders: SyncedFolder[];
  provision: Provisioner[];
  shutdown: ShutdownConfig;
  autostart: boolean;
  boot: BootConfig;
  disks: DiskConfig[];
  forwarded_ports: ForwardedPort[];
  suspend_mode: SuspendMode;
  cloud_init: CloudInitConfig;
}

export interface ProjectConfig {
  /** Absolute path of vmenv.yaml. */
  path: string;
  /** The project folder (where vmenv.yaml is). */
  dir: string;
  /** In the order of the file. */
  machines: MachineConfig[];
  /** The machine single-machine commands use by default: the only one, or the one marked `primary`. */
  primary: MachineConfig | undefined;
}

/** One thing wrong with the file (or worth a warning). */
export interface ConfigProblem {
  /** Where in the file, as a key path: `machines.web.memory`, `provision[0].inline`; '' for syntax errors. */
  path: string;
  message: string;
  /** 1-based. */
  line?: number;
  /** 1-based. */
  column?: number;
}

export interface LoadedConfig {
  config: ProjectConfig;
  warnings: ConfigProblem[];
}
