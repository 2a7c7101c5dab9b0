/**
 * The box store's places, and the box names and versions it accepts.
 *
 * Where: `$VMENV_HOME`, else `$XDG_DATA_HOME/vmenv`, else `~/.local/share/vmenv`
 * (see vmenvHome), then:
 *
 *   boxes/
 *     <name>/<version>/libvirt/     one stored box: the archive's files as they were
 *                                   (metadata.json, box.img or the v2 disks, Vagrantfile)
 *       vmenv.json                  vmenv's record of it (StoredBoxRecord)
 *       uploads.json                where its disks were uploaded: [{ uri, pool, volume }]
 *     .locks/<name>@<version>.lock  held while the box is added, removed or its uploads change
 *     .locks/download-<hash>.lock   held while a URL is downloaded
 *     .downloads/<hash>.box[.part]  downloads (the .part file is resumed by the next attempt)
 *     .tmp/                         unpacking and removal happen here, then a rename
 *
 * A `/` in a box name is stored as `-VAGRANTSLASH-`, as Vagrant does (`vmenv/tiny` →
 * `vmenv-VAGRANTSLASH-tiny`). The machine index (project/machine-index.ts) says
 * which machines use which box.
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ExitCode, UserError } from '../errors.js';
import { vmenvHome, type HomeOptions } from '../project/home.js';
import { isValidVersion } from './version.js';

export type StoreOptions = HomeOptions;

export function boxesDir(options: StoreOptions = {}): string {
  return join(options.home ?? vmenvHome(), 'boxes');
}

export const PROVIDER_DIR = 'libvirt';
export const RECORD_FILE = 'vmenv.json';
export const UPLOADS_FILE = 'uploads.json';
/** Files vmenv keeps beside a box's own; an archive may not bring files of these names. */
export const RESERVED_FILES = [RECORD_FILE, UPLOADS_FILE] as const;
const SLASH = '-VAGRANTSLASH-';

export function escapeBoxName(name: string): string {
  return name.replaceAll('/', SLASH);
}

export function unescapeBoxName(dir: string): string {
  return dir.replaceAll(SLASH, '/');
}

const NAME_PART = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;

/** Throws a UserError (exit 2) unless the name is usable: `word` or `org/word`. */
export function validateBoxName(name: string): void {
  const parts = name.split('/');
  const ok = parts.length <= 2 && parts.every((p) => NAME_PART.test(p) && !p.includes(SLASH) && p.length <= 100);
  if (!ok) {
    throw new UserError(`'${name}' is not a valid box name.`, {
      hint: "Use letters, digits, '.', '_', '+' and '-', optionally as org/name (e.g. vmenv/tiny).",
      exitCode: ExitCode.usage,
    });
  }
}

export function validateBoxVersion(version: string): void {
  if (!isValidVersion(version) || version.length > 100) {
    throw new UserError(`'${version}' is not a valid box version.`, {
      hint: 'Use dot-separated numbers such as 1.2.0 (a -prerelease suffix is allowed).',
      exitCode: ExitCode.usage,
    });
  }
}

export interface BoxRef {
  name: string;
  version: string;
}

/** The folder of a stored box (it may not exist). */
export function boxDir(ref: BoxRef, options: StoreOptions = {}): string {
  return join(boxesDir(options), escapeBoxName(ref.name), ref.version, PROVIDER_DIR);
}

/** The lock file of `key` in the store's .locks folder. */
export function lockPath(key: string, options: StoreOptions): string {
  return join(boxesDir(options), '.locks', `${key.replace(/[^A-Za-z0-9._@+-]/g, '_')}.lock`);
}

export function boxLockPath(ref: BoxRef, options: StoreOptions): string {
  return lockPath(`${escapeBoxName(ref.name)}@${ref.version}`, options);
}

export function tmpDir(options: StoreOptions): string {
  return join(boxesDir(options), '.tmp');
}

/** This host, shortly: temporary names carry it so that a shared VMENV_HOME is swept only by the host that made them. */
export const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

export function tmpName(options: StoreOptions, kind: string): string {
  return join(tmpDir(options), `${kind}-${HOST_TAG}-${process.pid}-${randomBytes(6).toString('hex')}`);
}
