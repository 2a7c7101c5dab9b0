/**
 * Storage pool XML: `poolXml(spec)` turns a typed PoolSpec into a libvirt directory
 * `<pool type='dir'>` document. Pure: no I/O.
 */
import { permissionsXml } from './permissions.js';
import type { PermissionsSpec } from './permissions.js';
import { checkAbsPath, checkObjectName, checkUuid } from './validate.js';
import { el, renderXml } from './writer.js';
import type { XmlElement } from './writer.js';

export interface PoolSpec {
  name: string;
  /** Left out, libvirt generates one. */
  uuid?: string;
  /** The directory holding the volumes (absolute). libvirt creates it when the pool is built. */
  path: string;
  /** Ownership and mode of the directory; left out, libvirt's defaults (0711 for a new directory). */
  permissions?: PermissionsSpec;
}

/** Build the pool's element tree (see poolXml). */
export function poolElement(spec: PoolSpec): XmlElement {
  return el(
    'pool',
    { type: 'dir' },
    el('name', {}, checkObjectName('name', spec.name)),
    spec.uuid !== undefined && el('uuid', {}, checkUuid('uuid', spec.uuid)),
    el(
      'target',
      {},
      el('path', {}, checkAbsPath('path', spec.path)),
      permissionsXml('permissions', spec.permissions),
    ),
  );
}

/** A libvirt `<pool type='dir'>` document for the spec. Throws XmlSpecError naming the field on a bad value. */
export function poolXml(spec: PoolSpec): string {
  return renderXml(poolElement(spec));
}
