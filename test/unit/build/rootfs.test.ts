import { describe, expect, it } from 'vitest';
import { CUSTOMIZE_MARKER, isMmdebstrapError, mmdebstrapCommand, mmdebstrapDisplay, mmdebstrapHint, mmdebstrapProgress, isMmdebstrapNoise, type RootfsPlan } from '../../../src/build/rootfs.js';

const plan = (over: Partial<RootfsPlan['recipe']> = {}, cache: string | null = '/var/cache/vmenv/apt'): RootfsPlan => ({
  recipe: {
    name: 'debian-12',
    release: 'bookworm',
    variant: 'minbase',
    packages: ['systemd', 'openssh-server'],
    default_user: 'vagrant',
    nocloud: true,
    dir: '/boxes/debian-12',
    customizeHook: '/boxes/debian-12/customize.sh',
    ...over,
  },
  target: '/tmp/w/rootfs',
  mirrors: ['deb http://deb.debian.org/debian bookworm main'],
  ...(cache === null ? {} : { aptCacheDir: cache }),
  commonDir: '/boxes/common',
  buildDir: '/tmp/w',
});

describe('mmdebstrapCommand', () => {
  it('runs in root mode with the variant, the packages, the cache hooks, then the recipe hook', () => {
    const { args, env } = mmdebstrapCommand(plan());
    expect(args.slice(0, 4)).toEqual(['--mode=root', '--variant=minbase', '--aptopt=Acquire::Retries "3"', '--include=systemd,openssh-server']);
    expect(args.slice(-3)).toEqual(['bookworm', '/tmp/w/rootfs', 'deb http://deb.debian.org/debian bookworm main']);
    expect(args).toContain('--skip=essential/unlink');
    const setup = args.filter((a) => a.startsWith('--setup-hook='));
    const customize = args.filter((a) => a.startsWith('--customize-hook='));
    expect(setup.some((a) => a.includes('"$VMENV_APT_CACHE"/*.deb'))).toBe(true);
    expect(customize).toHaveLength(3);
    expect(customize[0]).toContain('ln "$f" "$VMENV_APT_CACHE/$b"'); // save .debs first
    expect(customize[0]).toContain('rm -f "$1"/var/cache/apt/archives/*.deb'); // and keep none in the image
    expect(customize[2]).toBe(`--customize-hook=echo '${CUSTOMIZE_MARKER}' >&2; "$VMENV_CUSTOMIZE_HOOK" "$1"`);
    expect(env).toEqual({
      RECIPE_DIR: '/boxes/debian-12',
      COMMON_DIR: '/boxes/common',
      BUILD_DIR: '/tmp/w',
      VMENV_RECIPE: 'debian-12',
      VMENV_DEFAULT_USER: 'vagrant',
      VMENV_NOCLOUD: '1',
      VMENV_APT_CACHE: '/var/cache/vmenv/apt',
      VMENV_CUSTOMIZE_HOOK: '/boxes/debian-12/customize.sh',
    });
  });

  it('without a cache or a hook, adds neither', () => {
    const { args, env } = mmdebstrapCommand(plan({ customizeHook: undefined, packages: [] }, null));
    expect(args.join(' ')).not.toContain('VMENV_APT_CACHE');
    expect(args).not.toContain('--skip=essential/unlink');
    expect(args.some((a) => a.startsWith('--include'))).toBe(false);
    expect(args.some((a) => a.includes(CUSTOMIZE_MARKER))).toBe(false);
    expect(env['VMENV_CUSTOMIZE_HOOK']).toBeUndefined();
  });

  it('in extract mode (no customize phase) runs the hooks as extract hooks', () => {
    const { args } = mmdebstrapCommand(plan({ variant: 'extract' }));
    expect(args.some((a) => a.startsWith('--customize-hook='))).toBe(false);
    expect(args.filter((a) => a.startsWith('--extract-hook='))).toHaveLength(2);
    expect(args.some((a) => a.includes('force-unsafe-io'))).toBe(false);
  });
});

describe('mmdebstrapProgress', () => {
  it("shows mmdebstrap's phases, not its hook command lines or checks", () => {
    expect(mmdebstrapProgress('I: downloading packages with apt...')).toBe('downloading packages with apt');
    expect(mmdebstrapProgress('I: installing remaining packages inside the chroot...')).toBe('installing remaining packages inside the chroot');
    expect(mmdebstrapProgress("I: running --customize-hook in shell: sh -c 'echo'")).toBeUndefined();
    expect(mmdebstrapProgress('I: chroot architecture amd64 is equal to the host\'s architecture')).toBeUndefined();
    expect(mmdebstrapProgress('Setting up sudo (1.9.13p3-1+deb12u1) ...')).toBeUndefined();
  });
});

describe('mmdebstrap failures', () => {
  it("keeps apt's and mmdebstrap's own E: lines, not the wrap-up ones", () => {
    expect(isMmdebstrapError('E: Unable to locate package nope')).toBe(true);
    expect(isMmdebstrapError('E: mmdebstrap failed to run')).toBe(false);
    expect(isMmdebstrapError('E: setup failed: E: apt-get -o Dir::Bin::dpkg=env … failed')).toBe(false);
    expect(isMmdebstrapError('I: downloading packages with apt...')).toBe(false);
  });

  it('turns the usual failures into hints', () => {
    expect(mmdebstrapHint(['E: Unable to locate package no-such-thing', 'E: Unable to locate package no-such-thing'], 'bookworm')).toBe(
      "Debian bookworm has no package 'no-such-thing': check packages: in the recipe (https://packages.debian.org/bookworm/ lists them).",
    );
    expect(mmdebstrapHint(['E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease'], 'bookworm')).toMatch(/mirror could not be reached/);
    expect(mmdebstrapHint(['E: Unable to correct problems, you have held broken packages.'], 'bookworm')).toMatch(/could not resolve/);
    expect(mmdebstrapHint(['I: all good'], 'bookworm')).toBeUndefined();
  });

  it('names the command shortly', () => {
    expect(mmdebstrapDisplay({ release: 'bookworm', variant: 'minbase', packages: ['a', 'b'] })).toBe('mmdebstrap --variant=minbase --include=<2 packages> bookworm …');
  });
});

describe('hook command lines', () => {
  it('are one line each, so the log and error messages stay readable', () => {
    for (const arg of mmdebstrapCommand(plan()).args) expect(arg).not.toContain('\n');
    expect(isMmdebstrapNoise("I: running --setup-hook in shell: sh -c 'mkdir -p' exec /r")).toBe(true);
    expect(isMmdebstrapNoise('E: Unable to locate package x')).toBe(false);
  });
});
