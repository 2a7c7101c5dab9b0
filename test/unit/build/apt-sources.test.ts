import { describe, expect, it } from 'vitest';
import { mirrorLines, parseDeb822Sources, parseOneLineSources } from '../../../src/build/apt-sources.js';

const debianSources = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://packages.example.com/apt
Suites: stable
Components: main
Enabled: no
`;

describe('apt sources', () => {
  it('parses deb822 stanzas, skipping comments and disabled ones', () => {
    expect(parseDeb822Sources(debianSources)).toEqual([
      { types: ['deb'], uris: ['http://deb.debian.org/debian'], suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
      { types: ['deb'], uris: ['http://deb.debian.org/debian-security'], suites: ['bookworm-security'], components: ['main'] },
    ]);
  });

  it('parses one-line sources with options and comments', () => {
    const text = '# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\ndeb-src http://x/debian bookworm main\n\n';
    expect(parseOneLineSources(text)).toEqual([
      { types: ['deb'], uris: ['http://mirror.example/debian/'], suites: ['bookworm'], components: ['main', 'contrib'] },
      { types: ['deb-src'], uris: ['http://x/debian'], suites: ['bookworm'], components: ['main'] },
    ]);
  });

  it("builds from the host's own entries for the release", () => {
    expect(mirrorLines(parseDeb822Sources(debianSources), 'bookworm')).toEqual([
      'deb http://deb.debian.org/debian bookworm main',
      'deb http://deb.debian.org/debian bookworm-updates main',
      'deb http://deb.debian.org/debian-security bookworm-security main',
    ]);
  });

  it("reuses the host's mirrors for another release", () => {
    const host = parseOneLineSources('deb http://mirror.example/debian/ bookworm main\ndeb http://security.example/debian-security bookworm-security main\n');
    expect(mirrorLines(host, 'trixie')).toEqual([
      'deb http://mirror.example/debian trixie main',
      'deb http://mirror.example/debian trixie-updates main',
      'deb http://security.example/debian-security trixie-security main',
    ]);
  });

  it('falls back to deb.debian.org, and --mirror overrides the main mirror', () => {
    expect(mirrorLines([], 'bookworm')).toEqual([
      'deb http://deb.debian.org/debian bookworm main',
      'deb http://deb.debian.org/debian bookworm-updates main',
      'deb http://deb.debian.org/debian-security bookworm-security main',
    ]);
    expect(mirrorLines(parseDeb822Sources(debianSources), 'bookworm', 'http://local/debian/')).toEqual([
      'deb http://local/debian bookworm main',
      'deb http://local/debian bookworm-updates main',
      'deb http://deb.debian.org/debian-security bookworm-security main',
    ]);
  });
});
