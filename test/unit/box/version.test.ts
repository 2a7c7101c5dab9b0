import { describe, expect, it } from 'vitest';
import { compareVersions, parseConstraint, satisfies, selectVersion, sortVersionsDescending } from '../../../src/box/version.js';
import { ExitCode, UserError } from '../../../src/errors.js';

describe('compareVersions', () => {
  const ordered: [string, string][] = [
    ['1.9', '1.10'],
    ['1.2', '1.2.1'],
    ['0.9.9', '1'],
    ['1.0.0-rc.1', '1.0.0'],
    ['1.0.0-alpha', '1.0.0-beta'],
    ['1.0.0-rc.2', '1.0.0-rc.10'],
    ['1.0.0-1', '1.0.0-alpha'],
    ['1.0.a', '1.0.0'],
    ['20240101.0.1', '20240102.0.0'],
    ['2.9.99', '10.0'],
  ];
  for (const [lo, hi] of ordered) {
    it(`${lo} < ${hi}`, () => {
      expect(compareVersions(lo, hi)).toBeLessThan(0);
      expect(compareVersions(hi, lo)).toBeGreaterThan(0);
    });
  }
  it('treats missing segments as zero and ignores build metadata', () => {
    expect(compareVersions('1.0', '1')).toBe(0);
    expect(compareVersions('1.0.0', '1.0.0+build.5')).toBe(0);
    expect(compareVersions('v1.2', '1.2')).toBe(0);
  });
  it('sorts newest first', () => {
    expect(sortVersionsDescending(['1.2', '1.10', '1.9', '0.1', '1.10.1', '2.0.0-rc1'])).toEqual(['2.0.0-rc1', '1.10.1', '1.10', '1.9', '1.2', '0.1']);
  });
});

describe('constraints', () => {
  const table: [string, string, boolean][] = [
    ['1.0', '= 1.0', true],
    ['1.0.0', '= 1.0', true],
    ['1.0.1', '= 1.0', false],
    ['1.0', '1.0', true],
    ['1.1', '!= 1.0', true],
    ['1.0', '!= 1.0', false],
    ['1.2', '>= 1.2, < 2', true],
    ['1.9.9', '>= 1.2, < 2', true],
    ['2.0', '>= 1.2, < 2', false],
    ['1.1.9', '>= 1.2, < 2', false],
    ['1.10', '> 1.9', true],
    ['1.9', '> 1.9', false],
    ['1.9', '<= 1.9', true],
    ['1.2', '~> 1.2', true],
    ['1.9', '~> 1.2', true],
    ['1.10', '~> 1.2', true],
    ['2.0', '~> 1.2', false],
    ['1.1', '~> 1.2', false],
    ['1.2.3', '~> 1.2.3', true],
    ['1.2.9', '~> 1.2.3', true],
    ['1.3.0', '~> 1.2.3', false],
    ['1.2.2', '~> 1.2.3', false],
    ['1.5', '~> 1', true],
    ['2.0', '~> 1', false],
    ['2.0.0-rc1', '~> 1.2', false],
    ['1.5', '>=1.2,<2', true],
  ];
  for (const [version, constraint, expected] of table) {
    it(`${version} ${expected ? 'satisfies' : 'does not satisfy'} '${constraint}'`, () => {
      expect(satisfies(version, constraint)).toBe(expected);
    });
  }

  for (const bad of ['', '>=', '>= 1.2,', '=> 1.2', '>> 1', '1.2 3', '>= 1..2', 'abc def']) {
    it(`rejects '${bad}' as a usage error`, () => {
      let err: unknown;
      try {
        parseConstraint(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).exitCode).toBe(ExitCode.usage);
      expect((err as UserError).message).toContain(`'${bad}'`);
    });
  }
});

describe('selectVersion', () => {
  const versions = ['1.0', '1.2', '1.9', '1.10', '2.0', '2.1.0-beta', 'not a version'];
  const table: [string | undefined, string | undefined][] = [
    [undefined, '2.0'],
    ['>= 1.2, < 2', '1.10'],
    ['~> 1.2', '1.10'],
    ['= 1.0', '1.0'],
    ['< 1', undefined],
    ['>= 2.1.0-alpha', '2.1.0-beta'],
    ['> 2.0', '2.1.0-beta'], // only a prerelease matches: taken
    ['>= 1.0', '2.0'], // a release outranks a newer prerelease
    ['> 2.1', undefined],
  ];
  for (const [constraint, expected] of table) {
    it(`${constraint ?? '(none)'} → ${expected ?? 'nothing'}`, () => {
      expect(selectVersion(versions, constraint)).toBe(expected);
    });
  }
  it('picks a prerelease when nothing else is there', () => {
    expect(selectVersion(['1.0.0-rc1'])).toBe('1.0.0-rc1');
  });
});
