/**
 * The core behind `vmenv box build`: everything the command does between parsing its
 * flags and printing, so the command stays thin. prepareBuild checks all that can be
 * checked before any work (recipe, root, tools, outputs); runBuild runs the pipeline
 * under the command's AbortSignal and the build timeout.
 */
import { relative } from 'node:path';
import { ExitCode, TimeoutError, UserError } from '../errors.js';
import { mirrorLines, readHostSources } from './apt-sources.js';
import { defaultAptCacheDir } from './cache.js';
import type { Qcow2Compression } from './disk.js';
import { commonDirFor, resolveRecipeDir } from './locate.js';
import { checkOutputs, mergeFormats, outputFiles, planOutputs, type ChecksumAlgorithm, type OutputPaths } from './outputs.js';
import { buildBox, type BuildResult } from './pipeline.js';
import { checkTools, isRoot, needsRootError, requiredTools } from './preflight.js';
import { displayPath, loadRecipe, type Recipe } from './recipe.js';
import { hashRecipe } from './recipe-hash.js';
import { formatSize } from './size.js';

export interface BuildRequest {
  recipe: string;
  /** The command's arguments, to show the sudo command line again. */
  argv: readonly string[];
  output?: string;
  format?: string;
  checksum?: ChecksumAlgorithm;
  force: boolean;
  mirror?: string;
  /** A folder, true for the default folder, false for none. */
  aptCache: string | boolean;
  compression: Qcow2Compression;
  boxName?: string;
  boxVersion?: string;
  /** Skip the root check (tests that only prepare). */
  skipRootCheck?: boolean;
}

export interface PreparedBuild {
  recipe: Recipe;
  recipeDirShown: string;
  commonDir: string;
  recipeHash: string;
  outputs: OutputPaths;
  checksum?: ChecksumAlgorithm;
  mirrors: string[];
  aptCacheDir?: string;
  compression: Qcow2Compression;
  boxName: string;
  boxVersion: string;
}

/** YYYYMMDD.HHMMSS (UTC). Pure. */
export function versionFromDate(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10).replaceAll('-', '')}.${iso.slice(11, 19).replaceAll(':', '')}`;
}

export async function prepareBuild(req: BuildRequest): Promise<PreparedBuild> {
  const dir = await resolveRecipeDir(req.recipe);
  const recipe = await loadRecipe(dir);
  const formats = mergeFormats(recipe.formats, req.format);
  const outputs = planOutputs(formats, recipe.name, req.output);
  if (req.mirror !== undefined && !/^(https?|file):\/\/\S+$/.test(req.mirror)) {
    throw new UserError(`--mirror '${req.mirror}' is not a mirror URL.`, { exitCode: ExitCode.usage, hint: 'e.g. --mirror http://deb.debian.org/debian' });
  }
  if (req.skipRootCheck !== true && !isRoot()) throw needsRootError(['box', 'build', ...req.argv]);
  await checkTools(requiredTools(formats));
  await checkOutputs(outputFiles(outputs, req.checksum), req.force);

  const commonDir = await commonDirFor(dir);
  const recipeHash = await hashRecipe(dir, commonDir);
  const mirrors = mirrorLines(await readHostSources(), recipe.release, req.mirror);
  const aptCacheDir = req.aptCache === false ? undefined : req.aptCache === true ? defaultAptCacheDir() : req.aptCache;
  return {
    recipe,
    recipeDirShown: displayPath(dir),
    commonDir,
    recipeHash,
    outputs,
    ...(req.checksum === undefined ? {} : { checksum: req.checksum }),
    mirrors,
    ...(aptCacheDir === undefined ? {} : { aptCacheDir }),
    compression: req.compression,
    boxName: req.boxName ?? `vmenv/${recipe.name}`,
    boxVersion: req.boxVersion ?? versionFromDate(new Date()),
  };
}

export async function runBuild(
  prepared: PreparedBuild,
  opts: { signal?: AbortSignal; timeoutMs?: number; renderer?: 'default' | 'simple' | 'silent' } = {},
): Promise<BuildResult> {
  const timeout = new AbortController();
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () =>
            timeout.abort(
              new TimeoutError(`the build of ${prepared.recipe.name}`, opts.timeoutMs!, 'Raise --build-timeout, or check the mirror and the network (the build stopped and cleaned up).'),
            ),
          opts.timeoutMs,
        );
  const signal = opts.signal === undefined ? timeout.signal : AbortSignal.any([opts.signal, timeout.signal]);
  try {
    return await buildBox({
      recipe: prepared.recipe,
      commonDir: prepared.commonDir,
      recipeHash: prepared.recipeHash,
      outputs: prepared.outputs,
      ...(prepared.checksum === undefined ? {} : { checksum: prepared.checksum }),
      mirrors: prepared.mirrors,
      ...(prepared.aptCacheDir === undefined ? {} : { aptCacheDir: prepared.aptCacheDir }),
      compression: prepared.compression,
      boxName: prepared.boxName,
      boxVersion: prepared.boxVersion,
      signal,
      ...(opts.renderer === undefined ? {} : { renderer: opts.renderer }),
    });
  } catch (err) {
    if (timeout.signal.aborted && !(opts.signal?.aborted ?? false)) throw timeout.signal.reason;
    throw err;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function seconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** What the command prints when the build is done. Pure. */
export function renderSummary(prepared: PreparedBuild, result: BuildResult, cwd = process.cwd()): string {
  const shown = (p: string): string => {
    const rel = relative(cwd, p);
    return rel.startsWith('..') ? p : rel;
  };
  const lines = [`Built ${prepared.recipe.name} in ${seconds(result.elapsedMs)}:`];
  const out = result.outputs;
  if (out.box !== undefined) {
    lines.push(`  ${shown(out.box)}  ${formatSize(result.boxBytes ?? 0)} (qcow2 disk, ${formatSize(result.virtualBytes)} virtual; ${prepared.boxName} ${prepared.boxVersion})`);
  }
  if (out.qcow2 !== undefined) lines.push(`  ${shown(out.qcow2)}  ${formatSize(result.diskFileBytes)} (${formatSize(result.virtualBytes)} virtual)`);
  if (out.raw !== undefined) lines.push(`  ${shown(out.raw)}  ${formatSize(result.virtualBytes)} raw, sparse`);
  if (out.tar !== undefined) lines.push(`  ${shown(out.tar)}  root filesystem tarball`);
  for (const c of result.checksums) lines.push(`  ${shown(c)}`);
  lines.push(`  recipe hash ${prepared.recipeHash}`);
  if (out.box !== undefined) lines.push(`Add it to the box store with: vmenv box add ${shown(out.box)}`);
  return lines.join('\n');
}
