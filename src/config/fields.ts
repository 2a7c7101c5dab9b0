/**
 * Every key of vmenv.yaml, defined once: its kind, its default, its checks and the
 * description editors show. The validator (validate.ts), the defaults (normalize.ts) and
 * the JSON Schema (json-schema.ts) all read these tables; nothing else lists keys.
 *
 * The tables are checked against the types of types.ts at compile time (FieldsOf), so
 * a key cannot be added to one and forgotten in the other.
 */
import { isIP } from 'node:net';
import { type LibvirtUri, parseLibvirtUri } from '../libvirt/uri.js';
import { CLOUD_CONFIG_HEADER, HOST_LABEL_RE, networkConfigProblems, ONLY_CLOUD_CONFIG, otherUserDataKind, parseUserData, userDataProblems } from './cloud-init.js';
import type {
  AnsibleProvisioner,
  BootConfig,
  CloudInitConfig,
  CloudInitSource,
  DiskConfig,
  FileProvisioner,
  ForwardedPort,
  MachineConfig,
  NetworkConfig,
  ShellProvisioner,
  ShutdownConfig,
  SshConfig,
  SyncedFolder,
} from './types.js';
import { type BareUnit, MiB } from './units.js';

// ---------------------------------------------------------------------------------------
// The descriptor language

export interface FieldBase {
  /** Shown by editors (JSON Schema `description`) and in `vmenv init` comments. */
  description: string;
  examples?: readonly unknown[];
  /** Turns the checked value into the value MachineConfig holds. */
  normalize?: (value: never) => unknown;
}

export interface StringField extends FieldBase {
  kind: 'string';
  default?: string;
  /** Accept YAML numbers too, as written (`version: 1.0` is the string "1.0"). */
  numeric?: boolean;
  /** The empty string is a value (else: "must not be empty"). */
  allowEmpty?: boolean;
  /** For the JSON Schema only; `check` does the checking. */
  pattern?: string;
  format?: string;
  /** What is wrong with the value ("must be …"), or undefined when it is fine. */
  check?: (value: string) => string | undefined;
  /** A path on the host: resolved against the project folder (and `~` expanded) when normalised. */
  hostPath?: boolean;
}

export interface IntField extends FieldBase {
  kind: 'int';
  default?: number;
  min?: number;
  max?: number;
  /** "a port number from 1 to 65535": the message says "must be <what>". */
  what?: string;
}

export interface BoolField extends FieldBase {
  kind: 'bool';
  default?: boolean;
}

export interface EnumField extends FieldBase {
  kind: 'enum';
  values: readonly string[];
  default?: string;
}

/** A size: a bare number in `bare` units, or a string with a unit (see units.ts). */
export interface SizeField extends FieldBase {
  kind: 'size';
  /** The unit of the checked value: whole MiB (memory) or whole bytes (disks). */
  to: 'MiB' | 'bytes';
  bare: BareUnit;
  /** Smallest value, in bytes. */
  min: number;
  /** "a number of MiB or a size such as 512M or 2G": the message says "must be <what>". */
  what: string;
  default?: number;
}

export type ObjectCheck = (value: Record<string, unknown>, report: (key: string | undefined, message: string) => void) => void;

export interface ObjectField extends FieldBase {
  kind: 'object';
  fields: Record<string, Field>;
  required?: readonly string[];
  /** Per-machine values are merged into the top-level ones key by key (else they replace them). */
  merge?: 'deep';
  /** Checks across keys, run when every key present was valid. */
  check?: ObjectCheck;
  /** Name under `$defs` in the JSON Schema. */
  def?: string;
  /** Keys starting with `x-` are accepted and ignored (a place for YAML anchors). */
  extensions?: boolean;
}

/** Keys starting with this are ignored where ObjectField.extensions is set. */
export const EXTENSION_PREFIX = 'x-';

export interface ListField extends FieldBase {
  kind: 'list';
  item: Field;
  /** A single item may be written without the list. */
  acceptSingle?: boolean;
}

export interface MapField extends FieldBase {
  kind: 'map';
  value: Field;
  /** Checks a key; returns what is wrong with it. */
  key?: { pattern: string; check: (key: string) => string | undefined };
  /** A key with nothing under it (`web:`) is an entry with no settings of its own. */
  emptyValues?: boolean;
}

