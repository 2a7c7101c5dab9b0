/**
 * From checked levels to MachineConfig: merge a machine's own settings over the top-level
 * ones, fill the defaults of fields.ts, resolve host paths, and check what can only be
 * checked once the levels are merged.
 *
 * Merge rules (per machine, top level = defaults for every machine):
 * - scalars (`cpus`, `memory`, `uri`, …) and `box`: the machine's value replaces the top-level one;
 * - `ssh`, `network`, `boot`, `shutdown`: merged key by key (a machine can change
 *   `ssh.username` and keep the top-level `ssh.port`);
 * - lists (`provision`, `synced_folders`, `disks`, `forwarded_ports`): concatenated, the
 *   top-level items first, then the machine's;
 * - `synced_folders` are keyed by guest path: the project folder on /vagrant comes first
 *   by default, and a folder whose guest path an earlier level already uses replaces that
 *   entry (in its place); `disabled: true` removes it. The same guest path twice in one
 *   list is an error.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { type Field, hostnameProblem, machineFields } from './fields.js';
import type { MachineConfig, SyncedFolder } from './types.js';
import { type Checker, joinPath } from './validate.js';

type Obj = Record<string, unknown>;

/** Where each merged key came from: `memory` → `machines.web.memory` or `memory`. */
export type Origins = Map<string, string>;

/** The top-level settings with a machine's own merged over them (see the rules above). */
export function mergeLevels(top: Obj, own: Obj, ownPrefix: string): { merged: Obj; origins: Origins } {
  const merged: Obj = {};
  const origins: Origins = new Map();
  for (const [key, field] of Object.entries(machineFields) as Array<[string, Field]>) {
    const t = top[key];
    const o = own[key];
    if (field.kind === 'list') {
      merged[key] = [...((t as unknown[] | undefined) ?? []), ...((o as unknown[] | undefined) ?? [])];
      origins.set(key, o !== undefined ? ownPrefix + key : key);
    } else if (field.kind === 'object' && field.merge === 'deep') {
      merged[key] = { ...(t as Obj | undefined), ...(o as Obj | undefined) };
      origins.set(key, o !== undefined ? ownPrefix + key : key);
      for (const sub of Object.keys(field.fields)) {
        const mine = o !== undefined && (o as Obj)[sub] !== undefined;
        origins.set(`${key}.${sub}`, mine ? `${ownPrefix}${key}.${sub}` : `${key}.${sub}`);
      }
    } else {
      if (o !== undefined || t !== undefined) merged[key] = o !== undefined ? o : t;
      origins.set(key, o !== undefined ? ownPrefix + key : key);
    }
  }
  return { merged, origins };
}

export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}

/** A host path as written, made absolute against the project folder. */
export function resolveHostPath(dir: string, path: string): string {
  const expanded = expandHome(path);
  return isAbsolute(expanded) ? resolve(expanded) : resolve(dir, expanded);
}

/**
 * `value` with every key of `field` present: the written value, else the default (lists
 * `[]`, maps `{}`, objects filled in turn, else the field's default or undefined). Host
 * paths are made absolute. List items keep their origin.
 */
export function fillDefaults(field: Field, value: unknown, dir: string, checker: Checker): unknown {
  const keep = <T extends object>(from: unknown, to: T): T => {
    const origin = typeof from === 'object' && from !== null ? checker.origins.get(from) : undefined;
    if (origin !== undefined) checker.origins.set(to, origin);
    return to;
  };
  const fillFields = (fields: Record<string, Field>, v: Obj, out: Obj): Obj => {
    for (const [key, sub] of Object.entries(fields)) {
      out[key] = v[key] !== undefined ? fillDefaults(sub, v[key], dir, checker) : defaultOf(sub, dir, checker);
    }
    return out;
  };
  // A normalised value (box, ansible limit) is final.
  if (field.normalize !== undefined) return value;
  switch (field.kind) {
    case 'string':
      return field.hostPath === true && typeof value === 'string' ? resolveHostPath(dir, value) : value;
    case 'object':
      return keep(value, fillFields(field.fields, (value as Obj | undefined) ?? {}, {}));
    case 'tagged': {
      const v = value as Obj;
      const variant = field.variants[v[field.tag] as string];
      const out: Obj = { [field.tag]: v[field.tag] };
      fillFields(field.common, v, out);
      if (variant !== undefined) fillFields(variant.fields, v, out);
      return keep(value, out);
    }
    case 'list':
      return (value as unknown[]).map((item) => fillDefaults(field.item, item, dir, checker));
    case 'map': {
      const out: Obj = {};
      for (const [k, v] of Object.entries(value as Obj)) out[k] = fillDefaults(field.value, v, dir, checker);
      return out;
    }
    default:
      return value;
  }
}

function defaultOf(field: Field, dir: string, checker: Checker): unknown {
  const raw = rawDefault(field, dir, checker);
  return raw !== undefined && field.normalize !== undefined ? (field.normalize as (v: unknown) => unknown)(raw) : raw;
}

