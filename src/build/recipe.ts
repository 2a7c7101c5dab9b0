/**
 * Box recipes: `boxes/<name>/recipe.yaml` (the format is documented in boxes/README.md).
 *
 * parse → fill defaults → validate, as vmenv.yaml is read: every problem is reported at
 * once, each with its field path (`packages[2]`, `boot.cmdline`) and line, and unknown
 * keys come with a did-you-mean hint. parseRecipeText is pure; loadRecipe adds the
 * checks that need the recipe folder (the hook script exists and is executable).
 */
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { ExitCode, UserError } from '../errors.js';
import { MiB, parseSize, TiB } from './size.js';
import { didYouMean } from './suggest.js';

export const RECIPE_FILE = 'recipe.yaml';

/** mmdebstrap's variants (`--variant`). */
export const VARIANTS = [
  'extract',
  'custom',
  'essential',
  'apt',
  'required',
  'minbase',
  'buildd',
  'important',
  'debootstrap',
  'standard',
] as const;
export type Variant = (typeof VARIANTS)[number];

/** What a build can write: the .box, the disk as qcow2 or raw, the root filesystem as a tarball. */
export const OUTPUT_FORMATS = ['box', 'qcow2', 'raw', 'tar'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const FILESYSTEMS = ['ext4'] as const;
export type Filesystem = (typeof FILESYSTEMS)[number];

export const DISTRIBUTIONS = ['debian'] as const;
export type Distribution = (typeof DISTRIBUTIONS)[number];

/** A recipe as written in recipe.yaml, with defaults filled in. */
export interface RecipeSpec {
  name: string;
  description: string;
  distribution: Distribution;
  release: string;
  variant: Variant;
  packages: string[];
  /** The box's virtual disk size as written (e.g. "10G"). */
  disk_size: string;
  filesystem: Filesystem;
  formats: OutputFormat[];
  default_user: string;
  nocloud: boolean;
  hooks: { customize?: string };
  boot: { kernel: string; initrd: string; cmdline: string };
}

/** A loaded recipe: the spec and where it lives. */
export interface Recipe extends RecipeSpec {
  /** Absolute path of the recipe folder. */
  dir: string;
  /** Absolute path of its recipe.yaml. */
  file: string;
  /** disk_size in bytes, rounded up to whole MiB. */
  diskBytes: number;
  /** Absolute path of the customize hook, when there is one. */
  customizeHook?: string;
  /** Absolute path of the recipe's `Vagrantfile`, shipped in the .box, when it has one. */
  vagrantfile?: string;
}

/** The file of a recipe folder that the build puts into the .box as its Vagrantfile. */
export const RECIPE_VAGRANTFILE = 'Vagrantfile';

export interface RecipeProblem {
  /** Field path, e.g. `packages[2]`, `boot.cmdline`; empty for the whole file. */
  path: string;
  message: string;
  /** 1-based line in recipe.yaml, when known. */
  line?: number;
  /** A suggestion, e.g. "did you mean 'packages'?". */
  hint?: string;
}

export const RECIPE_DEFAULTS: Omit<RecipeSpec, 'name'> = {
  description: '',
  distribution: 'debian',
  release: 'bookworm',
  variant: 'minbase',
  packages: [],
  disk_size: '2G',
  filesystem: 'ext4',
  formats: ['box'],
  default_user: 'vagrant',
  nocloud: true,
  hooks: {},
  boot: { kernel: 'boot/vmlinuz', initrd: 'boot/initrd.img', cmdline: 'console=ttyS0' },
};

const TOP_KEYS = [
  'name',
  'description',
  'distribution',
  'release',
  'variant',
  'packages',
  'disk_size',
  'filesystem',
  'formats',
  'default_user',
  'nocloud',
  'hooks',
  'boot',
] as const;
const HOOK_KEYS = ['customize'] as const;
const BOOT_KEYS = ['kernel', 'initrd', 'cmdline'] as const;

/** Smallest and largest disk: room for a kernel, and the most an MBR partition table can address. */
export const MIN_DISK_BYTES = 64 * MiB;
export const MAX_DISK_BYTES = 2 * TiB - MiB;

const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
const RELEASE_RE = /^[a-z][a-z0-9-]*$/;
/** A Debian package name, optionally with an architecture, a version or a release. */
const PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+~:-]+|\/[a-z0-9-]+)?$/;
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