/** Any YAML value, taken as it is (ansible extra_vars). */
export interface AnyField extends FieldBase {
  kind: 'any';
}

/** One of several kinds, chosen by the YAML node: a scalar, a map or a list. */
export interface UnionField extends FieldBase {
  kind: 'union';
  options: readonly Field[];
  /** "a box name or a map with name and version" */
  what: string;
}

export interface Variant {
  description: string;
  fields: Record<string, Field>;
  required?: readonly string[];
  check?: ObjectCheck;
}

/** A map whose keys depend on the value of one key (`type:` of a provisioner). */
export interface TaggedField extends FieldBase {
  kind: 'tagged';
  tag: string;
  tagDescription: string;
  /** Keys every variant has (besides the tag). */
  common: Record<string, Field>;
  variants: Record<string, Variant>;
  /** "provisioners": the message says "applies only to shell provisioners". */
  noun: string;
  def?: string;
}

export type Field =
  | StringField
  | IntField
  | BoolField
  | EnumField
  | SizeField
  | ObjectField
  | ListField
  | MapField
  | AnyField
  | UnionField
  | TaggedField;

/** One descriptor for every key of T, no more and no fewer. */
type FieldsOf<T> = { [K in keyof T]-?: Field };

// ---------------------------------------------------------------------------------------
// Checks

/** RFC 1123 host name label: letters, digits and hyphens, 1 to 63, no hyphen at either end. */
export function hostnameProblem(value: string): string | undefined {
  if (HOST_LABEL_RE.test(value)) return undefined;
  if (value.length > 63) return `must be at most 63 characters (an RFC 1123 label), got ${value.length}`;
  return `must be a host name label (RFC 1123: letters, digits and '-', not at either end), got '${value}'`;
}

export const MACHINE_NAME_RE = /^[a-z0-9][a-z0-9-]*$/;

export function machineNameProblem(name: string): string | undefined {
  if (!MACHINE_NAME_RE.test(name)) {
    return `machine names are lower-case letters, digits and '-', starting with a letter or digit; got '${name}'`;
  }
  if (name.length > 63) return `machine names are at most 63 characters, got ${name.length}`;
  return undefined;
}

function guestPathProblem(value: string): string | undefined {
  return value.startsWith('/') ? undefined : `must be an absolute path in the guest, got '${value}'`;
}

function guestDestinationProblem(value: string): string | undefined {
  return value.startsWith('/') || value === '~' || value.startsWith('~/')
    ? undefined
    : `must be an absolute path in the guest (or start with ~/), got '${value}'`;
}

function uriProblem(value: string): string | undefined {
  let uri: LibvirtUri;
  try {
    uri = parseLibvirtUri(value);
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    return `is not a libvirt URI: ${text.replace(/^Invalid libvirt URI "[^"]*": /, '')}`;
  }
  if (uri.driver !== 'qemu') {
    return `must be a URI of libvirt's QEMU driver (qemu:///session, qemu:///system, qemu+ssh://user@host/system), got '${value}'`;
  }
  if (uri.transport === 'tls') {
    return `uses TLS, which vmenv does not speak: use qemu+ssh://user@${uri.host ?? 'host'}${uri.path} (or qemu+tcp:// on a trusted network)`;
  }
  return undefined;
}

/** A network address in IPv4 CIDR notation with room for a gateway and guests (/8 to /30). */
export function subnetProblem(value: string): string | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value.trim());
  const octets = m?.slice(1, 5).map(Number);
  const prefix = m === null ? NaN : Number(m[5]);
  if (m === null || octets === undefined || octets.some((o) => o > 255)) {
    return `must be an IPv4 network in CIDR notation such as 192.168.121.0/24, got '${value}'`;
  }
  if (prefix < 8 || prefix > 30) return `must have a prefix length from /8 to /30, got /${prefix}`;
  const address = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  const network = address - (address % size);
  if (network !== address) {
    const net = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join('.');
    return `has host bits set: did you mean ${net}/${prefix}?`;
  }
  return undefined;
}

