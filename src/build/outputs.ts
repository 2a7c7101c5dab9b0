/**
 * Step 6: what a build writes. `-o FILE` names the .box (default `./<recipe>.box`); the
 * other formats go beside it with their own extension (`debian-12.qcow2`,
 * `debian-12.raw`, `debian-12.tar`), and `--checksum sha256` adds `<file>.sha256`
 * (sha256sum's format) beside each. Every file is written under a temporary name in the
 * same folder and renamed into place only when the whole build has succeeded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ExitCode, UserError } from '../errors.js';
import { run } from './exec.js';
import { OUTPUT_FORMATS, type OutputFormat } from './recipe.js';

export const CHECKSUM_ALGORITHMS = ['sha256', 'sha512'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export type OutputPaths = Partial<Record<OutputFormat, string>>;

const EXTENSIONS: Record<OutputFormat, string> = { box: '.box', qcow2: '.qcow2', raw: '.raw', tar: '.tar' };

/** Where each requested format goes, from the -o path (or ./<name>.box). Pure. */
export function planOutputs(formats: readonly OutputFormat[], name: string, output?: string, cwd = process.cwd()): OutputPaths {
  const boxPath = resolve(cwd, output ?? `${name}.box`);
  const base = boxPath.endsWith('.box') ? boxPath.slice(0, -'.box'.length) : boxPath;
  const out: OutputPaths = {};
  for (const format of OUTPUT_FORMATS) {
    if (!formats.includes(format)) continue;
    out[format] = format === 'box' ? boxPath : `${base}${EXTENSIONS[format]}`;
  }
  return out;
}

/** Merges the recipe's formats with `--format a,b` (which adds). Throws on an unknown name. */
export function mergeFormats(recipeFormats: readonly OutputFormat[], flag?: string): OutputFormat[] {
  const extra = (flag ?? '')
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  const bad = extra.filter((f) => !(OUTPUT_FORMATS as readonly string[]).includes(f));
  if (bad.length > 0) {
    throw new UserError(`Unknown output format${bad.length > 1 ? 's' : ''}: ${bad.join(', ')}.`, {
      exitCode: ExitCode.usage,
      hint: `--format takes a comma-separated list of ${OUTPUT_FORMATS.join(', ')}.`,
    });
  }
  const all = new Set<string>([...recipeFormats, ...extra]);
  return OUTPUT_FORMATS.filter((f) => all.has(f));
}

/** The files a build would write (outputs and their checksum files). Pure. */
export function outputFiles(paths: OutputPaths, checksum?: ChecksumAlgorithm): string[] {
  const files = Object.values(paths);
  return checksum === undefined ? files : files.flatMap((f) => [f, `${f}.${checksum}`]);
}

/** Refuses to overwrite existing outputs unless forced; creates the output folder. */
export async function checkOutputs(files: readonly string[], force: boolean): Promise<void> {
  const existing: string[] = [];
  for (const file of files) {
    try {
      const st = await stat(file);
      if (st.isDirectory()) {
        throw new UserError(`${file} is a folder; the build writes a file there.`, { exitCode: ExitCode.usage, hint: 'Give -o a file name, e.g. -o out/debian-12.box' });
      }
      existing.push(file);
    } catch (err) {
      if (err instanceof UserError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  if (existing.length > 0 && !force) {
    throw new UserError(`${existing.length === 1 ? `${existing[0]} already exists` : `These files already exist: ${existing.join(', ')}`}.`, {
      exitCode: ExitCode.usage,
      hint: 'Use --force to overwrite, or -o to write elsewhere.',
    });
  }
}

/** A temporary name beside a path (same folder, so the final rename is atomic). */
export function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Moves a file into place: a rename on the same file system, else a sparse copy. */
export async function moveFile(from: string, to: string, signal?: AbortSignal): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const tmp = tempBeside(to);
    try {
      await run('cp', ['--sparse=always', '--', from, tmp], { what: `copying ${basename(to)}`, ...(signal ? { signal } : {}) });
      await rename(tmp, to);
    } catch (copyErr) {
      await rm(tmp, { force: true });
      throw copyErr;
    }
    await rm(from, { force: true });
  }
}


export async function hashFile(path: string, algorithm: ChecksumAlgorithm, signal?: AbortSignal): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }), hash, ...(signal ? [{ signal }] : []));
  return hash.digest('hex');
}

/** A checksum file line, as sha256sum writes it. Pure. */
export function checksumLine(hex: string, file: string): string {
  return `${hex}  ${basename(file)}\n`;
}

/** Writes `<file>.<algorithm>` beside a finished file (atomically). */
export async function writeChecksumFile(file: string, algorithm: ChecksumAlgorithm, signal?: AbortSignal): Promise<string> {
  const hex = await hashFile(file, algorithm, signal);
  const target = `${file}.${algorithm}`;
  const tmp = tempBeside(target);
  await writeFile(tmp, checksumLine(hex, file));
  await rename(tmp, target);
  return target;
}

/** The rootfs as a tarball (numeric owners, extended attributes, holes kept). */
export async function writeRootfsTar(rootfs: string, tarPath: string, signal?: AbortSignal): Promise<void> {
  await run(
    'tar',
    ['--create', '--file', tarPath, '--numeric-owner', '--xattrs', '--xattrs-include=*', '--sparse', '--one-file-system', '-C', rootfs, '.'],
    { what: 'writing the rootfs tarball', ...(signal ? { signal } : {}) },
  );
}
