import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedBoxName, defaultAptCacheDir } from '../../../src/build/cache.js';
import { renderSummary, versionFromDate, type PreparedBuild } from '../../../src/build/command.js';
import { looksLikePath, packagedBoxesDir, resolveRecipeDir } from '../../../src/build/locate.js';
import { mountsUnder, parseMountPoints } from '../../../src/build/mounts.js';
import { needsRootError, requiredTools } from '../../../src/build/preflight.js';
import { alignUp, formatSize, parseSize } from '../../../src/build/size.js';
import { didYouMean, editDistance } from '../../../src/build/suggest.js';
import { ExitCode } from '../../../src/errors.js';

describe('sizes', () => {
  it('reads binary sizes', () => {
    expect(parseSize('1G')).toBe(1024 ** 3);
    expect(parseSize('512M')).toBe(512 * 1024 ** 2);
    expect(parseSize('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('10gb')).toBe(10 * 1024 ** 3);
    expect(parseSize('2048')).toBe(2048);
    expect(parseSize(4096)).toBe(4096);
    expect(parseSize('lots')).toBeUndefined();
    expect(parseSize(-1)).toBeUndefined();
    expect(parseSize('1X')).toBeUndefined();
  });
  it('prints them short', () => {
    expect(formatSize(243 * 1024 ** 2 + 5)).toBe('243 MiB');
    expect(formatSize(1.5 * 1024 ** 3)).toBe('1.5 GiB');
    expect(formatSize(10 * 1024 ** 3)).toBe('10 GiB');
    expect(formatSize(12)).toBe('12 B');
    expect(alignUp(5, 4)).toBe(8);
  });
});

describe('did you mean', () => {
  it('suggests close keys and nothing for far ones', () => {
    expect(editDistance('pakages', 'packages')).toBe(1);
    expect(editDistance('kenrel', 'kernel')).toBe(1); // a transposition
    expect(didYouMean('pakages', ['name', 'packages'])).toBe('packages');
    expect(didYouMean('user', ['default_user', 'nocloud'])).toBe('default_user');
    expect(didYouMean('zzzzzz', ['name', 'packages'])).toBeUndefined();
    expect(didYouMean('x', [])).toBeUndefined();
  });
});

describe('mounts', () => {
  it('reads mount points from mountinfo, decoding escapes', () => {
    const info = [
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '90 22 0:5 / /tmp/vmenv-build-x/rootfs/dev rw shared:2 - devtmpfs udev rw',
      '91 22 7:0 / /tmp/vmenv-build-x/mnt\\040dir rw - ext4 /dev/loop0 rw',
      '',
    ].join('\n');
    expect(parseMountPoints(info)).toEqual(['/', '/tmp/vmenv-build-x/rootfs/dev', '/tmp/vmenv-build-x/mnt dir']);
  });
  it('finds the mounts under a folder, deepest first, not in siblings with the same prefix', () => {
    const points = ['/', '/tmp/w', '/tmp/w/rootfs/proc', '/tmp/w/rootfs/dev/pts', '/tmp/w/rootfs/dev', '/tmp/w2/rootfs/dev'];
    expect(mountsUnder(points, '/tmp/w/')).toEqual(['/tmp/w/rootfs/dev/pts', '/tmp/w/rootfs/proc', '/tmp/w/rootfs/dev', '/tmp/w']);
    expect(mountsUnder(points, '/tmp/none')).toEqual([]);
  });
});

describe('preflight', () => {
  it('without root: a usage error whose hint is the same command under sudo', () => {
    const err = needsRootError(['box', 'build', 'debian-12', '-o', 'my box.box']);
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(err.message).toMatch(/^Building a box needs root/);
    expect(err.hint).toBe("Run it with sudo: sudo vmenv box build debian-12 -o 'my box.box'");
  });
  it('needs tar only for tarballs', () => {
    expect(requiredTools(['box'])).not.toContain('tar');
    expect(requiredTools(['box', 'tar'])).toContain('tar');
    expect(requiredTools(['box'])).toEqual(expect.arrayContaining(['mmdebstrap', 'mkfs.ext4', 'sfdisk', 'extlinux', 'qemu-img']));
  });
});

describe('locating recipes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmenv-locate-test-'));
    for (const name of ['tiny', 'debian-12']) {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'recipe.yaml'), `name: ${name}\n`);
    }
    await mkdir(join(dir, 'common'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the packaged boxes folder from this module', () => {
    expect(packagedBoxesDir()).toMatch(/\/boxes\/$/);
  });
  it('takes names from boxes/ and paths as paths', async () => {
    expect(await resolveRecipeDir('tiny', dir)).toBe(join(dir, 'tiny'));
    expect(await resolveRecipeDir(join(dir, 'debian-12'), '/nonexistent')).toBe(join(dir, 'debian-12'));
    expect(looksLikePath('./x')).toBe(true);
    expect(looksLikePath('debian-12')).toBe(false);
  });
  it('suggests the closest recipe for a typo, and lists them', async () => {
    const err = (await resolveRecipeDir('debian12', dir).catch((e: unknown) => e)) as Error & { hint?: string; exitCode?: number };
    expect(err.message).toBe("There is no recipe named 'debian12'.");
    expect(err.hint).toContain("Did you mean 'debian-12'?");
    expect(err.hint).toContain('debian-12, tiny');
    expect(err.exitCode).toBe(ExitCode.usage);
    await expect(resolveRecipeDir('./no/such/folder', dir)).rejects.toThrow(/No recipe folder at/);
  });
});