function ipProblem(value: string): string | undefined {
  return isIP(value) === 0 ? `must be an IP address such as 127.0.0.1 or 0.0.0.0, got '${value}'` : undefined;
}

const VERSION_CLAUSE_RE =
  /^(=|!=|>=|<=|>|<|~>)?\s*v?[0-9A-Za-z]+(\.[0-9A-Za-z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z.-]+)?$/;

/** Vagrant-style version constraints: `1.2.0`, `>= 1.0, < 2`, `~> 1.2`, `!= 1.1`. */
export function versionConstraintProblem(value: string): string | undefined {
  const bad = value.split(',').find((clause) => !VERSION_CLAUSE_RE.test(clause.trim()));
  return bad === undefined
    ? undefined
    : `must be a version or a constraint such as '1.2.0', '>= 1.0, < 2' or '~> 1.2', got '${value}'`;
}

function nameProblem(what: string): (value: string) => string | undefined {
  return (value) =>
    /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(value)
      ? undefined
      : `must be a ${what} name (letters, digits, '_', '.', '+', '-'), got '${value}'`;
}

// ---------------------------------------------------------------------------------------
// Helpers for the tables

const str = (description: string, extra: Omit<StringField, 'kind' | 'description'> = {}): StringField => ({
  kind: 'string',
  description,
  ...extra,
});
const bool = (description: string, def: boolean): BoolField => ({ kind: 'bool', description, default: def });
const oneOf = (description: string, values: readonly string[], def?: string): EnumField => ({
  kind: 'enum',
  description,
  values,
  ...(def === undefined ? {} : { default: def }),
});
const stringList = (description: string, item: Omit<StringField, 'kind' | 'description'> = {}): ListField => ({
  kind: 'list',
  description,
  item: str('One item.', { numeric: true, ...item }),
});
const port = (description: string, def?: number): IntField => ({
  kind: 'int',
  description,
  min: 1,
  max: 65535,
  what: 'a port number from 1 to 65535',
  ...(def === undefined ? {} : { default: def }),
});
const seconds = (description: string, def: number): IntField => ({
  kind: 'int',
  description,
  min: 1,
  what: 'a whole number of seconds (at least 1)',
  default: def,
});
const diskSize = (description: string): SizeField => ({
  kind: 'size',
  description,
  to: 'bytes',
  bare: 'GiB',
  min: MiB,
  what: 'a size such as 20G or 512M (a bare number is GiB)',
  examples: ['20G', '512M', 40],
});

// ---------------------------------------------------------------------------------------
// The tables

export const boxFields = {
  name: str("The box: a name from 'vmenv box list' (e.g. tiny, debian-12), a .box file (relative to the project folder) or an http(s) URL, added to the box store at the first up.", {
    examples: ['tiny', 'debian-12'],
  }),
  version: str("A version or constraint: '1.2.0', '>= 1.0, < 2', '~> 1.2'. Default: the newest. For a .box file or URL: the exact version to store it as.", {
    numeric: true,
    check: versionConstraintProblem,
    examples: ['~> 1.0', '>= 1.0, < 2'],
  }),
};

export const boxField: UnionField = {
  kind: 'union',
  description:
    "The box the machine is built from: a name from 'vmenv box list', a .box file (relative to the project folder) or an http(s) URL, added to the box store at the first up; or a map with its name and a version (a constraint for a name, the exact version to store a file or URL as).",
  what: 'a box name, or a map with name and version',
  options: [
    { ...boxFields.name, normalize: (name: string) => ({ name, version: undefined }) },
    {
      kind: 'object',
      description: 'A box with a version constraint.',
      fields: boxFields,
      required: ['name'],
      normalize: (box: { name: string; version?: string }) => ({ name: box.name, version: box.version }),
    },
  ],
  examples: ['tiny', { name: 'debian-12', version: '~> 1.0' }, './boxes/web.box', 'https://example.org/boxes/web.box'],
};

