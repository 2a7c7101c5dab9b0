/**
 * Step 1 and 2: the root filesystem, as a directory, by mmdebstrap in root mode — the
 * recipe's variant and packages from the host's Debian mirror — then the recipe's
 * customize hook, run by mmdebstrap as a customize hook (so that /proc, /sys and /dev
 * are mounted in the chroot while it runs, and unmounted by mmdebstrap afterwards).
 *
 * Package cache: downloaded .debs are kept in a cache directory between builds, the way
 * mmdebstrap's manual shows ("sync-in and sync-out special hooks … with
 * /var/cache/apt/archives", with --skip=essential/unlink): a setup hook links the cached
 * .debs into the chroot's apt archive before apt runs, and a customize hook links the
 * ones this build used back into the cache (hard links when on the same file system,
 * else copies), drops older versions of the same packages from the cache, and removes
 * them from the chroot (mmdebstrap's own cleanup keeps .debs it did not download).
 */
import type { Recipe } from './recipe.js';

/** What the mmdebstrap run prints when it moves from installing packages to the recipe's hook. */
export const CUSTOMIZE_MARKER = 'vmenv-build: running the customize hook';

export interface RootfsPlan {
  recipe: Pick<Recipe, 'name' | 'release' | 'variant' | 'packages' | 'default_user' | 'nocloud' | 'dir' | 'customizeHook'>;
  /** The directory mmdebstrap fills (must not exist or be empty). */
  target: string;
  /** `deb URI SUITE COMPONENTS` lines. */
  mirrors: string[];
  /** Where .debs are cached between builds; undefined: no cache. */
  aptCacheDir?: string;
  /** boxes/common, for the hook's COMMON_DIR. */
  commonDir: string;
  /** The build's temporary directory, for the hook's BUILD_DIR. */
  buildDir: string;
}

/** Shell run by mmdebstrap before apt: cached .debs into the chroot's archive. One line, as mmdebstrap logs it. */
const CACHE_LOAD =
  'mkdir -p "$1/var/cache/apt/archives/partial" && for f in "$VMENV_APT_CACHE"/*.deb; do [ -f "$f" ] || continue; ' +
  'ln -f "$f" "$1/var/cache/apt/archives/" 2>/dev/null || cp -p "$f" "$1/var/cache/apt/archives/"; done; true';

/**
 * Shell run by mmdebstrap after the packages are in: new .debs into the cache (older
 * versions of the same package and architecture out), then none left in the image
 * (mmdebstrap's own cleanup keeps .debs that were in the archive before it ran: ours).
 */
const CACHE_SAVE =
  'mkdir -p "$VMENV_APT_CACHE" && for f in "$1"/var/cache/apt/archives/*.deb; do [ -f "$f" ] || continue; b=${f##*/}; ' +
  'for old in "$VMENV_APT_CACHE/${b%%_*}"_*.deb; do [ -f "$old" ] && [ "${old##*/}" != "$b" ] && [ "${old##*_}" = "${b##*_}" ] && rm -f "$old"; done; ' +
  '[ -f "$VMENV_APT_CACHE/$b" ] && continue; ' +
  'ln "$f" "$VMENV_APT_CACHE/$b" 2>/dev/null || { cp -p "$f" "$VMENV_APT_CACHE/.$b.tmp" && mv -f "$VMENV_APT_CACHE/.$b.tmp" "$VMENV_APT_CACHE/$b"; }; done; ' +
  'rm -f "$1"/var/cache/apt/archives/*.deb; true';

/** dpkg without fsync while the rootfs is built (it is copied into an image afterwards anyway); removed before the hook. */
const UNSAFE_IO_ON = 'mkdir -p "$1/etc/dpkg/dpkg.cfg.d" && echo force-unsafe-io > "$1/etc/dpkg/dpkg.cfg.d/00vmenv-build-unsafe-io"';
const UNSAFE_IO_OFF = 'rm -f "$1/etc/dpkg/dpkg.cfg.d/00vmenv-build-unsafe-io"';

/** Runs the recipe's hook as `<hook> <rootdir>`, after printing the marker. */
const RUN_HOOK = `echo '${CUSTOMIZE_MARKER}' >&2; "$VMENV_CUSTOMIZE_HOOK" "$1"`;

export interface MmdebstrapCommand {
  args: string[];
  /** Extra environment for mmdebstrap (its hooks see it). */
  env: Record<string, string>;
}

