/**
 * `vmenv box build`: the pipeline, as listr2 tasks with elapsed times.
 *
 *   1. packages    mmdebstrap (root mode) into <work>/rootfs           rootfs.ts
 *   2. customize   the recipe's hook, run by mmdebstrap                rootfs.ts
 *   3. filesystem  fstab, extlinux.conf, mkfs.ext4 -d → root.ext4,     filesystem.ts
 *                  grown offline to fill the partition
 *   4. bootloader  extlinux --install (loop mount of root.ext4)        extlinux.ts
 *   5. disk        sfdisk + mbr.bin + dd → disk.raw → qcow2           partition.ts, disk.ts
 *   6. outputs     .box (writeBoxArchive), qcow2/raw/tar, checksums    outputs.ts
 *
 * The steps run in vmenv's step runner (pipeline/), as `up`'s do.
 *
 * The work directory is removed at the end whatever happened (Ctrl-C included), once
 * nothing is mounted in it; outputs appear only when every step succeeded.
 */
import { copyFile, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { writeBoxArchive } from '../box/format.js';
import type { BoxMetadata } from '../box/metadata.js';
import { UserError } from '../errors.js';
import { runPipeline, type Step, type StepReporter } from '../pipeline/run.js';
import { assembleRawDisk, convertToQcow2, type Qcow2Compression } from './disk.js';
import { checkBootFiles, findMbrBin, installExtlinux, writeExtlinuxConf } from './extlinux.js';
import { growExt4Image, makeExt4Image, newFsUuid, writeFstab, type MadeFilesystem } from './filesystem.js';
import { moveFile, tempBeside, writeChecksumFile, writeRootfsTar, type ChecksumAlgorithm, type OutputPaths } from './outputs.js';
import { diskIdFromUuid, LayoutError, planDisk, type DiskLayout } from './partition.js';
import { buildPath } from './preflight.js';
import type { Recipe } from './recipe.js';
import { CUSTOMIZE_MARKER, isMmdebstrapError, isMmdebstrapNoise, mmdebstrapCommand, mmdebstrapDisplay, mmdebstrapHint, mmdebstrapProgress } from './rootfs.js';
import { formatSize } from './size.js';
import { run } from './exec.js';
import { createWorkDir, removeWorkDir, type WorkDir } from './workdir.js';

export interface BuildOptions {
  recipe: Recipe;
  commonDir: string;
  recipeHash: string;
  outputs: OutputPaths;
  checksum?: ChecksumAlgorithm;
  /** mmdebstrap mirror lines. */
  mirrors: string[];
  aptCacheDir?: string;
  compression?: Qcow2Compression;
  /** vmenv.name and vmenv.version in the box metadata. */
  boxName: string;
  boxVersion: string;
  signal?: AbortSignal;
  /** 'default' (TTY), 'simple' (logs), 'silent' (tests). */
  renderer?: 'default' | 'simple' | 'silent';
  /** Where the work directory goes (default: $TMPDIR). */
  tmpBase?: string;
}

export interface StepTime {
  title: string;
  ms: number;
}

export interface BuildResult {
  outputs: OutputPaths;
  checksums: string[];
  rootUuid: string;
  virtualBytes: number;
  /** Size of the compressed qcow2 disk. */
  diskFileBytes: number;
  boxBytes?: number;
  rootfsBytes: number;
  steps: StepTime[];
  elapsedMs: number;
}

interface Ctx {
  work: WorkDir;
  uuid: string;
  mmdebstrap?: Promise<void>;
  customizeStarted?: Promise<void>;
  fs?: MadeFilesystem;
  layout?: DiskLayout;
  temps: string[];
  checksums: string[];
  boxBytes?: number;
  diskFileBytes?: number;
}

function signalOpt(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal === undefined ? {} : { signal };
}

export async function buildBox(options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const { recipe } = options;
  // Aborted by the caller (Ctrl-C, timeout) or when a step fails: stops whatever still runs.
  const internal = new AbortController();
  const signal = options.signal === undefined ? internal.signal : AbortSignal.any([options.signal, internal.signal]);
  const steps: StepTime[] = [];
  const work = await createWorkDir(recipe.name, options.tmpBase);
  const ctx: Ctx = { work, uuid: newFsUuid(), temps: [], checksums: [] };
  const env = { ...process.env, PATH: buildPath(), LC_ALL: 'C.UTF-8' };

  const timed = (title: string, run: (c: Ctx, report: StepReporter) => Promise<void>): Step<Ctx> => ({
    title,
    run: (c, _signal, report) => run(c, report),
  });

  const hookName = recipe.hooks.customize;
  const tasks: Step<Ctx>[] = [
    timed(`Install packages (mmdebstrap: debian ${recipe.release}, ${recipe.variant}, ${recipe.packages.length} packages)`, async (c, report) => {
      const cmd = mmdebstrapCommand({
        recipe,
        target: c.work.rootfs,
        mirrors: options.mirrors,
        commonDir: options.commonDir,
        buildDir: c.work.path,
        ...(options.aptCacheDir === undefined ? {} : { aptCacheDir: options.aptCacheDir }),
      });
      if (options.aptCacheDir !== undefined) await mkdir(options.aptCacheDir, { recursive: true });
      let markCustomize: () => void = () => undefined;
      c.customizeStarted = new Promise<void>((r) => (markCustomize = r));
      c.mmdebstrap = run('mmdebstrap', cmd.args, {
        env: { ...env, ...cmd.env },
        what: hookName === undefined ? 'installing packages' : `installing packages or running ${hookName}`,
        tailLines: 20,
        display: mmdebstrapDisplay(recipe),
        isErrorLine: isMmdebstrapError,
        isNoise: isMmdebstrapNoise,
        hintFor: (output) => mmdebstrapHint(output, recipe.release),
        onLine: (line) => {
          if (line.includes(CUSTOMIZE_MARKER)) markCustomize();
          else {
            const progress = mmdebstrapProgress(line);
            if (progress !== undefined) report.status(progress);
          }
        },
        ...signalOpt(signal),
      }).then(() => undefined);
      c.mmdebstrap.catch(() => undefined);
      await Promise.race([c.customizeStarted, c.mmdebstrap]);
    }),
    {
      ...timed(`Run the customize hook (${hookName ?? 'none'})`, async (c, report) => {
        report.status(`${hookName} ${c.work.rootfs}`);
        await c.mmdebstrap;
      }),
      skip: () => hookName === undefined,
    },
    timed(`Make the root filesystem (${recipe.filesystem}, label root)`, async (c, report) => {
      await c.mmdebstrap; // without a hook, mmdebstrap's cleanup may still be running
      await checkBootFiles(c.work.rootfs, recipe.boot);
      await writeFstab(c.work.rootfs, c.uuid);
      await writeExtlinuxConf(c.work.rootfs, { kernel: recipe.boot.kernel, initrd: recipe.boot.initrd, cmdline: recipe.boot.cmdline, rootUuid: c.uuid });
      c.fs = await makeExt4Image({
        rootfs: c.work.rootfs,
        image: c.work.fsImage,
        uuid: c.uuid,
        onStatus: (text) => report.status(text),
        ...signalOpt(signal),
      });
      try {
        c.layout = planDisk(recipe.diskBytes, c.fs.sizeBytes, diskIdFromUuid(c.uuid));
      } catch (err) {
        if (err instanceof LayoutError) {
          throw new UserError(`The root filesystem needs ${formatSize(c.fs.sizeBytes)} but disk_size is ${recipe.disk_size}.`, {
            hint: `Raise disk_size in ${recipe.file} (to at least ${formatSize(c.fs.sizeBytes + 2 * 1024 * 1024)}).`,
          });
        }
        throw err;
      }
      report.status(`growing it to its ${formatSize(c.layout.partitionBytes)} partition (resize2fs)`);
      await growExt4Image(c.work.fsImage, c.layout.partitionBytes, signal);
      report.title(`Make the root filesystem (${recipe.filesystem}, ${formatSize(c.fs.contentBytes)} of files, ${formatSize(c.layout.partitionBytes)}, UUID ${c.uuid})`);
    }),
    timed('Install the bootloader (extlinux, SeaBIOS → MBR → extlinux → kernel)', async (c) => {
      await installExtlinux(c.work.fsImage, c.work.mnt, signal);
    }),
    timed(`Assemble the disk (MBR, one partition, ${formatSize(recipe.diskBytes)}, compressed qcow2)`, async (c, report) => {
      const layout = c.layout!;
      report.status('partition table and boot code');
      await assembleRawDisk({ rawDisk: c.work.rawDisk, fsImage: c.work.fsImage, layout, mbrBin: await findMbrBin(), ...signalOpt(signal) });
      await rm(c.work.fsImage, { force: true });
      report.status(`qemu-img convert -c (${options.compression ?? 'zlib'})`);
      await convertToQcow2({ rawDisk: c.work.rawDisk, qcow2: c.work.qcow2, ...(options.compression ? { compression: options.compression } : {}), ...signalOpt(signal) });
      c.diskFileBytes = (await stat(c.work.qcow2)).size;
      report.title(`Assemble the disk (${formatSize(layout.diskBytes)} virtual, ${formatSize(c.diskFileBytes)} qcow2)`);
    }),
    timed(`Write ${Object.values(options.outputs).map((p) => basename(p)).join(', ')}`, async (c, report) => {
      const out = options.outputs;
      const finals: [string, string][] = []; // [temp, final]
      const stage = async (final: string, produce: (tmp: string) => Promise<void>): Promise<void> => {
        await mkdir(dirname(final), { recursive: true });
        const tmp = tempBeside(final);
        c.temps.push(tmp);
        await produce(tmp);
        finals.push([tmp, final]);
      };
      if (out.tar !== undefined) {
        report.status(`rootfs tarball ${basename(out.tar)}`);
        await stage(out.tar, (tmp) => writeRootfsTar(c.work.rootfs, tmp, signal));
      }
      if (out.raw !== undefined) {
        report.status(`raw disk ${basename(out.raw)}`);
        await stage(out.raw, (tmp) => moveFile(c.work.rawDisk, tmp, signal));
      }
      if (out.qcow2 !== undefined) {
        report.status(`qcow2 disk ${basename(out.qcow2)}`);
        await stage(out.qcow2, (tmp) => copyFile(c.work.qcow2, tmp));
      }
      if (out.box !== undefined) {
        const total = c.diskFileBytes ?? 0;
        const metadata: BoxMetadata = {
          provider: 'libvirt',
          vmenv: {
            name: options.boxName,
            version: options.boxVersion,
            default_user: recipe.default_user,
            nocloud: recipe.nocloud,
            recipe: recipe.name,
            recipe_hash: options.recipeHash,
            built_at: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
            description: recipe.description.trim(),
            distribution: `${recipe.distribution} ${recipe.release}`,
            root_fs_uuid: c.uuid,
          },
        };
        // vagrant-libvirt's boxes carry a Vagrantfile with the provider's defaults for them.
        const vagrantfile = recipe.vagrantfile === undefined ? undefined : await readFile(recipe.vagrantfile, 'utf8');
        await mkdir(dirname(out.box), { recursive: true });
        let last = 0;
        await writeBoxArchive(
          out.box,
          { metadata, disks: [{ path: c.work.qcow2 }], ...(vagrantfile === undefined ? {} : { vagrantfile }) },
          {
            gzip: false,
            ...signalOpt(signal),
            onProgress: (bytes) => {
              // A tenth at a time is plenty, even for a live display.
              if (bytes - last < Math.max(total / 10, 16 * 1024 * 1024) && bytes < total) return;
              last = bytes;
              report.status(`${basename(out.box!)}: ${formatSize(bytes)} of ${formatSize(total)}`);
            },
          },
        );
        c.boxBytes = (await stat(out.box)).size;
      }
      for (const [tmp, final] of finals) {
        await moveFile(tmp, final);
        c.temps = c.temps.filter((t) => t !== tmp);
      }
      if (options.checksum !== undefined) {
        for (const file of Object.values(out)) {
          report.status(`${options.checksum} of ${basename(file)}`);
          c.checksums.push(await writeChecksumFile(file, options.checksum, signal));
        }
      }
    }),
  ];

  let failure: unknown;
  try {
    await runPipeline(tasks, ctx, {
      renderer: options.renderer ?? (process.stdout.isTTY === true ? 'default' : 'simple'),
      signal,
      rollbackOnError: false,
      showErrors: false,
      onStepEnd: (title, ms) => steps.push({ title, ms }),
    });
  } catch (err) {
    failure = err;
    if (!signal.aborted) internal.abort(err);
  } finally {
    // A task that failed early leaves mmdebstrap running: stop waiting only when it has exited.
    if (ctx.mmdebstrap !== undefined) await ctx.mmdebstrap.catch(() => undefined);
    for (const tmp of ctx.temps) await rm(tmp, { force: true }).catch(() => undefined);
    await removeWorkDir(work.path).catch((err: unknown) => {
      failure ??= err;
    });
  }
  if (failure !== undefined) {
    if (options.signal?.aborted === true) throw options.signal.reason;
    throw failure;
  }
  return {
    outputs: options.outputs,
    checksums: ctx.checksums,
    rootUuid: ctx.uuid,
    virtualBytes: ctx.layout!.diskBytes,
    diskFileBytes: ctx.diskFileBytes ?? 0,
    ...(ctx.boxBytes === undefined ? {} : { boxBytes: ctx.boxBytes }),
    rootfsBytes: ctx.fs?.contentBytes ?? 0,
    steps,
    elapsedMs: Date.now() - started,
  };
}
