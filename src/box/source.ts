/**
 * `box:` in vmenv.yaml: a stored box's name, or a `.box` file or URL that `up` adds to
 * the box store on first use (as `vmenv box add` would) and finds there afterwards.
 *
 * - A name (`tiny`, `org/name`) is looked up in the store (`version`: a constraint).
 * - A file: a path starting with `/`, `./`, `../` or `~/`, or ending in `.box`; a
 *   relative one is relative to the project folder. A `file://` URL is a file too.
 * - A URL: `http://` or `https://` (a catalog's URL works too: see below).
 *
 * A file or URL is found again by where it came from: the stored box whose recorded
 * source is that absolute path, or that URL without credentials, query or fragment. So
 * a later `up` neither downloads nor unpacks it again; a changed file at the same path
 * is not noticed (`vmenv box add --force <file>`, or `vmenv box remove`, takes it).
 * The stored name is the box's own (metadata.json `vmenv.name`), else the file name
 * without `.box` (`https://example.org/boxes/web-1.box` → `web-1`); the version is
 * `version:` of vmenv.yaml (an exact version here, not a constraint), else the box's
 * own (`vmenv.version`), else `0`. A catalog (Vagrant box metadata JSON) is read at
 * each first `up` of a machine; the version it picks is downloaded only when not stored.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BoxRef } from '../config/types.js';
import { withFileLock } from '../util/file-lock.js';
import { ExitCode, UserError } from '../errors.js';
import { redactUrl } from './download.js';
import { addBox, BoxAlreadyStoredError, type AddEvent } from './add-box.js';
import { lockPath, type StoreOptions } from './store-paths.js';
import { findBox, listBoxes, type StoredBox } from './stored-boxes.js';
import { compareVersions, isValidVersion } from './version.js';

export type BoxLocation = { kind: 'name'; name: string } | { kind: 'file'; path: string } | { kind: 'url'; url: string; key: string };

/** Whether `box:` names a file rather than a stored box. */
function looksLikePath(s: string): boolean {
  return s.startsWith('/') || s.startsWith('./') || s.startsWith('../') || s.startsWith('~/') || s === '~' || /\.box$/i.test(s);
}

/** What `box:` says: a stored box's name, a file (absolute) or a URL. Pure but for $HOME. */
export function boxLocation(spec: string, projectDir: string): BoxLocation {
  if (/^https?:\/\//i.test(spec)) {
    try {
      new URL(spec);
    } catch {
      throw new UserError(`box: '${spec}' is not a valid URL.`, { hint: 'Fix box: in vmenv.yaml (an http:// or https:// URL of a .box file).', exitCode: ExitCode.usage });
    }
    return { kind: 'url', url: spec, key: redactUrl(spec) };
  }
  if (/^file:\/\//i.test(spec)) return { kind: 'file', path: fileURLToPath(spec) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new UserError(`box: '${spec}' has a URL scheme vmenv cannot fetch.`, {
      hint: 'Give a box name (vmenv box list), a .box file path or an http(s):// URL.',
      exitCode: ExitCode.usage,
    });
  }
  if (!looksLikePath(spec)) return { kind: 'name', name: spec };
  const home = process.env['HOME'] ?? '';
  const expanded = spec === '~' ? home : spec.startsWith('~/') ? join(home, spec.slice(2)) : spec;
  return { kind: 'file', path: resolve(projectDir, expanded) };
}

/**
 * A box name from a file name or URL: its last path segment without `.box` (or
 * `.tar.gz`, `.tgz`, `.tar`), with anything a box name may not hold made `-`.
 */
export function boxNameFromLocation(location: string): string {
  let last = location;
  try {
    last = decodeURIComponent(new URL(location).pathname);
  } catch {
    // a path
  }
  const stem = basename(last).replace(/\.(box|tar\.gz|tgz|tar)$/i, '');
  const name = stem
    .replace(/[^A-Za-z0-9._+-]+/g, '-')
    .replace(/^[^A-Za-z0-9_]+/, '')
    .slice(0, 100);
  return name === '' ? 'box' : name;
}

export interface MachineBoxOptions extends StoreOptions {
  /** Relative paths are relative to this folder (the project's). */
  projectDir: string;
  signal?: AbortSignal;
  onEvent?: (e: AddEvent) => void;
}

export interface MachineBox {
  box: StoredBox;
  /** Added to the store by this call (downloaded or unpacked). */
  added: boolean;
  /** Where it came from, for messages: the path or URL (without credentials). */
  from?: string;
}