function quote(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : JSON.stringify(value);
}

function oneOf(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(', ');
}

type Path = (string | number)[];

function pathText(path: Path): string {
  let text = '';
  for (const seg of path) text += typeof seg === 'number' ? `[${seg}]` : text === '' ? seg : `.${seg}`;
  return text;
}

/** Finds the YAML node at a path, and for map keys the key node (for "unknown key" lines). */
function nodeAt(root: unknown, path: Path, wantKey: boolean): Node | undefined {
  let node: unknown = root;
  for (const [i, seg] of path.entries()) {
    const last = i === path.length - 1;
    if (isMap(node) && typeof seg === 'string') {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
      if (pair === undefined) return undefined;
      if (last && wantKey) return pair.key as Node;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else {
      return undefined;
    }
  }
  return (node ?? undefined) as Node | undefined;
}

export interface ParseRecipeResult {
  /** The recipe with defaults, when there were no problems. */
  spec?: RecipeSpec;
  problems: RecipeProblem[];
}

/**
 * Parses recipe.yaml text. Pure: `folderName` is the recipe folder's name (the default
 * `name`). Returns the spec with defaults, or every problem found.
 */
export function parseRecipeText(text: string, folderName: string): ParseRecipeResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problems: RecipeProblem[] = [];
  const lineOf = (path: Path, wantKey = false): number | undefined => {
    const node = nodeAt(doc.contents, path, wantKey);
    const offset = node?.range?.[0];
    return offset === undefined ? undefined : lines.linePos(offset).line;
  };
  const problem = (path: Path, message: string, hint?: string, wantKey = false): void => {
    const p: RecipeProblem = { path: pathText(path), message };
    const line = lineOf(path, wantKey);
    if (line !== undefined) p.line = line;
    if (hint !== undefined) p.hint = hint;
    problems.push(p);
  };

  for (const err of doc.errors) {
    const p: RecipeProblem = { path: '', message: `YAML: ${err.message.split('\n')[0]}` };
    const offset = err.pos?.[0];
    if (offset !== undefined) p.line = lines.linePos(offset).line;
    problems.push(p);
  }
  if (problems.length > 0) return { problems };

  const raw: unknown = doc.toJS();
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    problems.push({ path: '', message: 'a recipe is a mapping of keys (name:, packages:, …)', line: 1 });
    return { problems };
  }
  const top = (raw ?? {}) as Record<string, unknown>;

  const unknownKeys = (obj: Record<string, unknown>, known: readonly string[], prefix: Path): void => {
    for (const key of Object.keys(obj)) {
      if (known.includes(key)) continue;
      const guess = didYouMean(key, known);
      problem([...prefix, key], `unknown key '${key}'`, guess === undefined ? `known keys: ${known.join(', ')}` : `did you mean '${guess}'?`, true);
    }
  };
  unknownKeys(top, TOP_KEYS, []);

  const str = (path: Path, value: unknown, fallback: string): string => {
    if (value === undefined || value === null) return fallback;
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') {
      problem(path, `must be a string, not ${quote(value)}`, `quote it: '${String(value)}'`);
      return String(value);
    }
    problem(path, `must be a string, not a ${Array.isArray(value) ? 'list' : 'mapping'}`);
    return fallback;
  };
  const list = (path: Path, value: unknown, fallback: string[]): string[] => {
    if (value === undefined || value === null) return fallback;
    if (typeof value === 'string') {
      // `packages: a, b` is a common slip: accept nothing, say how to write a list.
      problem(path, 'must be a list', `write it as [${value.split(/[\s,]+/).filter(Boolean).join(', ')}] or one '- item' per line`);
      return fallback;
    }
    if (!Array.isArray(value)) {
      problem(path, `must be a list, not ${typeof value === 'object' ? 'a mapping' : quote(value)}`);
      return fallback;
    }
    const out: string[] = [];
    for (const [i, item] of value.entries()) {
      if (typeof item === 'string') out.push(item);
      else problem([...path, i], `must be a string, not ${typeof item === 'object' && item !== null ? (Array.isArray(item) ? 'a list' : 'a mapping') : quote(item)}`);
    }
    return out;
  };
  const section = (key: 'hooks' | 'boot', known: readonly string[]): Record<string, unknown> => {
    const value = top[key];
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      problem([key], `must be a mapping (${known.map((k) => `${k}:`).join(', ')})`);
      return {};
    }
    unknownKeys(value as Record<string, unknown>, known, [key]);
    return value as Record<string, unknown>;
  };

  // name
  const name = str(['name'], top['name'], folderName);
  if (!NAME_RE.test(name)) problem(['name'], `${quote(name)} is not a valid recipe name (lowercase letters, digits, '.', '_', '-')`);

  const description = str(['description'], top['description'], RECIPE_DEFAULTS.description);

  const distribution = str(['distribution'], top['distribution'], RECIPE_DEFAULTS.distribution);
  if (!(DISTRIBUTIONS as readonly string[]).includes(distribution)) {
    const guess = didYouMean(distribution, DISTRIBUTIONS);
    problem(['distribution'], `${quote(distribution)} is not supported; supported: ${oneOf(DISTRIBUTIONS)}`, guess ? `did you mean '${guess}'?` : undefined);
  }

  const release = str(['release'], top['release'], RECIPE_DEFAULTS.release);
  if (!RELEASE_RE.test(release)) problem(['release'], `${quote(release)} is not a release name (e.g. 'bookworm')`);

  const variant = str(['variant'], top['variant'], RECIPE_DEFAULTS.variant);
  if (!(VARIANTS as readonly string[]).includes(variant)) {
    const guess = didYouMean(variant, VARIANTS);
    problem(['variant'], `${quote(variant)} is not an mmdebstrap variant; one of ${oneOf(VARIANTS)}`, guess ? `did you mean '${guess}'?` : undefined);
  }

  const packages = list(['packages'], top['packages'], RECIPE_DEFAULTS.packages);
  const seenPackages = new Map<string, number>();
  for (const [i, pkg] of packages.entries()) {
    if (!PACKAGE_RE.test(pkg)) {
      problem(['packages', i], `${quote(pkg)} is not a Debian package name (lowercase letters, digits, '+', '-', '.')`);
      continue;
    }
    const first = seenPackages.get(pkg);
    if (first !== undefined) problem(['packages', i], `${quote(pkg)} is listed twice (also packages[${first}])`);
    else seenPackages.set(pkg, i);
  }

  let diskSize = RECIPE_DEFAULTS.disk_size;
  const rawDisk = top['disk_size'];
  if (rawDisk !== undefined && rawDisk !== null) {
    if (typeof rawDisk === 'string' || typeof rawDisk === 'number') {
      diskSize = String(rawDisk);
      const bytes = parseSize(rawDisk);
      if (bytes === undefined) problem(['disk_size'], `${quote(rawDisk)} is not a size`, "write it as e.g. '1G', '512M' or '10GiB'");
      else if (bytes < MIN_DISK_BYTES) problem(['disk_size'], `${quote(rawDisk)} is too small; at least 64M`);
      else if (bytes > MAX_DISK_BYTES) problem(['disk_size'], `${quote(rawDisk)} is too large; an MBR disk holds at most 2T`);
    } else {
      problem(['disk_size'], `must be a size such as '1G', not ${Array.isArray(rawDisk) ? 'a list' : typeof rawDisk === 'object' ? 'a mapping' : quote(rawDisk)}`);
    }
  }

  const filesystem = str(['filesystem'], top['filesystem'], RECIPE_DEFAULTS.filesystem);
  if (!(FILESYSTEMS as readonly string[]).includes(filesystem)) {
    problem(['filesystem'], `${quote(filesystem)} is not supported; supported: ${oneOf(FILESYSTEMS)}`);
  }

  const formats = list(['formats'], top['formats'], RECIPE_DEFAULTS.formats);
  if (Array.isArray(top['formats']) && formats.length === 0 && (top['formats'] as unknown[]).length === 0) {
    problem(['formats'], 'must name at least one output', `e.g. [box]; one or more of ${oneOf(OUTPUT_FORMATS)}`);
  }
  const seenFormats = new Set<string>();
  for (const [i, format] of formats.entries()) {
    if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
      const guess = didYouMean(format, OUTPUT_FORMATS);
      problem(['formats', i], `${quote(format)} is not an output format; one of ${oneOf(OUTPUT_FORMATS)}`, guess ? `did you mean '${guess}'?` : undefined);
    } else if (seenFormats.has(format)) {
      problem(['formats', i], `${quote(format)} is listed twice`);
    }
    seenFormats.add(format);
  }

  const defaultUser = str(['default_user'], top['default_user'], RECIPE_DEFAULTS.default_user);
  if (!USER_RE.test(defaultUser)) problem(['default_user'], `${quote(defaultUser)} is not a valid user name`);

  let nocloud = RECIPE_DEFAULTS.nocloud;
  const rawNocloud = top['nocloud'];
  if (rawNocloud !== undefined && rawNocloud !== null) {
    if (typeof rawNocloud === 'boolean') nocloud = rawNocloud;
    else problem(['nocloud'], `must be true or false, not ${quote(rawNocloud)}`);
  }

  const hooksRaw = section('hooks', HOOK_KEYS);
  const hooks: RecipeSpec['hooks'] = {};
  if (hooksRaw['customize'] !== undefined && hooksRaw['customize'] !== null) {
    const hook = str(['hooks', 'customize'], hooksRaw['customize'], '');
    const problemText = relativePathProblem(hook, 'the recipe folder');
    if (problemText !== undefined) problem(['hooks', 'customize'], problemText);
    else hooks.customize = normalize(hook);
  }

  const bootRaw = section('boot', BOOT_KEYS);
  const boot = {
    kernel: str(['boot', 'kernel'], bootRaw['kernel'], RECIPE_DEFAULTS.boot.kernel),
    initrd: str(['boot', 'initrd'], bootRaw['initrd'], RECIPE_DEFAULTS.boot.initrd),
    cmdline: str(['boot', 'cmdline'], bootRaw['cmdline'], RECIPE_DEFAULTS.boot.cmdline),
  };
  for (const key of ['kernel', 'initrd'] as const) {
    const text = rootfsPathProblem(boot[key]);
    if (text !== undefined) problem(['boot', key], text);
    else boot[key] = normalize(boot[key].replace(/^\/+/, ''));
  }
  if (/[\r\n]/.test(boot.cmdline)) problem(['boot', 'cmdline'], 'must be one line');
  const owned = boot.cmdline.split(/\s+/).filter((arg) => /^(root|rootfstype|initrd|BOOT_IMAGE)=/.test(arg));
  for (const arg of owned) {
    problem(['boot', 'cmdline'], `'${arg}' is set by the build (root=UUID=… of the box's root filesystem)`, `remove '${arg}'`);
  }

  if (problems.length > 0) return { problems: sortProblems(problems) };
  return {
    spec: {
      name,
      description,
      distribution: distribution as Distribution,
      release,
      variant: variant as Variant,
      packages,
      disk_size: diskSize,
      filesystem: filesystem as Filesystem,
      formats: formats as OutputFormat[],
      default_user: defaultUser,
      nocloud,
      hooks,
      boot,
    },
    problems: [],
  };
}

