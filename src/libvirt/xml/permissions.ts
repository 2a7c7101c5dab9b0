/** `<permissions>` for storage volumes and pools. */
import { XmlSpecError } from './errors.js';
import { checkIntRange, checkMode } from './validate.js';
import { el } from './writer.js';
import type { XmlElement } from './writer.js';

/** File ownership and mode. `mode` is a number: write it in octal, e.g. `0o644`. */
export interface PermissionsSpec {
  mode?: number;
  /** Owner uid. */
  owner?: number;
  /** Group gid. */
  group?: number;
}

export function permissionsXml(field: string, p: PermissionsSpec | undefined): XmlElement | undefined {
  if (p === undefined) return undefined;
  if (p.mode === undefined && p.owner === undefined && p.group === undefined) {
    throw new XmlSpecError(field, 'give at least one of mode, owner, group');
  }
  return el(
    'permissions',
    {},
    p.mode !== undefined && el('mode', {}, checkMode(`${field}.mode`, p.mode)),
    p.owner !== undefined && el('owner', {}, checkIntRange(`${field}.owner`, p.owner, 0, 0xfffffffe)),
    p.group !== undefined && el('group', {}, checkIntRange(`${field}.group`, p.group, 0, 0xfffffffe)),
  );
}
