import { execFile } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { UserError } from '../ui/errors.js';
import { findOnPath } from '../host/tools.js';

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
  /** A network-config document (v1 or v2); left out, the guest takes DHCP on its first NIC. */
  networkConfig?: Record<string, unknown>;
}

export interface SeedFiles {
  'meta-data': string;
  'user-data': string;
  'network-config'?: string;
}

/** The NoCloud documents for a spec: meta-data, `#cloud-config` user-data, network-config. */
export function renderSeed(spec: SeedSpec): SeedFiles {
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(spec.hostname)) {
    throw new UserError(`'${spec.hostname}' is not a valid hostname`, {
      hint: 'Use letters, digits and inner hyphens, at most 63 characters.',
    });
  }
  const userData: Record<string, unknown> = { hostname: spec.hostname };
  if (spec.sshAuthorizedKeys?.length) userData.ssh_authorized_keys = spec.sshAuthorizedKeys;
  if (spec.users?.length) {
    userData.users = [
      'default',
      ...spec.users.map((u) => ({
        name: u.name,
        ssh_authorized_keys: u.sshAuthorizedKeys,
        sudo: u.sudo === false ? false : 'ALL=(ALL) NOPASSWD:ALL',
        ...(u.shell === undefined ? {} : { shell: u.shell }),
        lock_passwd: true,
      })),
    ];
  }
  const files: SeedFiles = {
    'meta-data': stringify({ 'instance-id': spec.instanceId, 'local-hostname': spec.hostname }),
    'user-data': `#cloud-config\n${stringify(userData)}`,
  };
  if (spec.networkConfig) files['network-config'] = stringify(spec.networkConfig);
  return files;
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
