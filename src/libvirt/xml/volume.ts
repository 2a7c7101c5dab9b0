/**
 * Storage volume XML: `volumeXml(spec)` turns a typed VolumeSpec into a libvirt
 * `<volume>` document for `virStorageVolCreateXML` — an empty image, or a copy-on-write
 * overlay on a backing file (a box image). Pure: no I/O.
 */
import { XmlSpecError } from './errors.js';
import { permissionsXml } from './permissions.js';
import type { PermissionsSpec } from './permissions.js';
import { checkAbsPath, checkBytes, checkString } from './validate.js';
import { el, renderXml } from './writer.js';
import type { XmlElement } from './writer.js';

export type { PermissionsSpec } from './permissions.js';

export type VolumeFormat = 'qcow2' | 'raw';

export interface VolumeSpec {
  /** File name inside the pool (no `/`, not `.` or `..`), e.g. `proj_default_1a2b.qcow2`. */
  name: string;
  /** Virtual size in bytes. An overlay must be at least as large as its backing image. */
  capacityBytes: number | bigint;
  /** Bytes to allocate up front. Default 0 (sparse / allocated on write). */
  allocationBytes?: number | bigint;
  /** Default `qcow2`. A backing store needs `qcow2`. */
  format?: VolumeFormat;
  /** Make this volume a copy-on-write overlay on `path` (absolute), whose format is `format`. */
  backingStore?: { path: string; format: VolumeFormat };
  permissions?: PermissionsSpec;
}

/** Build the volume's element tree (see volumeXml). */
export function volumeElement(spec: VolumeSpec): XmlElement {
  const name = checkString('name', spec.name);
  if (name.includes('/') || name === '.' || name === '..') {
    throw new XmlSpecError('name', `'${name}' is not a volume file name`);
  }
  const capacity = checkBytes('capacityBytes', spec.capacityBytes, true);
  const allocation = checkBytes('allocationBytes', spec.allocationBytes ?? 0, false);
  if (allocation > capacity) {
    throw new XmlSpecError('allocationBytes', `${allocation} is more than the capacity (${capacity})`);
  }
  const format = spec.format ?? 'qcow2';
  if (format !== 'qcow2' && format !== 'raw') throw new XmlSpecError('format', `'${String(format)}' is not qcow2 or raw`);
  let backing: XmlElement | undefined;
  if (spec.backingStore !== undefined) {
    const bs = spec.backingStore;
    if (format !== 'qcow2') {
      throw new XmlSpecError('backingStore', `a ${format} volume cannot have a backing store`, 'Use format qcow2 for an overlay.');
    }
    if (bs.format !== 'qcow2' && bs.format !== 'raw') {
      throw new XmlSpecError('backingStore.format', `'${String(bs.format)}' is not qcow2 or raw`);
    }
    backing = el(
      'backingStore',
      {},
      el('path', {}, checkAbsPath('backingStore.path', bs.path)),
      el('format', { type: bs.format }),
    );
  }
  return el(
    'volume',
    {},
    el('name', {}, name),
    el('capacity', { unit: 'bytes' }, capacity),
    el('allocation', { unit: 'bytes' }, allocation),
    el('target', {}, el('format', { type: format }), permissionsXml('permissions', spec.permissions)),
    backing,
  );
}

/** A libvirt `<volume>` document for the spec. Throws XmlSpecError naming the field on a bad value. */
export function volumeXml(spec: VolumeSpec): string {
  return renderXml(volumeElement(spec));
}