function rawDefault(field: Field, dir: string, checker: Checker): unknown {
  switch (field.kind) {
    case 'object':
      return fillDefaults(field, {}, dir, checker);
    case 'list':
      return [];
    case 'map':
      return {};
    case 'string':
      return field.default !== undefined && field.hostPath === true ? resolveHostPath(dir, field.default) : field.default;
    case 'int':
    case 'bool':
    case 'enum':
    case 'size':
      return field.default;
    default:
      return undefined;
  }
}

function guestKey(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') || '/' : path;
}

/** The list an item was written in: `machines.web.synced_folders[2]` → `machines.web.synced_folders`. */
function listOf(origin: string | undefined): string {
  return origin === undefined ? '(default)' : origin.replace(/\[\d+\]$/, '');
}

export interface MachineInput {
  name: string;
  /** `machines.web.` or '' for the single machine. */
  prefix: string;
  own: Obj;
  primary: boolean;
}

/**
 * One machine's MachineConfig. Problems go to the checker (the config is only handed out
 * when there are none); a problem written at the top level is reported once even when
 * every machine inherits it.
 */
export function normalizeMachine(top: Obj, input: MachineInput, dir: string, checker: Checker): MachineConfig {
  const { merged, origins } = mergeLevels(top, input.own, input.prefix);
  const at = (key: string): string => origins.get(key) ?? input.prefix + key;
  const machinePath = input.prefix === '' ? '' : input.prefix.slice(0, -1);

  // Checks across keys of deep-merged objects, now that both levels are in.
  for (const [key, field] of Object.entries(machineFields) as Array<[string, Field]>) {
    if (field.kind !== 'object' || field.merge !== 'deep' || field.check === undefined) continue;
    const value = merged[key] as Obj;
    field.check(value, (sub, message) => {
      const path = sub === undefined ? at(key) : at(`${key}.${sub}`);
      checker.problemAt(path, message, machinePath);
    });
  }

  const wasWrong = (key: string): boolean => checker.invalidPaths.has(key) || checker.invalidPaths.has(input.prefix + key);

  if (merged['box'] === undefined && !wasWrong('box')) {
    checker.problemAt(
      input.prefix === '' ? 'box' : `${input.prefix}box`,
      input.prefix === '' ? "is required: the box to build the machine from (e.g. 'tiny')" : "is required: set box at the top level or for this machine",
      machinePath,
    );
  }

  if (merged['hostname'] === undefined && !wasWrong('hostname')) {
    if (hostnameProblem(input.name) !== undefined) {
      checker.problemAt(
        machinePath,
        `'${input.name}' is not a valid host name (RFC 1123: at most 63 letters, digits and '-', not at either end); set hostname for this machine`,
      );
    }
  }

  const filled = fillDefaults({ kind: 'object', description: '', fields: machineFields }, merged, dir, checker) as Obj;

  // Synced folders: the project folder first, replaced by guest path, disabled ones removed.
  const folders: Array<{ folder: SyncedFolder; origin: string | undefined }> = [
    { folder: defaultOf({ kind: 'object', description: '', fields: machineFields.synced_folders.item.fields }, dir, checker) as SyncedFolder, origin: undefined },
  ];
  for (const folder of filled['synced_folders'] as SyncedFolder[]) {
    const origin = checker.origins.get(folder);
    folder.guest = guestKey(folder.guest);
    const index = folders.findIndex((f) => f.folder.guest === folder.guest);
    const earlier = folders[index];
    if (earlier !== undefined && listOf(earlier.origin) === listOf(origin)) {
      checker.problemAt(joinPath(origin ?? '', 'guest'), `${folder.guest} is already the guest path of ${earlier.origin}`, origin);
    } else if (earlier !== undefined) {
      folders[index] = { folder, origin };
    } else {
      folders.push({ folder, origin });
    }
  }
  filled['synced_folders'] = folders.map((f) => f.folder).filter((f) => !f.disabled);

  uniqueNames(filled['provision'] as Obj[], 'provisioner', checker);
  uniqueNames(filled['disks'] as Obj[], 'disk', checker);

  return {
    name: input.name,
    primary: input.primary,
    ...(filled as Omit<MachineConfig, 'name' | 'primary' | 'hostname'>),
    hostname: (merged['hostname'] as string | undefined) ?? input.name,
  };
}

function uniqueNames(items: Obj[], what: string, checker: Checker): void {
  const seen = new Map<string, string>();
  for (const item of items) {
    const name = item['name'];
    if (typeof name !== 'string') continue;
    const origin = checker.origins.get(item) ?? '';
    const first = seen.get(name);
    if (first !== undefined && first !== origin) {
      checker.problemAt(joinPath(origin, 'name'), `'${name}' is already the name of the ${what} ${first}`, origin);
    } else {
      seen.set(name, origin);
    }
  }
}
