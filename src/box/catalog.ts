/**
 * Box catalogs (Vagrant's box metadata JSON) and telling what `box add` was given.
 *
 * A catalog:
 *   {
 *     "name": "vmenv/debian-12",
 *     "description": "…",
 *     "versions": [
 *       { "version": "1.2.0",
 *         "providers": [
 *           { "name": "libvirt", "url": "https://…/debian-12-1.2.0.box",
 *             "checksum": "…", "checksum_type": "sha256", "architecture": "amd64" } ] } ]
 *   }
 * Provider URLs may be relative to the catalog's own URL (or folder, for a local file).
 */
import { open, readFile, stat } from 'node:fs/promises';
import { arch } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ExitCode, UserError } from '../errors.js';
import { fetchText, parseChecksum, redactUrl, type Checksum } from './download.js';
import { BOX_PROVIDER } from './metadata.js';
import { isValidVersion, parseConstraint, selectVersion, sortVersionsDescending } from './version.js';

export interface CatalogProvider {
  name: string;
  url: string;
  checksum?: string;
  checksum_type?: string;
  architecture?: string;
  default_architecture?: boolean;
}

export interface CatalogVersion {
  version: string;
  status?: string;
  providers: CatalogProvider[];
}

export interface Catalog {
  name: string;
  description?: string;
  versions: CatalogVersion[];
}

export interface ResolvedCatalogBox {
  name: string;
  version: string;
  /** Absolute URL of the .box (file: URLs for local catalogs). */
  url: string;
  checksum?: Checksum;
  /** Every version the catalog offers for libvirt (newest first), for messages. */
  available: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function badCatalog(source: string, what: string): UserError {
  return new UserError(`The box catalog ${source} is not valid: ${what}.`, {
    hint: 'A catalog is JSON with "name" and "versions": [{"version", "providers": [{"name": "libvirt", "url", "checksum", "checksum_type"}]}].',
  });
}

/** Parses and checks a catalog; `source` names it in messages. */
export function parseCatalog(text: string, source: string): Catalog {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw badCatalog(source, `not JSON (${(err as Error).message})`);
  }
  if (!isRecord(raw)) throw badCatalog(source, 'not a JSON object');
  if (typeof raw['name'] !== 'string' || raw['name'] === '') throw badCatalog(source, "no 'name'");
  if (!Array.isArray(raw['versions'])) throw badCatalog(source, "no 'versions' list");
  const versions = raw['versions'].map((v: unknown, i): CatalogVersion => {
    if (!isRecord(v)) throw badCatalog(source, `versions[${i}] is not an object`);
    if (typeof v['version'] !== 'string' && typeof v['version'] !== 'number') throw badCatalog(source, `versions[${i}] has no 'version'`);
    const version = String(v['version']);
    const providers = v['providers'] ?? [];
    if (!Array.isArray(providers)) throw badCatalog(source, `versions[${i}].providers is not a list`);
    return {
      version,
      ...(typeof v['status'] === 'string' ? { status: v['status'] } : {}),
      providers: providers.map((p: unknown, j): CatalogProvider => {
        const at = `versions[${i}].providers[${j}]`;
        if (!isRecord(p)) throw badCatalog(source, `${at} is not an object`);
        if (typeof p['name'] !== 'string') throw badCatalog(source, `${at} has no 'name'`);
        if (typeof p['url'] !== 'string' || p['url'] === '') throw badCatalog(source, `${at} has no 'url'`);
        for (const k of ['checksum', 'checksum_type', 'architecture'] as const) {
          if (p[k] !== undefined && p[k] !== null && typeof p[k] !== 'string') throw badCatalog(source, `${at}.${k} is not a string`);
        }
        return {
          name: p['name'],
          url: p['url'],
          ...(typeof p['checksum'] === 'string' && p['checksum'] !== '' ? { checksum: p['checksum'] } : {}),
          ...(typeof p['checksum_type'] === 'string' && p['checksum_type'] !== '' ? { checksum_type: p['checksum_type'] } : {}),
          ...(typeof p['architecture'] === 'string' ? { architecture: p['architecture'] } : {}),
          ...(typeof p['default_architecture'] === 'boolean' ? { default_architecture: p['default_architecture'] } : {}),
        };
      }),
    };
  });
  return {
    name: raw['name'],
    ...(typeof raw['description'] === 'string' ? { description: raw['description'] } : {}),
    versions,
  };
}

/** The host's architecture in catalog terms. */
export function hostArchitecture(): string {
  const a = arch();
  return a === 'x64' ? 'amd64' : a === 'arm64' ? 'arm64' : a === 'ia32' ? 'i386' : a;
}

function providerFits(p: CatalogProvider, hostArch: string): boolean {
  if (p.name !== BOX_PROVIDER) return false;
  return p.architecture === undefined || p.architecture === 'unknown' || p.architecture === hostArch;
}

function pickProvider(providers: CatalogProvider[], hostArch: string): CatalogProvider | undefined {
  const fitting = providers.filter((p) => providerFits(p, hostArch));
  return fitting.find((p) => p.architecture === hostArch) ?? fitting.find((p) => p.default_architecture === true) ?? fitting[0];
}

/**
 * Picks the newest version that matches the constraint and has a libvirt provider for
 * this host, and returns its URL (resolved against `baseUrl`) and checksum.
 */