function sortProblems(problems: RecipeProblem[]): RecipeProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

/** Why a hook path is not a plain relative path inside the recipe folder, if it is not. */
function relativePathProblem(path: string, where: string): string | undefined {
  if (path.trim() === '') return 'must name a file';
  if (isAbsolute(path)) return `must be a path relative to ${where}, not ${quote(path)}`;
  if (normalize(path).split('/').includes('..')) return `must stay inside ${where} (no '..')`;
  return undefined;
}

/** Why a boot path cannot be a path inside the root filesystem, if it cannot. */
function rootfsPathProblem(path: string): string | undefined {
  if (path.trim() === '') return 'must name a file inside the root filesystem';
  if (/\s/.test(path)) return `${quote(path)} contains whitespace, which extlinux.conf cannot hold`;
  if (normalize(path).split('/').includes('..')) return `must stay inside the root filesystem (no '..')`;
  const clean = normalize(path.replace(/^\/+/, ''));
  if (clean === '.' || clean === '') return 'must name a file inside the root filesystem';
  return undefined;
}

/** One line per problem: `  - line 3: packages[1]: …  (did you mean …?)`. */
export function formatProblems(problems: readonly RecipeProblem[]): string {
  return problems
    .map((p) => {
      const where = [p.line === undefined ? undefined : `line ${p.line}`, p.path === '' ? undefined : p.path].filter(Boolean).join(', ');
      return `  - ${where === '' ? '' : `${where}: `}${p.message}${p.hint === undefined ? '' : ` (${p.hint})`}`;
    })
    .join('\n');
}

