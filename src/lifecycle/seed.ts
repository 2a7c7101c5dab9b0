import { execFile } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { CLOUD_YAML, HOST_LABEL_RE, type CloudInitDoc, unwrapNetwork, userItems } from '../config/cloud-init.js';
import { UserError } from '../errors.js';
import { findOnPath } from '../hosts/tools.js';

const run = promisify(execFile);

/** A user that cloud-init (or a box's own seed handler) creates. */
export interface SeedUser {
  name: string;
  sshAuthorizedKeys: string[];
  /** Passwordless sudo for everything; false for none. */
  sudo?: boolean;
  shell?: string;
}

export interface SeedSpec {
  /** Changes whenever the machine is recreated, so first-boot work runs again. */
  instanceId: string;
  hostname: string;
  /** Keys for the box's default user (top-level `ssh_authorized_keys`). */
  sshAuthorizedKeys?: string[];
  users?: SeedUser[];
  /** A network-config document (v1 or v2, bare or under `network:`); left out, the guest takes DHCP on its first NIC. */
  networkConfig?: Record<string, unknown>;
  /**
   * The user's own `#cloud-config` (cloud_init.user_data), merged with vmenv's: see
   * mergeUserData. Its other keys (packages, runcmd, write_files, …) pass through.
   */
  userData?: CloudInitDoc;
  /** The user vmenv logs in as (ssh.username): it keeps the keys when userData lists users without `default`. */
  loginUser?: string;
}

export interface SeedFiles {
  'meta-data': string;
  'user-data': string;
  'network-config'?: string;
}

/** The NoCloud documents for a spec: meta-data, `#cloud-config` user-data, network-config. */
export function renderSeed(spec: SeedSpec): SeedFiles {
  if (!HOST_LABEL_RE.test(spec.hostname)) {
    throw new UserError(`'${spec.hostname}' is not a valid hostname`, {
      hint: 'Use letters, digits and inner hyphens, at most 63 characters.',
    });
  }
  const files: SeedFiles = {
    'meta-data': stringify({ 'instance-id': spec.instanceId, 'local-hostname': spec.hostname }),
    // YAML 1.1, as cloud-init (PyYAML) reads it: strings such as 'yes' or '0644' stay strings.
    'user-data': `#cloud-config\n${stringify(mergeUserData(spec), CLOUD_YAML)}`,
  };
  if (spec.networkConfig) files['network-config'] = stringify(unwrapNetwork(spec.networkConfig), CLOUD_YAML);
  return files;
}

const SUDO_ALL = 'ALL=(ALL) NOPASSWD:ALL';

function keyList(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((k): k is string => typeof k === 'string') : [];
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}

function isDefault(item: unknown): boolean {
  if (typeof item === 'string') return item === 'default';
  return typeof item === 'object' && item !== null && (item as Record<string, unknown>)['name'] === 'default';
}

function userName(item: unknown): string | undefined {
  if (typeof item === 'string') return item;
  const name = typeof item === 'object' && item !== null ? (item as Record<string, unknown>)['name'] : undefined;
  return typeof name === 'string' ? name : undefined;
}

/**
 * vmenv's `#cloud-config` merged with the user's (spec.userData):
 * - `hostname`: the user's `hostname` or `fqdn` wins (or `preserve_hostname: true`
 *   keeps the image's); else the machine's. meta-data's local-hostname is always the machine's.
 * - `ssh_authorized_keys`: vmenv's keys first, then the user's (the box's default user gets them).
 * - `users`: the user's list, with `default` put first when it lists neither `default` nor
 *   the login user, so the key reaches the user vmenv logs in as; a login user the list
 *   does name gets vmenv's keys added to its own. vmenv's own extra users (spec.users) follow.
 * - every other key of the user's passes through as written.
 */