export function resolveCatalog(catalog: Catalog, options: { constraint?: string; baseUrl: string; source: string; hostArch?: string }): ResolvedCatalogBox {
  const hostArch = options.hostArch ?? hostArchitecture();
  const constraint = options.constraint === undefined || options.constraint === '' ? undefined : parseConstraint(options.constraint);
  const usable = catalog.versions.filter((v) => v.status !== 'revoked' && isValidVersion(v.version) && pickProvider(v.providers, hostArch) !== undefined);
  const available = sortVersionsDescending(usable.map((v) => v.version));
  if (available.length === 0) {
    const others = [...new Set(catalog.versions.flatMap((v) => v.providers.map((p) => p.name + (p.architecture ? ` (${p.architecture})` : ''))))];
    throw new UserError(`The catalog ${options.source} has no libvirt box for ${hostArch} (box '${catalog.name}').`, {
      hint: others.length === 0 ? 'It lists no providers at all.' : `It offers: ${others.join(', ')}. vmenv needs the libvirt provider.`,
    });
  }
  const chosen = selectVersion(available, constraint);
  if (chosen === undefined) {
    throw new UserError(`No version of '${catalog.name}' matches '${constraint!.raw}'.`, {
      hint: `Versions with a libvirt box: ${available.join(', ')}.`,
    });
  }
  const entry = usable.find((v) => v.version === chosen)!;
  const provider = pickProvider(entry.providers, hostArch)!;
  let url: string;
  try {
    url = new URL(provider.url, options.baseUrl).toString();
  } catch {
    throw badCatalog(options.source, `version ${chosen} has an invalid url '${provider.url}'`);
  }
  let checksum: Checksum | undefined;
  if (provider.checksum !== undefined) {
    try {
      checksum = parseChecksum(provider.checksum, provider.checksum_type);
    } catch (err) {
      throw badCatalog(options.source, `version ${chosen}: ${(err as UserError).message.replace(/^Invalid checksum: /, '').replace(/\.$/, '')}`);
    }
  }
  return { name: catalog.name, version: chosen, url, ...(checksum ? { checksum } : {}), available };
}

// ---------------------------------------------------------------------------
// What `box add` was given

export type BoxSource =
  | { kind: 'file'; path: string }
  | { kind: 'url'; url: string }
  | { kind: 'catalog'; catalog: Catalog; baseUrl: string; source: string }
  | { kind: 'name'; name: string };

function looksLikePath(s: string): boolean {
  return s.startsWith('/') || s.startsWith('./') || s.startsWith('../') || s.startsWith('~') || /\.(box|json|tar|tgz|gz)$/i.test(s);
}

async function firstNonSpaceByte(path: string): Promise<string | undefined> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(64);
    const { bytesRead } = await fh.read(buf, 0, 64, 0);
    return buf.subarray(0, bytesRead).toString('latin1').trimStart()[0];
  } finally {
    await fh.close();
  }
}

async function loadCatalogFile(path: string): Promise<BoxSource> {
  const st = await stat(path);
  if (st.size > 16 * 1024 * 1024) throw badCatalog(path, 'larger than 16 MiB');
  const text = await readFile(path, 'utf8');
  return { kind: 'catalog', catalog: parseCatalog(text, path), baseUrl: pathToFileURL(path).toString(), source: path };
}

/**
 * Works out what `box add <source>` means: an existing file (a catalog when it starts
 * with '{', else a box), an http(s) or file URL (a catalog when it ends in .json or is
 * served as JSON), or else a box name.
 */
export async function classifySource(source: string, options: { signal?: AbortSignal; cwd?: string } = {}): Promise<BoxSource> {
  if (/^https?:\/\//i.test(source)) {
    let u: URL;
    try {
      u = new URL(source);
    } catch {
      throw new UserError(`'${source}' is not a valid URL.`, { exitCode: ExitCode.usage });
    }
    if (u.pathname.toLowerCase().endsWith('.json')) {
      const { text, url } = await fetchText(source, options.signal ? { signal: options.signal } : {});
      return { kind: 'catalog', catalog: parseCatalog(text, redactUrl(source)), baseUrl: url, source: redactUrl(source) };
    }
    if (/\.(box|tar|tgz|gz|img)$/i.test(u.pathname)) return { kind: 'url', url: source };
    // No telling suffix: ask the server what it is.
    const kind = await probeUrl(source, options.signal);
    if (kind === 'catalog') {
      const { text, url } = await fetchText(source, options.signal ? { signal: options.signal } : {});
      return { kind: 'catalog', catalog: parseCatalog(text, redactUrl(source)), baseUrl: url, source: redactUrl(source) };
    }
    return { kind: 'url', url: source };
  }
  if (/^file:\/\//i.test(source)) return classifySource(fileURLToPath(source), options);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) {
    throw new UserError(`Unsupported URL scheme in '${source}'.`, { hint: 'Give a file path, an http(s):// URL or a box name.', exitCode: ExitCode.usage });
  }

  const path = resolvePath(options.cwd ?? process.cwd(), source.startsWith('~/') ? `${process.env['HOME'] ?? ''}${source.slice(1)}` : source);
  let st;
  try {
    st = await stat(path);
  } catch {
    st = undefined;
  }
  if (st !== undefined) {
    if (st.isDirectory()) throw new UserError(`${source} is a directory, not a box file.`, { hint: 'Give the path of a .box file or a catalog .json.' });
    return (await firstNonSpaceByte(path)) === '{' ? loadCatalogFile(path) : { kind: 'file', path };
  }
  if (looksLikePath(source)) {
    throw new UserError(`The file ${source} does not exist.`, { hint: 'Check the path, or give a URL.' });
  }
  return { kind: 'name', name: source };
}

async function probeUrl(url: string, signal?: AbortSignal): Promise<'catalog' | 'box'> {
  try {
    const res = await fetch(url, { method: 'HEAD', redirect: 'follow', ...(signal ? { signal } : {}) });
    const type = res.headers.get('content-type') ?? '';
    return res.ok && /json/i.test(type) ? 'catalog' : 'box';
  } catch {
    return 'box'; // the download will report what is wrong
  }
}
