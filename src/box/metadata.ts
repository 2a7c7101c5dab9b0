/**
 * metadata.json inside a .box file: vagrant-libvirt's two layouts, plus vmenv's own
 * documented fields under the `vmenv` key.
 *
 * v1 (one disk, the format most boxes use):
 *   { "provider": "libvirt", "format": "qcow2", "virtual_size": 2 }
 *   with the disk stored as `box.img`; `virtual_size` is in GiB (rounded up).
 *
 * v2 (several disks, in the order they are attached):
 *   { "provider": "libvirt", "disks": [{ "path": "box_1.img" }, { "path": "box_2.img", "name": "data" }] }
 *   `path` is relative to the box root (it may name a subfolder); `name` overrides the
 *   volume name used in the storage pool. Size and format come from the images: a disk
 *   that is not qcow2 is read as raw when its entry (or the top-level `format`) says
 *   `"format": "raw"`.
 *
 * vmenv's fields (all optional; other tools ignore them):
 *   "vmenv": {
 *     "name": "vmenv/tiny",        // default name for `box add <file>` (else --name is needed)
 *     "version": "1.0.0",          // default version for `box add <file>` (else "0")
 *     "default_user": "vagrant",   // the user with the seed's SSH key and passwordless sudo
 *     "nocloud": true,             // honours a cloud-init NoCloud seed (ISO labelled cidata) at first boot
 *     "recipe": "tiny",            // the recipe in boxes/ it was built from
 *     "recipe_hash": "sha256:…",   // hash of that recipe, to tell when a rebuild is due
 *     "built_at": "2024-01-01T00:00:00Z"
 *   }
 */
import { UserError } from '../errors.js';

export const BOX_PROVIDER = 'libvirt';
/** The disk file name of a v1 box. */
export const V1_DISK_PATH = 'box.img';
export const METADATA_FILE = 'metadata.json';
export const VAGRANTFILE = 'Vagrantfile';
/** The most metadata.json may weigh; anything bigger is not a box. */
export const MAX_METADATA_BYTES = 1024 * 1024;

export interface BoxMetadataDisk {
  /** Path of the image inside the box, relative to its root. */
  path: string;
  /** Overrides the volume name in the storage pool. */
  name?: string;
  /** The image's format: qcow2 (the default, told by its header) or raw. */
  format?: string;
}

export interface VmenvBoxMetadata {
  name?: string;
  version?: string;
  default_user?: string;
  nocloud?: boolean;
  recipe?: string;
  recipe_hash?: string;
  built_at?: string;
  [key: string]: unknown;
}

export interface BoxMetadata {
  /** Always 'libvirt' for the boxes vmenv reads and writes. */
  provider: string;
  /** v1: the disk's format ('qcow2' or 'raw'); v2: the default of the disks' own `format`. */
  format?: string;
  /** v1: the disk's virtual size in GiB. */
  virtual_size?: number;
  /** v2: the disks, in order. */
  disks?: BoxMetadataDisk[];
  vmenv?: VmenvBoxMetadata;
  /** Other tools' fields are kept as they are. */
  [key: string]: unknown;
}

export type BoxLayout = 'v1' | 'v2';

export const GiB = 1024 ** 3;

/** virtual_size for v1 metadata: whole GiB, rounded up, at least 1. */
export function virtualSizeGiB(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / GiB));
}

/** Which layout a parsed metadata.json uses. */
export function boxLayout(metadata: BoxMetadata): BoxLayout {
  return metadata.disks === undefined ? 'v1' : 'v2';
}

/** The disks a box's metadata names, in order (v1: just box.img). */
export function metadataDisks(metadata: BoxMetadata): BoxMetadataDisk[] {
  return metadata.disks ?? [{ path: V1_DISK_PATH }];
}

/** The format metadata.json declares for a disk: its own `format`, else the top-level one, else qcow2. */
export function declaredDiskFormat(metadata: BoxMetadata, disk: BoxMetadataDisk): string {
  return disk.format ?? metadata.format ?? 'qcow2';
}

