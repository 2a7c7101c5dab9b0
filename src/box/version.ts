/**
 * Box versions and version constraints, as Vagrant's catalogs use them.
 *
 * A version is dot-separated segments, optionally followed by `-prerelease` and
 * `+build`: `1.2.3`, `20240105.0.1`, `2.0.0-rc.1`. Numeric segments compare as numbers
 * (`1.10 > 1.9`), missing trailing segments count as zero (`1.0 == 1`), a segment that
 * is not a number sorts before any number, and a prerelease sorts before its release.
 *
 * A constraint is comma-separated clauses, all of which must hold:
 * `= 1.0` (or just `1.0`), `!= 1.1`, `> 1`, `>= 1.2`, `< 2`, `<= 2.1`, and
 * `~> 1.2` (at least 1.2, below 2) / `~> 1.2.3` (at least 1.2.3, below 1.3).
 */
import { ExitCode, UserError } from '../errors.js';

export interface ParsedVersion {
  segments: (number | string)[];
  prerelease: (number | string)[];
  raw: string;
}

const VERSION_RE = /^v?([0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$/;

function segment(s: string): number | string {
  return /^\d+$/.test(s) ? Number(s) : s;
}

/** Parses a version, or returns undefined when it is not one. */
export function parseVersion(raw: string): ParsedVersion | undefined {
  const m = VERSION_RE.exec(raw.trim());
  if (m === null) return undefined;
  return {
    segments: m[1]!.split('.').map(segment),
    prerelease: m[2] === undefined ? [] : m[2].split('.').map(segment),
    raw,
  };
}

export function isValidVersion(raw: string): boolean {
  return parseVersion(raw) !== undefined;
}

function compareSegment(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return 1; // a number outranks a word (1.0 > 1.0.beta)
  if (typeof b === 'number') return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareParsed(a: ParsedVersion, b: ParsedVersion): number {
  const n = Math.max(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const c = compareSegment(a.segments[i] ?? 0, b.segments[i] ?? 0);
    if (c !== 0) return Math.sign(c);
  }
  if (a.prerelease.length === 0 || b.prerelease.length === 0) {
    // A release outranks its prereleases.
    return a.prerelease.length === b.prerelease.length ? 0 : a.prerelease.length === 0 ? 1 : -1;
  }
  const m = Math.max(a.prerelease.length, b.prerelease.length);
  for (let i = 0; i < m; i++) {
    const x = a.prerelease[i];
    const y = b.prerelease[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    // Semver: numeric identifiers sort before alphanumeric ones.
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : typeof x === 'number' ? -1 : typeof y === 'number' ? 1 : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}

function mustParse(raw: string): ParsedVersion {
  const v = parseVersion(raw);
  if (v === undefined) throw new Error(`not a version: ${raw}`);
  return v;
}

/** Negative, zero or positive as a sorts before, with or after b. Invalid versions sort first, by text. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (pa === undefined || pb === undefined) {
    if (pa !== undefined) return 1;
    if (pb !== undefined) return -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return compareParsed(pa, pb);
}

export type ConstraintOp = '=' | '!=' | '>' | '>=' | '<' | '<=' | '~>';

export interface ConstraintClause {
  op: ConstraintOp;
  version: ParsedVersion;
}

export interface VersionConstraint {
  clauses: ConstraintClause[];
  /** The constraint as written. */
  raw: string;
}

const CLAUSE_RE = /^(=|!=|>=|<=|>|<|~>)?\s*(\S+)$/;

function badConstraint(raw: string, what: string): UserError {
  return new UserError(`Invalid version constraint '${raw}': ${what}.`, {
    hint: "Write versions and comparisons separated by commas, e.g. '1.2.0', '>= 1.2, < 2' or '~> 1.2'.",
    exitCode: ExitCode.usage,
  });
}

/** Parses a constraint such as `>= 1.2, < 2`; throws a UserError (exit 2) saying what is wrong. */
export function parseConstraint(raw: string): VersionConstraint {
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) throw badConstraint(raw, 'an empty clause');
  const clauses = parts.map((part): ConstraintClause => {
    const m = CLAUSE_RE.exec(part);
    if (m === null) throw badConstraint(raw, `'${part}' is not an operator followed by a version`);
    const version = parseVersion(m[2]!);
    if (version === undefined) throw badConstraint(raw, `'${m[2]!}' is not a version`);
    return { op: (m[1] ?? '=') as ConstraintOp, version };
  });
  return { clauses, raw };
}

/** The upper bound of `~> v`: drop the last segment (keep at least one), then bump the new last one. */
function pessimisticBound(v: ParsedVersion): ParsedVersion {
  const segs = v.segments.slice(0, Math.max(1, v.segments.length - 1));
  const last = segs[segs.length - 1]!;
  segs[segs.length - 1] = typeof last === 'number' ? last + 1 : `${last}\uffff`;
  return { segments: segs, prerelease: [], raw: segs.join('.') };
}

function clauseHolds(c: ConstraintClause, v: ParsedVersion): boolean {
  const cmp = compareParsed(v, c.version);
  switch (c.op) {
    case '=':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '>':
      return cmp > 0;
    case '>=':
      return cmp >= 0;
    case '<':
      return cmp < 0;
    case '<=':
      return cmp <= 0;
    case '~>': {
      if (cmp < 0) return false;
      const bound = pessimisticBound(c.version);
      // Below the bound; the bound's own prereleases (2.0.0-rc1 for ~> 1.2) are out too.
      return compareParsed({ ...v, prerelease: [] }, bound) < 0;
    }
  }
}

/** Whether a version satisfies a constraint (a string is parsed first). Invalid versions never do. */
export function satisfies(version: string, constraint: VersionConstraint | string): boolean {
  const c = typeof constraint === 'string' ? parseConstraint(constraint) : constraint;
  const v = parseVersion(version);
  if (v === undefined) return false;
  return c.clauses.every((clause) => clauseHolds(clause, v));
}

/** Versions sorted newest first (invalid ones last). */
export function sortVersionsDescending(versions: readonly string[]): string[] {
  return [...versions].sort((a, b) => compareVersions(b, a));
}

/**
 * The newest version that satisfies the constraint (all versions when none is given),
 * or undefined. Prereleases are picked only when the constraint names a prerelease or
 * when nothing else is available.
 */
export function selectVersion(versions: readonly string[], constraint?: VersionConstraint | string): string | undefined {
  const c = constraint === undefined || constraint === '' ? undefined : typeof constraint === 'string' ? parseConstraint(constraint) : constraint;
  const candidates = sortVersionsDescending(versions).filter((v) => isValidVersion(v) && (c === undefined || satisfies(v, c)));
  const wantsPre = c?.clauses.some((cl) => cl.version.prerelease.length > 0) ?? false;
  if (!wantsPre) {
    const release = candidates.find((v) => mustParse(v).prerelease.length === 0);
    if (release !== undefined) return release;
  }
  return candidates[0];
}