export const networkFields = {
  mode: oneOf(
    "Management network: 'nat' (a libvirt network with DHCP; the IP from its leases) or 'user' (QEMU user-mode networking, SSH forwarded to 127.0.0.1). Default: nat on qemu:///system, user on qemu:///session.",
    ['nat', 'user'],
  ),
  name: str('libvirt network to attach to (nat). Default: a network vmenv creates, owns and removes.', {
    check: nameProblem('libvirt network'),
  }),
  subnet: str('IPv4 subnet of the management network in CIDR notation. Default: a free one vmenv picks.', {
    check: subnetProblem,
    examples: ['192.168.121.0/24'],
  }),
  lease_file: str(
    "A dnsmasq lease or status file, or a folder of them, read when libvirt's lease API has no answer (relative to the project folder; ~ expands). Default: /var/lib/libvirt/dnsmasq for a libvirt on this host.",
    { hostPath: true },
  ),
} satisfies FieldsOf<NetworkConfig>;

export const sshFields = {
  username: str('User vmenv logs in as.', { default: 'vagrant' }),
  port: port("The guest's SSH port.", 22),
  private_key_path: str(
    "Private key for boxes that expect their own key (relative to the project folder; ~ expands): offered after the machine's own key, instead of Vagrant's insecure keys. Default: none (the machine's ed25519 key, made at the first up, then Vagrant's insecure keys).",
    { hostPath: true },
  ),
  insert_key: bool("When up got in with one of Vagrant's insecure keys, put the machine's own key in its place (false: keep logging in with the key that worked).", true),
} satisfies FieldsOf<SshConfig>;

export const syncedFolderFields = {
  host: str('Folder on the host, relative to the project folder (~ expands).', { default: '.', hostPath: true }),
  guest: str('Absolute path in the guest. A folder whose guest path an earlier level already uses replaces it.', {
    default: '/vagrant',
    check: guestPathProblem,
  }),
  type: oneOf('How the folder is synced: rsync (copied on up), 9p or virtiofs (shared live).', ['rsync', '9p', 'virtiofs'], 'rsync'),
  exclude: stringList('rsync: patterns to leave out.'),
  args: stringList('rsync: extra arguments.'),
  exclude_vcs_ignored: bool("rsync: leave out what the folder's .gitignore files ignore (and .git/ itself).", false),
  owner: str('Owner of the files in the guest (user name or uid).', { numeric: true }),
  group: str('Group of the files in the guest (group name or gid).', { numeric: true }),
  create: bool('Create the host folder when it does not exist.', false),
  disabled: bool('Leave this folder out (e.g. `{ guest: /vagrant, disabled: true }` turns off the default one).', false),
  mount: bool('9p/virtiofs: mount the folder in the guest (false: only attach the device).', true),
  accessmode: oneOf('9p only: how file ownership is mapped.', ['mapped', 'passthrough', 'squash']),
  readonly: bool('Share the folder read-only.', false),
} satisfies FieldsOf<SyncedFolder>;

export const syncedFolderField: ObjectField = {
  kind: 'object',
  description: 'A folder synced into the guest.',
  fields: syncedFolderFields,
  def: 'syncedFolder',
  check: (folder, report) => {
    if (folder['accessmode'] !== undefined && folder['type'] !== '9p') {
      report('accessmode', `applies only to type 9p, not '${String(folder['type'] ?? 'rsync')}'`);
    }
  },
};

const shellFields = {
  inline: str('Shell commands to run (exactly one of inline and path).', { examples: ['apt-get install -y nginx'] }),
  path: str('A script on the host to upload and run, relative to the project folder (exactly one of inline and path).', {
    hostPath: true,
  }),
  args: stringList('Arguments for the script.'),
  env: {
    kind: 'map',
    description: 'Environment variables for the script.',
    value: str('Value of the variable.', { numeric: true, allowEmpty: true }),
    key: {
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      check: (k) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? undefined : `is not an environment variable name`),
    },
  },
  privileged: bool('Run as root (through sudo).', true),
} satisfies FieldsOf<Omit<ShellProvisioner, 'type' | 'name' | 'run'>>;

const fileFields = {
  source: str('File or folder on the host, relative to the project folder.', { hostPath: true }),
  destination: str('Where it goes in the guest: an absolute path or one starting with ~/.', { check: guestDestinationProblem }),
} satisfies FieldsOf<Omit<FileProvisioner, 'type' | 'name' | 'run'>>;