export class RecipeError extends UserError {
  readonly problems: RecipeProblem[];
  readonly file: string;

  constructor(file: string, problems: RecipeProblem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`The recipe ${displayPath(file)} has ${count}:\n${formatProblems(problems)}`, {
      hint: 'boxes/README.md describes the recipe format.',
      exitCode: ExitCode.usage,
    });
    this.name = 'RecipeError';
    this.problems = problems;
    this.file = file;
  }
}

export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** Reads, validates and resolves the recipe in `dir` (a folder holding recipe.yaml). */
export async function loadRecipe(dir: string): Promise<Recipe> {
  const absDir = resolve(dir);
  const file = join(absDir, RECIPE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`${displayPath(absDir)} is not a recipe: ${code === 'ENOENT' ? `it has no ${RECIPE_FILE}` : `cannot read ${RECIPE_FILE} (${code ?? String(err)})`}.`, {
      exitCode: ExitCode.usage,
      hint: 'A recipe is a folder with a recipe.yaml; boxes/README.md describes it.',
    });
  }
  const { spec, problems } = parseRecipeText(text, basename(absDir));
  if (spec === undefined) throw new RecipeError(file, problems);

  // Checks that need the folder.
  const more: RecipeProblem[] = [];
  let customizeHook: string | undefined;
  if (spec.hooks.customize !== undefined) {
    customizeHook = join(absDir, spec.hooks.customize);
    const line = lineOfKey(text, 'customize');
    const at = (message: string, hint?: string): void => {
      more.push({ path: 'hooks.customize', message, ...(line === undefined ? {} : { line }), ...(hint === undefined ? {} : { hint }) });
    };
    try {
      const st = await stat(customizeHook);
      if (!st.isFile()) at(`${spec.hooks.customize} is not a file`);
      else {
        try {
          await access(customizeHook, constants.X_OK);
          if ((st.mode & 0o111) === 0) throw new Error('not executable');
        } catch {
          at(`${spec.hooks.customize} is not executable`, `chmod +x ${displayPath(customizeHook)}`);
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') at(`${spec.hooks.customize} does not exist in ${displayPath(absDir)}`);
      else if (more.length === 0) at(`cannot read ${spec.hooks.customize}: ${(err as Error).message}`);
    }
  }
  let vagrantfile: string | undefined = join(absDir, RECIPE_VAGRANTFILE);
  try {
    if (!(await stat(vagrantfile)).isFile()) more.push({ path: '', message: `${RECIPE_VAGRANTFILE} is not a file (the build ships it in the .box)` });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    vagrantfile = undefined;
  }
  if (more.length > 0) throw new RecipeError(file, more);

  const diskBytes = Math.ceil(parseSize(spec.disk_size)! / MiB) * MiB;
  return {
    ...spec,
    dir: absDir,
    file,
    diskBytes,
    ...(customizeHook === undefined ? {} : { customizeHook }),
    ...(vagrantfile === undefined ? {} : { vagrantfile }),
  };
}

function lineOfKey(text: string, key: string): number | undefined {
  const index = text.split('\n').findIndex((l) => new RegExp(`^\\s*${key}\\s*:`).test(l));
  return index < 0 ? undefined : index + 1;
}