/** The mmdebstrap command line for a plan. Pure. */
export function mmdebstrapCommand(plan: RootfsPlan): MmdebstrapCommand {
  const { recipe } = plan;
  // In extract mode mmdebstrap runs no customize hooks: the same hooks run as extract hooks.
  const after = recipe.variant === 'extract' ? '--extract-hook' : '--customize-hook';
  const args = ['--mode=root', `--variant=${recipe.variant}`, '--aptopt=Acquire::Retries "3"'];
  if (recipe.packages.length > 0) args.push(`--include=${recipe.packages.join(',')}`);
  if (recipe.variant !== 'extract') args.push(`--setup-hook=${UNSAFE_IO_ON}`);
  if (plan.aptCacheDir !== undefined) {
    args.push('--skip=essential/unlink', `--setup-hook=${CACHE_LOAD}`, `${after}=${CACHE_SAVE}`);
  }
  if (recipe.variant !== 'extract') args.push(`--customize-hook=${UNSAFE_IO_OFF}`);
  if (recipe.customizeHook !== undefined) args.push(`${after}=${RUN_HOOK}`);
  args.push(recipe.release, plan.target, ...plan.mirrors);

  const env: Record<string, string> = {
    RECIPE_DIR: recipe.dir,
    COMMON_DIR: plan.commonDir,
    BUILD_DIR: plan.buildDir,
    VMENV_RECIPE: recipe.name,
    VMENV_DEFAULT_USER: recipe.default_user,
    VMENV_NOCLOUD: recipe.nocloud ? '1' : '0',
  };
  if (plan.aptCacheDir !== undefined) env['VMENV_APT_CACHE'] = plan.aptCacheDir;
  if (recipe.customizeHook !== undefined) env['VMENV_CUSTOMIZE_HOOK'] = recipe.customizeHook;
  return { args, env };
}

/** A progress line for one line of mmdebstrap's output, or undefined to show nothing new. */
export function mmdebstrapProgress(line: string): string | undefined {
  const m = /^I: (.*?)(?:\.\.\.)?$/.exec(line.trim());
  if (m === null) return undefined;
  const text = m[1]!;
  if (/^running --(setup|customize|extract|essential)-hook/.test(text)) return undefined;
  if (/^(chroot architecture|finding correct signed-by|automatically chosen format|skipping )/.test(text)) return undefined;
  return text;
}

/** Lines of mmdebstrap's output that say nothing about a failure (the hooks' command lines). */
export function isMmdebstrapNoise(line: string): boolean {
  return /^I: running --[a-z]+-hook in shell: /.test(line);
}

/** mmdebstrap's own errors and apt's (`E: …`). */
export function isMmdebstrapError(line: string): boolean {
  return /^E: /.test(line.trim()) && !/^E: (mmdebstrap failed to run|setup failed: E: apt-get )/.test(line.trim());
}

/** What to tell the user about a failed mmdebstrap run, from its output. Pure. */
export function mmdebstrapHint(output: readonly string[], release: string): string | undefined {
  const text = output.join('\n');
  const missing = [...text.matchAll(/Unable to locate package (\S+)/g)].map((m) => m[1]!);
  if (missing.length > 0) {
    return `Debian ${release} has no package ${[...new Set(missing)].map((p) => `'${p}'`).join(', ')}: check packages: in the recipe (https://packages.debian.org/${release}/ lists them).`;
  }
  if (/has no installation candidate|Unable to correct problems|unmet dependencies/i.test(text)) {
    return 'apt could not resolve the package list: check packages: in the recipe (a package may need another variant or release).';
  }
  if (/(Temporary failure resolving|Could not resolve|Failed to fetch|Connection failed|Unable to connect)/.test(text)) {
    return "The Debian mirror could not be reached: check this host's network, its apt sources, or give --mirror.";
  }
  if (/customize-hook|extract-hook/.test(text) && /failed/.test(text)) {
    return "The recipe's customize hook failed: its output is above.";
  }
  return undefined;
}

/** A short name for the mmdebstrap command in messages. Pure. */
export function mmdebstrapDisplay(recipe: Pick<Recipe, 'release' | 'variant' | 'packages'>): string {
  return `mmdebstrap --variant=${recipe.variant}${recipe.packages.length > 0 ? ` --include=<${recipe.packages.length} packages>` : ''} ${recipe.release} …`;
}