function bad(message: string, hint?: string): UserError {
  return new UserError(`Invalid box: metadata.json ${message}`, {
    hint: hint ?? 'The box was not made for vmenv or vagrant-libvirt, or its metadata.json is damaged. Rebuild or re-download it.',
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates metadata.json. Throws a UserError that names the field at fault:
 * not JSON, not an object, a provider other than libvirt, a malformed disks list.
 */
export function parseBoxMetadata(text: string): BoxMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw bad(`is not valid JSON (${(err as Error).message}).`);
  }
  return validateBoxMetadata(raw);
}

export function validateBoxMetadata(raw: unknown): BoxMetadata {
  if (!isRecord(raw)) throw bad('is not a JSON object.');
  const provider = raw['provider'];
  if (provider === undefined) {
    throw bad("has no 'provider' field.", "A libvirt box's metadata.json says \"provider\": \"libvirt\".");
  }
  if (provider !== BOX_PROVIDER) {
    throw new UserError(`This box is for the '${String(provider)}' provider, not libvirt.`, {
      hint: 'vmenv runs libvirt boxes only. Pick the libvirt build of this box (in a catalog: the provider named "libvirt").',
    });
  }
  if (raw['format'] !== undefined && typeof raw['format'] !== 'string') throw bad("field 'format' is not a string.");
  if (raw['virtual_size'] !== undefined) {
    const vs = raw['virtual_size'];
    if (typeof vs !== 'number' || !Number.isFinite(vs) || vs < 0) throw bad("field 'virtual_size' is not a size in GiB.");
  }
  const disks = raw['disks'];
  if (disks !== undefined) {
    if (!Array.isArray(disks) || disks.length === 0) throw bad("field 'disks' is not a non-empty list.");
    const seen = new Set<string>();
    disks.forEach((d: unknown, i) => {
      if (!isRecord(d)) throw bad(`disks[${i}] is not an object.`);
      if (typeof d['path'] !== 'string' || d['path'] === '') throw bad(`disks[${i}].path is missing.`);
      if (d['name'] !== undefined && typeof d['name'] !== 'string') throw bad(`disks[${i}].name is not a string.`);
      if (d['format'] !== undefined && d['format'] !== 'qcow2' && d['format'] !== 'raw') {
        throw bad(`disks[${i}].format is '${String(d['format'])}'; vmenv reads qcow2 (or raw) disks.`);
      }
      const p = normalizeBoxPath(d['path']);
      if (p === undefined) throw bad(`disks[${i}].path '${d['path']}' leaves the box (absolute or with '..').`);
      if (seen.has(p)) throw bad(`disks[${i}].path '${d['path']}' is listed twice.`);
      seen.add(p);
    });
  }
  if (raw['format'] !== undefined && raw['format'] !== 'qcow2' && raw['format'] !== 'raw') {
    throw bad(`says format '${String(raw['format'])}'; vmenv reads qcow2 (or raw) disks.`);
  }
  const vmenv = raw['vmenv'];
  if (vmenv !== undefined) {
    if (!isRecord(vmenv)) throw bad("field 'vmenv' is not an object.");
    for (const key of ['name', 'version', 'default_user', 'recipe', 'recipe_hash', 'built_at'] as const) {
      if (vmenv[key] !== undefined && typeof vmenv[key] !== 'string') throw bad(`field 'vmenv.${key}' is not a string.`);
    }
    if (vmenv['nocloud'] !== undefined && typeof vmenv['nocloud'] !== 'boolean') throw bad("field 'vmenv.nocloud' is not true or false.");
  }
  return raw as BoxMetadata;
}

/**
 * A path inside a box, normalized ("./a//b" → "a/b"), or undefined when it is absolute,
 * contains "..", a NUL or a backslash, or is empty. Directories keep no trailing slash.
 */
export function normalizeBoxPath(name: string): string | undefined {
  if (name === '' || name.includes('\0') || name.includes('\\')) return undefined;
  if (name.startsWith('/')) return undefined;
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.length === 0 ? undefined : parts.join('/');
}