const ansibleFields = {
  playbook: str('The playbook on the host, relative to the project folder.', { hostPath: true }),
  extra_vars: {
    kind: 'map',
    description: 'Extra variables for the playbook (--extra-vars).',
    value: { kind: 'any', description: 'Any value.' },
  },
  limit: {
    kind: 'list',
    acceptSingle: true,
    description: 'Hosts or groups to limit the run to (--limit): a pattern or a list.',
    item: str('A host or group pattern.'),
    normalize: (v: string[]) => (v.length === 0 ? undefined : v.join(',')),
  },
  tags: { ...stringList('Only run tasks with these tags (--tags).'), acceptSingle: true },
  become: bool('Run the playbook with become (root).', false),
} satisfies FieldsOf<Omit<AnsibleProvisioner, 'type' | 'name' | 'run'>>;

export const provisionerField: TaggedField = {
  kind: 'tagged',
  description: 'A provisioner: run on the first up, or as `run:` says.',
  tag: 'type',
  tagDescription: 'Kind of provisioner: shell, file or ansible.',
  noun: 'provisioners',
  def: 'provisioner',
  common: {
    name: str('Name for --provision-with (unique per machine).', { check: nameProblem('provisioner') }),
    run: oneOf("When it runs: 'once' (first up, or when asked), 'always' (every up), 'never' (only with --provision-with).", ['once', 'always', 'never'], 'once'),
  },
  variants: {
    shell: {
      description: 'Run a shell script in the guest.',
      fields: shellFields,
      check: (p, report) => {
        const has = (k: string): boolean => p[k] !== undefined;
        if (has('inline') && has('path')) report('path', 'cannot be given with inline: a shell provisioner runs one script');
        else if (!has('inline') && !has('path')) report(undefined, 'a shell provisioner needs inline or path');
      },
    },
    file: { description: 'Upload a file or folder into the guest.', fields: fileFields, required: ['source', 'destination'] },
    ansible: { description: 'Run an Ansible playbook against the guest.', fields: ansibleFields, required: ['playbook'] },
  },
};

export const shutdownFields = {
  mode: oneOf("How 'halt' asks the guest to stop: ssh (poweroff), acpi, agent (guest agent) or destroy (at once).", ['ssh', 'acpi', 'agent', 'destroy'], 'ssh'),
  timeout: seconds('Seconds to wait for the guest to stop before forcing it off.', 60),
} satisfies FieldsOf<ShutdownConfig>;

export const bootFields = {
  machine: oneOf('QEMU machine type.', ['pc', 'q35'], 'pc'),
  firmware: oneOf('Firmware: bios (SeaBIOS) or uefi (OVMF).', ['bios', 'uefi'], 'bios'),
  timeout: seconds('Seconds to wait for the IP address and SSH after starting.', 300),
} satisfies FieldsOf<BootConfig>;

export const diskFields = {
  size: diskSize('Size of the disk.'),
  format: oneOf('Image format.', ['qcow2', 'raw'], 'qcow2'),
  bus: oneOf('Bus the disk is attached to.', ['virtio', 'sata', 'scsi'], 'virtio'),
  name: str('Name of the disk (unique per machine); default: its position.', {
    // Part of the volume's name (src/project/names.ts): a file name in a dir pool.
    check: (v) =>
      !/^[a-z0-9][a-z0-9_-]*$/.test(v)
        ? `must be lower-case letters, digits, '_' and '-', got '${v}'`
        : v.length > 63
          ? `must be at most 63 characters, got ${v.length}`
          : undefined,
  }),
} satisfies FieldsOf<DiskConfig>;

export const forwardedPortFields = {
  guest: port('Port in the guest.'),
  host: port('Port on the host.'),
  host_ip: str('Host address to listen on.', { default: '127.0.0.1', check: ipProblem }),
  protocol: oneOf('Protocol.', ['tcp', 'udp'], 'tcp'),
  auto_correct: bool('Pick another free host port when this one is taken.', false),
} satisfies FieldsOf<ForwardedPort>;