export function mergeUserData(spec: SeedSpec): Record<string, unknown> {
  const mine = spec.userData ?? {};
  const vmenvKeys = spec.sshAuthorizedKeys ?? [];
  const out: Record<string, unknown> = {};
  const ownName = mine['hostname'] !== undefined || mine['fqdn'] !== undefined || mine['preserve_hostname'] === true;
  if (!ownName) out['hostname'] = spec.hostname;
  Object.assign(out, mine);

  const keys = union(vmenvKeys, keyList(mine['ssh_authorized_keys']));
  if (keys.length > 0) out['ssh_authorized_keys'] = keys;
  else delete out['ssh_authorized_keys'];

  const given = userItems(mine['users']);
  const extra = (spec.users ?? []).map((u) => ({
    name: u.name,
    ssh_authorized_keys: u.sshAuthorizedKeys,
    sudo: u.sudo === false ? false : SUDO_ALL,
    ...(u.shell === undefined ? {} : { shell: u.shell }),
    lock_passwd: true,
  }));
  if (given === undefined && extra.length === 0) {
    delete out['users'];
    return out;
  }
  const login = spec.loginUser !== undefined && spec.loginUser !== 'default' ? spec.loginUser : undefined;
  let list = [...(given ?? ['default'])];
  const loginAt = login === undefined ? -1 : list.findIndex((u) => userName(u) === login);
  if (loginAt >= 0 && vmenvKeys.length > 0) {
    const entry = list[loginAt];
    const user: Record<string, unknown> = typeof entry === 'string' ? { name: entry } : { ...(entry as Record<string, unknown>) };
    const field = user['ssh_authorized_keys'] === undefined && user['ssh-authorized-keys'] !== undefined ? 'ssh-authorized-keys' : 'ssh_authorized_keys';
    user[field] = union(keyList(user[field]), vmenvKeys);
    list[loginAt] = user;
  } else if (loginAt < 0 && !list.some(isDefault)) {
    list = ['default', ...list];
  }
  out['users'] = [...list, ...extra];
  return out;
}

/** The ISO writers vmenv knows, in order of preference, and how to call them. */
const isoWriters: { tool: string; args: (out: string, dir: string) => string[] }[] = [
  { tool: 'genisoimage', args: (out, dir) => ['-quiet', '-output', out, '-volid', 'cidata', '-joliet', '-rock', dir] },
  { tool: 'mkisofs', args: (out, dir) => ['-quiet', '-output', out, '-volid', 'cidata', '-joliet', '-rock', dir] },
  { tool: 'xorriso', args: (out, dir) => ['-as', 'mkisofs', '-quiet', '-output', out, '-volid', 'cidata', '-joliet', '-rock', dir] },
];

/**
 * Writes a NoCloud seed: an ISO 9660 image labelled `cidata` holding the documents.
 * The file appears atomically; nothing is left behind on failure.
 */
export async function writeSeedIso(outPath: string, files: SeedFiles): Promise<void> {
  const writer = (await Promise.all(isoWriters.map(async (w) => ((await findOnPath(w.tool)) ? w : undefined)))).find(
    (w) => w !== undefined,
  );
  if (!writer) {
    throw new UserError('no ISO writer found to make the cloud-init seed (genisoimage, mkisofs or xorriso)', {
      hint: 'Install one: sudo apt-get install genisoimage',
    });
  }
  const dir = await mkdtemp(join(tmpdir(), 'vmenv-seed-'));
  const partial = join(dirname(outPath), `.${process.pid}.seed.iso.part`);
  try {
    for (const [name, body] of Object.entries(files)) {
      if (body !== undefined) await writeFile(join(dir, name), body, { mode: 0o600 });
    }
    await run(writer.tool, writer.args(partial, dir));
    await rename(partial, outPath);
  } catch (err) {
    await rm(partial, { force: true });
    if (err instanceof UserError) throw err;
    throw new UserError(`could not write the cloud-init seed ${outPath} with ${writer.tool}: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