describe('cache and summary', () => {
  it('keeps .debs in $VMENV_HOME/cache/apt, else /var/cache/vmenv/apt', () => {
    expect(defaultAptCacheDir({ VMENV_HOME: '/home/u/.vmenv' })).toBe('/home/u/.vmenv/cache/apt');
    expect(defaultAptCacheDir({})).toBe('/var/cache/vmenv/apt');
    expect(cachedBoxName('debian-12', 'sha256:0123456789abcdef0123')).toBe('debian-12-0123456789abcdef.box');
    expect(cachedBoxName('tiny', '0123456789abcdef')).toBe('tiny-0123456789abcdef.box');
  });
  it('versions builds by time', () => {
    expect(versionFromDate(new Date('2024-01-05T03:04:05.678Z'))).toBe('20240105.030405');
  });
  it('summarises what was written', () => {
    const prepared = { recipe: { name: 'debian-12' }, recipeHash: 'sha256:ab', boxName: 'vmenv/debian-12', boxVersion: '1' } as unknown as PreparedBuild;
    const text = renderSummary(
      prepared,
      {
        outputs: { box: '/w/debian-12.box', raw: '/w/debian-12.raw' },
        checksums: ['/w/debian-12.box.sha256'],
        rootUuid: 'u',
        virtualBytes: 10 * 1024 ** 3,
        diskFileBytes: 200 * 1024 ** 2,
        boxBytes: 201 * 1024 ** 2,
        rootfsBytes: 1,
        steps: [],
        elapsedMs: 125_000,
      },
      '/w',
    );
    expect(text).toBe(
      [
        'Built debian-12 in 2m 05s:',
        '  debian-12.box  201 MiB (qcow2 disk, 10 GiB virtual; vmenv/debian-12 1)',
        '  debian-12.raw  10 GiB raw, sparse',
        '  debian-12.box.sha256',
        '  recipe hash sha256:ab',
        'Add it to the box store with: vmenv box add debian-12.box',
      ].join('\n'),
    );
  });
});

describe('box cache keys', () => {
  it('do not depend on how the package root is written, and change with the recipe', async () => {
    const { boxCacheKey, packageRoot } = await import('../../../src/build/cache.js');
    const root = packageRoot();
    const boxes = join(root, 'boxes');
    const a = await boxCacheKey(join(boxes, 'debian-12'), join(boxes, 'common'));
    const b = await boxCacheKey(join(boxes, 'debian-12'), join(boxes, 'common'), root.replace(/\/$/, ''));
    expect(b.key).toBe(a.key);
    expect(a.key).toMatch(/^[0-9a-f]{16}$/);
    expect(a.recipeHash).toMatch(/^sha256:/);
    const other = await mkdtemp(join(tmpdir(), 'vmenv-key-test-'));
    try {
      await writeFile(join(other, 'recipe.yaml'), 'name: other\n');
      expect((await boxCacheKey(other, join(boxes, 'common'))).key).not.toBe(a.key);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