function exactVersion(spec: string, version: string | undefined): string | undefined {
  if (version === undefined) return undefined;
  if (!isValidVersion(version)) {
    throw new UserError(`box: '${spec}' is a file or URL, so its version '${version}' must be an exact version (such as 1.2.0), the one to store it as.`, {
      hint: 'Version constraints choose among stored or catalog versions; give an exact version, or leave version out.',
      exitCode: ExitCode.usage,
    });
  }
  return version;
}

/** The newest stored box recorded as coming from `source` (at `version` when given). */
async function storedFrom(source: string, version: string | undefined, options: StoreOptions): Promise<StoredBox | undefined> {
  const found = (await listBoxes(options)).filter((b) => b.source === source && (version === undefined || b.version === version));
  return found.sort((a, b) => compareVersions(b.version, a.version))[0];
}

/**
 * The box a machine is built from, as `box:` gives it: a stored box, or a file or URL
 * added to the store the first time (then found there). Nothing is left in the store
 * when adding fails (the store's own guarantee); the error says what failed and what
 * to do.
 */
export async function machineBox(ref: BoxRef, options: MachineBoxOptions): Promise<MachineBox> {
  const store: StoreOptions = options.home === undefined ? {} : { home: options.home };
  const location = boxLocation(ref.name, options.projectDir);
  if (location.kind === 'name') return { box: await findBox(location.name, ref.version, store), added: false };

  const source = location.kind === 'file' ? location.path : location.key;
  // A file's or a .box URL's version is the version to store it as; a catalog's is a constraint.
  const byFile = location.kind === 'file' || /\.box$/i.test(new URL(location.url).pathname);
  const version = byFile ? exactVersion(ref.name, ref.version) : isValidVersion(ref.version ?? '') ? ref.version : undefined;
  const lockKey = createHash('sha256').update(source).digest('hex').slice(0, 24);
  // One `up` adds it; a parallel one waits, then finds it.
  return withFileLock(
    lockPath(`source-${lockKey}`, store),
    async (): Promise<MachineBox> => {
      const stored = await storedFrom(source, version, store);
      if (stored !== undefined) return { box: stored, added: false, from: source };
      if (location.kind === 'file') {
        const st = await stat(location.path).catch(() => undefined);
        if (st === undefined || !st.isFile()) {
          throw new UserError(`box: ${location.path} ${st === undefined ? 'does not exist' : 'is not a file'} (box: '${ref.name}' in vmenv.yaml).`, {
            hint: `A relative path is relative to the project folder (${options.projectDir}). Fix the path to the .box file, or name a stored box ('vmenv box list').`,
            exitCode: ExitCode.usage,
          });
        }
      }
      try {
        const result = await addBox(location.kind === 'file' ? location.path : location.url, {
          ...store,
          defaultName: boxNameFromLocation(source),
          reuse: true,
          cwd: options.projectDir,
          ...(ref.version === undefined ? {} : { version: ref.version }),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.onEvent ? { onEvent: options.onEvent } : {}),
        });
        return { box: result.box, added: !result.alreadyPresent, from: source };
      } catch (err) {
        if (err instanceof BoxAlreadyStoredError) {
          throw new UserError(`box: ${source} could not be added to the box store: it says it is box '${err.ref.name}' version ${err.ref.version}, and another box of that name and version is stored${err.existing.source ? ` (from ${err.existing.source})` : ''}.`, {
            hint: `Give this one another version in vmenv.yaml (box: { name: ${ref.name}, version: <version> }), or remove the stored one (vmenv box remove ${err.ref.name} --box-version ${err.ref.version}).`,
            cause: err,
          });
        }
        if (!(err instanceof UserError) || err.exitCode === ExitCode.interrupted) throw err;
        throw new UserError(`box: ${source} could not be added to the box store: ${err.message}`, {
          hint: `${err.hint ?? 'Fix box: in vmenv.yaml.'} Nothing was added to the box store; the next 'vmenv up' tries again.`,
          exitCode: err.exitCode,
          cause: err,
        });
      }
    },
    {
      purpose: `adding the box ${source}`,
      timeoutMs: 1_800_000,
      ...(options.signal ? { signal: options.signal } : {}),
      onWait: (holder) => options.onEvent?.({ type: 'wait', what: `another vmenv adding ${source}`, ...(holder ? { holder } : {}) }),
    },
  );
}
