/**
 * Which changes under a synced folder rsync-auto need not watch: `.vmenv/` at its root,
 * the inside of `.git` folders (git's own churn; the work tree's changes carry them
 * along), and what the folder's rsync `exclude` patterns leave out — those that can be
 * told apart here. A pattern that cannot (a POSIX class like `[[:alpha:]]`) is left
 * out of the watch filter: its paths are watched, and rsync still leaves them out.
 */

/** One rsync exclude pattern as a test on a path relative to the folder (with `/`). */
export interface ExcludeMatcher {
  pattern: string;
  /**
   * Whether rsync leaves the path out. `isDir` undefined: not known yet; a pattern for
   * directories only then does not match.
   */
  matches(relPath: string, isDir: boolean | undefined): boolean;
}

const ALWAYS: readonly RegExp[] = [/^\.vmenv(\/|$)/, /(^|\/)\.git\//];

/**
 * rsync's exclude pattern rules (rsync(1), "PATTERN MATCHING RULES"): a leading `/`
 * anchors at the folder's root, else the pattern matches the end of the path at a
 * component boundary (just the name when it has no `/`); a trailing `/` matches
 * directories only; `*` and `?` stop at `/`, `**` does not; `dir/***` is `dir` and
 * everything in it; `[…]` is a class (`[!…]` negated); `\` quotes the next character.
 * Undefined when the pattern uses what is not understood here.
 */
export function rsyncExcludeMatcher(pattern: string): ExcludeMatcher | undefined {
  let p = pattern;
  if (p === '' || p === '!' || /^[+-] /.test(p)) return undefined;
  const dirOnly = p.endsWith('/') && p !== '/';
  if (dirOnly) p = p.replace(/\/+$/, '');
  const anchored = p.startsWith('/');
  if (anchored) p = p.slice(1);
  if (p === '') return undefined;
  // `dir/***`: the directory `dir` and everything in it.
  const withContents = p.endsWith('/***');
  if (withContents) p = p.slice(0, -4);
  const body = globBody(p);
  if (body === undefined) return undefined;
  const start = anchored ? '^' : '(^|/)';
  const self = new RegExp(`${start}${body}$`);
  const inside = withContents ? new RegExp(`${start}${body}/`) : undefined;
  const selfNeedsDir = dirOnly || withContents;
  return {
    pattern,
    matches: (rel, isDir) => ((!selfNeedsDir || isDir === true) && self.test(rel)) || (inside?.test(rel) ?? false),
  };
}

function globBody(p: string): string | undefined {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\') {
      const next = p[i + 1];
      if (next === undefined) return undefined;
      out += escapeRe(next);
      i++;
    } else if (c === '*') {
      if (p[i + 1] === '*') {
        out += '.*';
        while (p[i + 1] === '*') i++;
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const end = classEnd(p, i);
      if (end === undefined) return undefined;
      let inner = p.slice(i + 1, end);
      if (inner.includes('[:') || inner.includes('[=') || inner.includes('[.')) return undefined;
      const negated = inner.startsWith('!') || inner.startsWith('^');
      if (negated) inner = inner.slice(1);
      out += `[${negated ? '^/' : ''}${inner.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else {
      out += escapeRe(c);
    }
  }
  return out;
}

/** The index of the `]` closing the class opened at `start` (a `]` first in it is a member). */
function classEnd(p: string, start: number): number | undefined {
  let i = start + 1;
  if (p[i] === '!' || p[i] === '^') i++;
  if (p[i] === ']') i++;
  const end = p.indexOf(']', i);
  return end === -1 ? undefined : end;
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * The watch filter for a folder: true for a path (relative, with `/`) whose changes
 * need no sync. `isDir` is undefined when not known yet; a directory-only pattern then
 * does not match (the watcher asks again with what it found).
 */
export function watchIgnore(excludes: readonly string[]): { ignored: (relPath: string, isDir: boolean | undefined) => boolean; unsupported: string[] } {
  const matchers: ExcludeMatcher[] = [];
  const unsupported: string[] = [];
  for (const e of excludes) {
    const m = rsyncExcludeMatcher(e);
    if (m) matchers.push(m);
    else unsupported.push(e);
  }
  return {
    unsupported,
    ignored(rel, isDir) {
      if (rel === '' || rel === '.') return false;
      if (ALWAYS.some((re) => re.test(rel))) return true;
      return matchers.some((m) => m.matches(rel, isDir));
    },
  };
}