function userDataTextProblem(text: string): string | undefined {
  if (text.startsWith(CLOUD_CONFIG_HEADER)) {
    const parsed = parseUserData(text);
    if (!('problem' in parsed)) return undefined;
    return parsed.line === undefined ? `the #cloud-config text ${parsed.problem}` : `the #cloud-config text ${parsed.problem} (its line ${parsed.line})`;
  }
  const kind = otherUserDataKind(text);
  if (kind !== undefined) return `is ${kind}, not #cloud-config: ${ONLY_CLOUD_CONFIG}`;
  if (text.includes('\n')) return `must be a file name, a mapping or text starting with ${CLOUD_CONFIG_HEADER}, got text over several lines`;
  return undefined;
}

function userDataText(text: string): CloudInitSource {
  if (!text.startsWith(CLOUD_CONFIG_HEADER)) return { file: text };
  const parsed = parseUserData(text);
  return { inline: 'doc' in parsed ? parsed.doc : {} };
}

/** A cloud-init document: a file on the host, or inline (a mapping; for user data also #cloud-config text). */
function cloudInitDocument(description: string, text: StringField): UnionField {
  return {
    kind: 'union',
    description,
    what: text.check === undefined ? 'a file name or a mapping' : `a file name, a mapping or text starting with ${CLOUD_CONFIG_HEADER}`,
    options: [
      text,
      {
        kind: 'map',
        description: 'The document inline, as cloud-init reads it (keys are not checked by vmenv beyond those it merges).',
        value: { kind: 'any', description: 'Any value.' },
        normalize: (inline: Record<string, unknown>): CloudInitSource => ({ inline }),
      },
    ],
  };
}

export const cloudInitFields = {
  user_data: cloudInitDocument(
    "Your own #cloud-config: a file relative to the project folder, a mapping, or text starting with #cloud-config. Merged with vmenv's seed: vmenv's user and the machine's key stay in, your hostname wins, everything else (packages, runcmd, write_files, …) is passed on. Scripts and MIME multipart are refused.",
    str('A file relative to the project folder (~ expands), or text starting with #cloud-config.', {
      check: userDataTextProblem,
      normalize: userDataText,
    }),
  ),
  network_config: cloudInitDocument(
    "A network-config (version 1 or 2): a file relative to the project folder, or a mapping. Replaces vmenv's default (DHCP on the first NIC, the management NIC).",
    str('A file relative to the project folder (~ expands).', {
      check: (v) => (v.includes('\n') ? 'must be a file name or a mapping, got text over several lines (write the mapping itself, without |)' : undefined),
      normalize: (file: string): CloudInitSource => ({ file }),
    }),
  ),
} satisfies FieldsOf<CloudInitConfig>;

export const cloudInitField: ObjectField = {
  kind: 'object',
  description: "Your own cloud-init user data and network config, merged with vmenv's seed at the machine's first up.",
  fields: cloudInitFields,
  merge: 'deep',
  def: 'cloudInit',
  check: (value, report) => {
    const inline = (v: unknown): Record<string, unknown> | undefined =>
      v !== undefined && v !== null && typeof v === 'object' && 'inline' in v ? (v as { inline: Record<string, unknown> }).inline : undefined;
    const user = inline(value['user_data']);
    if (user !== undefined) for (const p of userDataProblems(user)) report('user_data', p);
    const net = inline(value['network_config']);
    if (net !== undefined) for (const p of networkConfigProblems(net)) report('network_config', p);
  },
};

