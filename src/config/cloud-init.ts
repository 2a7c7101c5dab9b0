/**
 * The user's own cloud-init documents (`cloud_init.user_data`, `cloud_init.network_config`):
 * reading their text as cloud-init does, and checking the keys vmenv merges with its own
 * seed. Pure: bytes in, a document or problems out. Reading files: lifecycle/cloud-init.ts.
 *
 * Text is read as YAML 1.1, as cloud-init's PyYAML reads it (`0644` is octal, `yes` a
 * boolean), and the seed is written back as YAML 1.1 (seed.ts), so the guest sees the
 * values the user wrote.
 */
import { LineCounter, parseDocument, type Tags } from 'yaml';

export type CloudInitDoc = Record<string, unknown>;

/** A document and where it failed: `line` is 1-based within the document's text. */
export type ParsedDoc = { doc: CloudInitDoc } | { problem: string; line?: number };

/**
 * PyYAML's implicit types where the yaml package's YAML 1.1 differs: no y/n booleans,
 * no decimal with a leading 0, floats need a dot and a signed exponent, sexagesimal
 * from 1. Keyed by type and the yaml package's format.
 */
const PYYAML_TESTS: Record<string, RegExp> = {
  'bool:true': /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/,
  'bool:false': /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/,
  'int:': /^[-+]?(?:0|[1-9][0-9_]*)$/,
  'int:TIME': /^[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+$/,
  'float:': /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)$/,
  'float:EXP': /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)[eE][-+][0-9]+$/,
};

/** YAML 1.1 types whose values are not JSON (the checked config is cached as JSON): their text is kept. */
const NOT_JSON = new Set(['timestamp', 'binary', 'omap', 'pairs', 'set'].map((t) => `tag:yaml.org,2002:${t}`));

/**
 * YAML options for cloud-init's documents, reading and writing: YAML 1.1 as PyYAML has it,
 * but timestamps (and binary, omap, pairs, set) kept as the text written, so a date stays
 * the date written and the document stays plain JSON.
 */
export const CLOUD_YAML = {
  version: '1.1',
  // An explicit !!binary, !!timestamp, !!set… is not read as its type: parseCloudYaml refuses it.
  resolveKnownTags: false,
  customTags: (tags: Tags): Tags =>
    tags.filter((t) => typeof t === 'string' || !NOT_JSON.has(t.tag)).map((t) => {
      if (typeof t === 'string' || !('test' in t) || t.test === undefined || t.test.test('.inf')) return t;
      const kind = t.tag.replace('tag:yaml.org,2002:', '');
      const key = kind === 'bool' ? `bool:${t.test.test('true')}` : `${kind}:${t.format ?? ''}`;
      const test = PYYAML_TESTS[key];
      return test === undefined ? t : { ...t, test };
    }),
} as const;

export const CLOUD_CONFIG_HEADER = '#cloud-config';

