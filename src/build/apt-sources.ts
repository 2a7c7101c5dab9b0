/**
 * Which Debian mirror to build from: the one the host's apt already uses (its
 * /etc/apt/sources.list and sources.list.d/*.list|*.sources), so a build reaches exactly
 * the mirror this machine is configured for. Parsing is pure; readHostSources reads files.
 *
 * For a recipe's release R the build uses the host's entries for R, R-updates and
 * R-security when it has them; when the host runs another release, its Debian mirror
 * (and security mirror) are reused with R's suite names.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
}

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_SECURITY_MIRROR = 'http://deb.debian.org/debian-security';

/** Parses deb822 `.sources` text (stanzas separated by blank lines). */
export function parseDeb822Sources(text: string): AptSource[] {
  const out: AptSource[] = [];
  const stanzas = text.split(/\n\s*\n/);
  for (const stanza of stanzas) {
    const fields = new Map<string, string>();
    let current: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      if (/^\s/.test(line) && current !== undefined) {
        fields.set(current, `${fields.get(current) ?? ''} ${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m === null) continue;
      current = m[1]!.toLowerCase();
      fields.set(current, m[2]!.trim());
    }
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const words = (key: string): string[] => (fields.get(key) ?? '').split(/\s+/).filter(Boolean);
    const source: AptSource = { types: words('types'), uris: words('uris'), suites: words('suites'), components: words('components') };
    if (source.types.length > 0 && source.uris.length > 0 && source.suites.length > 0) out.push(source);
  }
  return out;
}

/** Parses one-line-style `sources.list` text. */
export function parseOneLineSources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    // deb [opt=val ...] uri suite [component ...]
    const m = /^(deb|deb-src)\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (m === null) continue;
    out.push({ types: [m[1]!], uris: [m[2]!], suites: [m[3]!], components: m[4]!.split(/\s+/).filter(Boolean) });
  }
  return out;
}

function trimSlash(uri: string): string {
  return uri.replace(/\/+$/, '');
}

/**
 * The mmdebstrap mirror lines (`deb URI SUITE COMPONENTS`) for a release, from the
 * host's sources. `mirror` overrides the main mirror (R and R-updates).
 */
export function mirrorLines(sources: readonly AptSource[], release: string, mirror?: string): string[] {
  const debs = sources.filter((s) => s.types.includes('deb'));
  const lines: string[] = [];
  const seen = new Set<string>();
  const add = (uri: string, suite: string, components: string[]): void => {
    const line = `deb ${trimSlash(uri)} ${suite} ${(components.length > 0 ? components : ['main']).join(' ')}`;
    if (!seen.has(line)) {
      seen.add(line);
      lines.push(line);
    }
  };
  const entryFor = (suite: string): { uri: string; components: string[] } | undefined => {
    for (const s of debs) {
      if (s.suites.includes(suite) && s.uris[0] !== undefined) return { uri: s.uris[0], components: s.components };
    }
    return undefined;
  };
  // A Debian mirror the host uses for some release, for releases it does not list.
  const anyMain = debs.find((s) => s.uris.some((u) => /\/debian\/?$/.test(u)) && s.suites.some((x) => !x.endsWith('-security')));
  const anySecurity = debs.find((s) => s.suites.some((x) => x.endsWith('-security')));

  const main = entryFor(release);
  const mainUri = mirror ?? main?.uri ?? anyMain?.uris.find((u) => /\/debian\/?$/.test(u)) ?? DEFAULT_MIRROR;
  const components = main?.components ?? anyMain?.components ?? ['main'];
  add(mainUri, release, components);

  const updates = entryFor(`${release}-updates`);
  if (mirror !== undefined || updates !== undefined || main === undefined) add(mirror ?? updates?.uri ?? mainUri, `${release}-updates`, updates?.components ?? components);

  const security = entryFor(`${release}-security`);
  const securityUri = security?.uri ?? anySecurity?.uris[0] ?? DEFAULT_SECURITY_MIRROR;
  // Debian's security suite was `<release>/updates` before bullseye.
  if (!['stretch', 'buster', 'jessie'].includes(release)) add(securityUri, `${release}-security`, security?.components ?? components);
  return lines;
}

/** Reads the host's apt sources (missing files are fine: the defaults apply). */
export async function readHostSources(etcApt = '/etc/apt'): Promise<AptSource[]> {
  const out: AptSource[] = [];
  const read = async (path: string): Promise<string | undefined> => {
    try {
      return await readFile(path, 'utf8');
    } catch {
      return undefined;
    }
  };
  const list = await read(join(etcApt, 'sources.list'));
  if (list !== undefined) out.push(...parseOneLineSources(list));
  let names: string[] = [];
  try {
    names = (await readdir(join(etcApt, 'sources.list.d'))).sort();
  } catch {
    // none
  }
  for (const name of names) {
    const text = await read(join(etcApt, 'sources.list.d', name));
    if (text === undefined) continue;
    if (name.endsWith('.sources')) out.push(...parseDeb822Sources(text));
    else if (name.endsWith('.list')) out.push(...parseOneLineSources(text));
  }
  return out;
}