/** The settings of a machine, at the top level (defaults for every machine) and under machines.<name>. */
export const machineFields = {
  box: boxField,
  cpus: { kind: 'int', description: 'Virtual CPUs.', min: 1, max: 512, default: 1 },
  memory: {
    kind: 'size',
    description: 'Memory: a number of MiB, or a size with a unit (512M, 2G, 1.5GiB).',
    to: 'MiB',
    bare: 'MiB',
    min: 64 * MiB,
    what: 'a number of MiB or a size such as 512M or 2G',
    default: 512,
    examples: [512, '2G'],
  },
  disk_size: diskSize("Size of the machine's disk (grown from the box's size). Default: the box's size."),
  hostname: str("The guest's host name (an RFC 1123 label). Default: the machine's name.", { check: hostnameProblem }),
  uri: str(
    'libvirt URI of the host the machine runs on. Default: $VMENV_LIBVIRT_URI, $LIBVIRT_DEFAULT_URI, qemu:///system when it answers, else qemu:///session.',
    { check: uriProblem, examples: ['qemu:///session', 'qemu+ssh://me@build1/system'] },
  ),
  driver: oneOf("Domain type: kvm (hardware virtualization), qemu (software emulation) or auto (kvm when the host can run it).", ['auto', 'kvm', 'qemu'], 'auto'),
  pool: str('libvirt storage pool for the disks.', { default: 'default', check: nameProblem('storage pool') }),
  network: {
    kind: 'object',
    description: 'The management network vmenv reaches the machine through.',
    fields: networkFields,
    merge: 'deep',
    def: 'network',
    check: (net, report) => {
      if (net['mode'] === 'user' && net['name'] !== undefined) report('name', "applies only to mode nat, not 'user'");
    },
  },
  ssh: { kind: 'object', description: 'How vmenv logs in.', fields: sshFields, merge: 'deep', def: 'ssh' },
  synced_folders: {
    kind: 'list',
    description:
      "Folders synced into the guest. Default: the project folder on /vagrant with rsync. Top-level folders come first, then the machine's.",
    item: syncedFolderField,
  },
  provision: {
    kind: 'list',
    description: "Provisioners, run in order: the top-level ones first, then the machine's.",
    item: provisionerField,
  },
  shutdown: { kind: 'object', description: "How 'halt' stops the machine.", fields: shutdownFields, merge: 'deep', def: 'shutdown' },
  autostart: bool('Start the machine when the libvirt host starts.', false),
  boot: { kind: 'object', description: 'Machine type, firmware and boot timeout.', fields: bootFields, merge: 'deep', def: 'boot' },
  disks: {
    kind: 'list',
    description: "Extra disks: the top-level ones first, then the machine's.",
    item: { kind: 'object', description: 'An extra disk.', fields: diskFields, required: ['size'], def: 'disk' },
  },
  forwarded_ports: {
    kind: 'list',
    description: "Ports forwarded from the host to the guest: the top-level ones first, then the machine's.",
    item: {
      kind: 'object',
      description: 'A forwarded port.',
      fields: forwardedPortFields,
      required: ['guest', 'host'],
      def: 'forwardedPort',
    },
  },
  suspend_mode: oneOf("How 'suspend' works: pause (the guest keeps its memory on the host) or managedsave (saved to disk).", ['pause', 'managedsave'], 'pause'),
  cloud_init: cloudInitField,
} satisfies FieldsOf<Omit<MachineConfig, 'name' | 'primary'>>;

/** A machine under machines:, overriding the top-level settings. */
export const machineEntryField: ObjectField = {
  kind: 'object',
  description: 'Settings of this machine; they override the top-level ones.',
  fields: {
    ...machineFields,
    primary: bool("The default machine of commands that act on one machine (e.g. 'vmenv ssh').", false),
  },
  def: 'machine',
};

export const machinesField: MapField = {
  kind: 'map',
  description:
    'Several machines: name → settings. The top-level settings are defaults for all of them. Without machines:, the file describes one machine named default.',
  value: machineEntryField,
  key: { pattern: '^[a-z0-9][a-z0-9-]{0,62}$', check: machineNameProblem },
  emptyValues: true,
};

/** The whole file. */
export const rootField: ObjectField = {
  kind: 'object',
  description: 'A vmenv project: the machines vmenv up creates.',
  fields: { ...machineFields, machines: machinesField },
  extensions: true,
};

/** Keys people put in the wrong place, with where they belong (for "did you mean"). */
export const MISPLACED_KEYS: Record<string, string> = {
  primary: 'machines.<name>.primary',
  firmware: 'boot.firmware',
  machine_type: 'boot.machine',
  boot_timeout: 'boot.timeout',
  username: 'ssh.username',
  private_key_path: 'ssh.private_key_path',
  insert_key: 'ssh.insert_key',
  subnet: 'network.subnet',
  management_network: 'network',
  ram: 'memory',
  vcpus: 'cpus',
  image: 'box',
  box_version: 'box: { name, version }',
  mounts: 'synced_folders',
  ports: 'forwarded_ports',
  provisioners: 'provision',
  storage_pool: 'pool',
  libvirt_uri: 'uri',
};