/** The first line of user-data, for the kinds vmenv cannot merge into. */
const OTHER_KINDS: Array<{ test: RegExp; what: string }> = [
  { test: /^#!/, what: 'a script (#!)' },
  { test: /^(content-type|mime-version):/i, what: 'MIME multipart' },
  { test: /^## template:/i, what: 'a Jinja template (## template:)' },
  { test: /^#include/, what: 'an include list (#include)' },
  { test: /^#cloud-config-archive/, what: 'a cloud-config archive' },
  { test: /^#cloud-boothook/, what: 'a boothook (#cloud-boothook)' },
  { test: /^#part-handler/, what: 'a part handler (#part-handler)' },
  { test: /^#cloud-config-jsonp/, what: 'a JSON patch (#cloud-config-jsonp)' },
];

/** Why user-data of another kind than #cloud-config is refused (see README, cloud_init). */
export const ONLY_CLOUD_CONFIG =
  "vmenv merges its own user and key into the user data, which it can do only with #cloud-config (and the boxes' own NoCloud handler reads nothing else): put commands under runcmd:, files under write_files:, or use a shell provisioner";

/** What kind of user-data the text is, when it is not #cloud-config YAML; undefined when it may be. */
export function otherUserDataKind(text: string): string | undefined {
  const first = text.replace(/^\uFEFF/, '').trimStart().split(/\r?\n/, 1)[0] ?? '';
  if (first.startsWith(CLOUD_CONFIG_HEADER) && !/^#cloud-config-/.test(first)) return undefined;
  return OTHER_KINDS.find((k) => k.test.test(first))?.what;
}

/** A YAML 1.1 mapping from text (a `#cloud-config` file, a network-config file). */
export function parseCloudYaml(text: string): ParsedDoc {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), { ...CLOUD_YAML, lineCounter, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err !== undefined) {
    const line = lineCounter.linePos(err.pos[0]).line;
    const message = (err.message.split('\n')[0] ?? err.message).replace(/ at line \d+, column \d+:?$/, '');
    return line === undefined ? { problem: `is not YAML: ${message}` } : { problem: `is not YAML: ${message}`, line };
  }
  // The merged seed is written as plain YAML: a tagged value (write_files' `content: !!binary |`) would lose its type.
  const tagged = doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
  if (tagged !== undefined) {
    const tag = /tag:yaml\.org,2002:(\w+)/.exec(tagged.message)?.[1];
    const problem = `has an explicit YAML tag${tag ? ` (!!${tag})` : ''}, which vmenv cannot carry into the merged seed: for write_files use 'encoding: b64' with the base64 text instead of !!binary, and write other values untagged`;
    const line = lineCounter.linePos(tagged.pos[0]).line;
    return line === undefined ? { problem } : { problem, line };
  }
  const value: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (value === null || value === undefined) return { doc: {} };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { problem: `must be a YAML mapping (keys such as users: and packages:), got ${Array.isArray(value) ? 'a list' : 'a single value'}` };
  }
  return { doc: value as CloudInitDoc };
}

/** user-data text → its document: #cloud-config (or, from a file, any YAML mapping); other kinds are refused. */
export function parseUserData(text: string): ParsedDoc {
  const kind = otherUserDataKind(text);
  if (kind !== undefined) return { problem: `is ${kind}, not #cloud-config: ${ONLY_CLOUD_CONFIG}` };
  return parseCloudYaml(text);
}

// ---------------------------------------------------------------------------------------
// Checks of the keys vmenv merges

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 37)}...` : v}'`;
  return String(v);
}

function keysProblem(v: unknown, at: string): string | undefined {
  if (typeof v === 'string') return undefined;
  if (Array.isArray(v) && v.every((k) => typeof k === 'string')) return undefined;
  return `${at} must be a list of public keys (or one key), got ${describe(v)}`;
}

/** One label of a host name (RFC 1123): letters, digits, inner hyphens, at most 63 characters. */
export const HOST_LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A host name as cloud-init sets it: RFC 1123 labels joined with dots. */
export function dnsNameProblem(v: unknown, at: string): string | undefined {
  if (typeof v !== 'string') return `${at} must be a host name, got ${describe(v)}`;
  if (v.length <= 253 && v.split('.').every((l) => HOST_LABEL_RE.test(l))) return undefined;
  return `${at} must be a host name (RFC 1123 labels of letters, digits and '-', joined with dots), got ${describe(v)}`;
}

/** The items of `users:` as written: a list, or a comma-separated string. */
export function userItems(users: unknown): unknown[] | undefined {
  if (users === undefined || users === null) return undefined;
  if (typeof users === 'string') return users.split(',').map((u) => u.trim()).filter((u) => u !== '');
  return Array.isArray(users) ? users : undefined;
}

/** What is wrong, for vmenv's merge, with the keys of a #cloud-config document. Other keys pass through unchecked. */
export function userDataProblems(doc: CloudInitDoc): string[] {
  const out: string[] = [];
  const add = (p: string | undefined): void => {
    if (p !== undefined) out.push(p);
  };
  if (doc['ssh_authorized_keys'] !== undefined) add(keysProblem(doc['ssh_authorized_keys'], 'ssh_authorized_keys'));
  if (doc['hostname'] !== undefined) add(dnsNameProblem(doc['hostname'], 'hostname'));
  if (doc['fqdn'] !== undefined) add(dnsNameProblem(doc['fqdn'], 'fqdn'));
  const users = doc['users'];
  if (users !== undefined && users !== null) {
    const items = userItems(users);
    if (items === undefined) add(`users must be a list (or a comma-separated string), got ${describe(users)}`);
    items?.forEach((item, i) => {
      const at = `users[${i}]`;
      if (typeof item === 'string') return;
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        add(`${at} must be a user name or a mapping with name:, got ${describe(item)}`);
        return;
      }
      const u = item as Record<string, unknown>;
      if (typeof u['name'] !== 'string' || u['name'].trim() === '') add(`${at}.name is required (a user name)`);
      for (const k of ['ssh_authorized_keys', 'ssh-authorized-keys']) if (u[k] !== undefined) add(keysProblem(u[k], `${at}.${k}`));
    });
  }
  return out;
}

/** A network-config document without its optional top-level `network:` wrapper. */
export function unwrapNetwork(doc: CloudInitDoc): CloudInitDoc {
  const inner = doc['network'];
  if (Object.keys(doc).length === 1 && inner !== null && typeof inner === 'object' && !Array.isArray(inner)) return inner as CloudInitDoc;
  return doc;
}

/** What is wrong with a network-config document (version 1 or 2, or `config: disabled`). */
export function networkConfigProblems(raw: CloudInitDoc): string[] {
  const doc = unwrapNetwork(raw);
  if (doc['config'] === 'disabled') return [];
  const version = doc['version'];
  if (version === 1) {
    const config = doc['config'];
    if (!Array.isArray(config)) return [`config must be a list of entries (version 1), got ${describe(config)}`];
    const out: string[] = [];
    config.forEach((e, i) => {
      if (e === null || typeof e !== 'object' || Array.isArray(e) || typeof (e as Record<string, unknown>)['type'] !== 'string') {
        out.push(`config[${i}] must be a mapping with type: (physical, nameserver, route, …), got ${describe(e)}`);
      }
    });
    return out;
  }
  if (version === 2) {
    const out: string[] = [];
    for (const k of ['ethernets', 'bonds', 'bridges', 'vlans', 'wifis']) {
      const v = doc[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'object' || Array.isArray(v)) out.push(`${k} must be a mapping of interface names, got ${describe(v)}`);
      else for (const [name, e] of Object.entries(v)) if (e !== null && (typeof e !== 'object' || Array.isArray(e))) out.push(`${k}.${name} must be a mapping, got ${describe(e)}`);
    }
    return out;
  }
  return [`needs version: 1 or version: 2 (or config: disabled), got ${version === undefined ? 'no version' : `version ${describe(version)}`}`];
}

/**
 * Whether a network-config gives the management NIC DHCPv4: an entry that matches its MAC,
 * or one matched by name only (vmenv cannot know the guest's NIC names) with DHCPv4.
 * `config: disabled` counts as yes: the image's own configuration takes the NIC.
 */
export function managementNicHasDhcp(raw: CloudInitDoc, mac: string): boolean {
  const doc = unwrapNetwork(raw);
  if (doc['config'] === 'disabled') return true;
  const sameMac = (m: unknown): boolean => typeof m === 'string' && m.toLowerCase() === mac.toLowerCase();
  const isTrue = (v: unknown): boolean => v === true || v === 'true' || v === 'yes';
  if (doc['version'] === 1 && Array.isArray(doc['config'])) {
    return doc['config'].some((e: unknown) => {
      const entry = (e ?? {}) as Record<string, unknown>;
      if (entry['type'] !== 'physical') return false;
      if (entry['mac_address'] !== undefined && !sameMac(entry['mac_address'])) return false;
      const subnets = Array.isArray(entry['subnets']) ? (entry['subnets'] as unknown[]) : [];
      return subnets.some((s) => {
        const type = (s as Record<string, unknown> | null)?.['type'];
        return type === 'dhcp' || type === 'dhcp4';
      });
    });
  }
  if (doc['version'] === 2) {
    const ethernets = doc['ethernets'];
    if (ethernets === null || typeof ethernets !== 'object') return false;
    return Object.values(ethernets as Record<string, unknown>).some((e) => {
      const entry = (e ?? {}) as Record<string, unknown>;
      const match = (entry['match'] ?? {}) as Record<string, unknown>;
      if (match['macaddress'] !== undefined && !sameMac(match['macaddress'])) return false;
      return isTrue(entry['dhcp4']);
    });
  }
  return false;
}
