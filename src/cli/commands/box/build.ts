import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { InterruptedError } from '../../../errors.js';

export default class BoxBuild extends BaseCommand {
  static override summary = 'Build a box from a recipe (boxes/<name>/recipe.yaml).';
  static override description = `Builds a bootable box from Debian packages: mmdebstrap installs the recipe's packages into a root filesystem, the recipe's customize hook runs in it, mkfs.ext4 makes the filesystem image, extlinux makes it bootable from an MBR disk (SeaBIOS boots it by itself: no kernel is handed over by the host), and the disk is written as a compressed qcow2 inside a .box file (vagrant-libvirt's format) with the recipe's hash in its metadata.

RECIPE is a recipe name (a folder of the boxes/ directory shipped with vmenv: tiny, debian-12) or the path of a recipe folder. boxes/README.md describes recipes.

Needs root (mmdebstrap's root mode, and a loop mount to install the bootloader) and the Debian packages mmdebstrap, e2fsprogs, fdisk, extlinux, syslinux-common and qemu-utils. Packages come from the Debian mirror this host's apt uses; downloaded .debs are kept in $VMENV_HOME/cache/apt (or /var/cache/vmenv/apt) so later builds download nothing new. Temporary files are removed whatever happens, Ctrl-C included.`;

  static override examples = [
    { description: 'Build the Debian 12 box into ./debian-12.box.', command: 'sudo <%= config.bin %> <%= command.id %> debian-12' },
    { description: 'Build into a chosen file, with a sha256 file beside it.', command: 'sudo <%= config.bin %> <%= command.id %> debian-12 -o out/debian-12.box --checksum sha256' },
    { description: 'Also write the disk as qcow2 and raw, and the root filesystem as a tarball.', command: 'sudo <%= config.bin %> <%= command.id %> tiny --format qcow2,raw,tar' },
    { description: 'Build from a recipe folder of your own.', command: 'sudo <%= config.bin %> <%= command.id %> ./my-recipe -o my.box' },
  ];

  static override args = {
    recipe: Args.string({ ignoreStdin: true, description: 'Recipe name (a folder in boxes/) or path to a recipe folder.', required: true }),
  };

  static override flags = {
    output: Flags.string({ char: 'o', description: 'Where to write the .box file (default: ./<recipe>.box). Other formats go beside it.', helpValue: '<file>' }),
    format: Flags.string({
      description: "More outputs besides the recipe's own (formats:), comma-separated: qcow2 (the disk), raw (the disk, sparse), tar (the root filesystem), box.",
      helpValue: '<list>',
    }),
    checksum: Flags.string({ description: 'Write <file>.<algorithm> (sha256sum format) beside each output.', options: ['sha256', 'sha512'] }),
    force: Flags.boolean({ char: 'f', description: 'Overwrite existing output files.' }),
    mirror: Flags.string({ description: "Debian mirror URL (default: the one in this host's apt sources).", helpValue: '<url>' }),
    'apt-cache': Flags.string({ description: 'Folder that keeps downloaded .debs between builds (default: $VMENV_HOME/cache/apt, else /var/cache/vmenv/apt).', helpValue: '<dir>' }),
    'no-apt-cache': Flags.boolean({ description: 'Keep no .debs: download every package.' }),
    compression: Flags.string({
      description: 'qcow2 compression: zlib (readable by every QEMU) or zstd (faster, smaller; needs QEMU 5.1 or newer to read).',
      options: ['zlib', 'zstd'],
      default: 'zlib',
    }),
    'box-name': Flags.string({ description: "Name recorded in the box (default: vmenv/<recipe>), used by 'box add' when no --name is given.", helpValue: '<name>' }),
    'box-version': Flags.string({ description: 'Version recorded in the box (default: the build time, YYYYMMDD.HHMMSS).', helpValue: '<version>' }),
    'build-timeout': Flags.integer({
      description: 'Seconds the build may take before it is stopped and cleaned up.',
      default: 1800,
      min: 1,
      helpValue: '<seconds>',
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(BoxBuild);
    const { prepareBuild, runBuild, renderSummary } = await import('../../../build/command.js');
    const prepared = await prepareBuild({
      recipe: args.recipe,
      argv: this.argv,
      ...(flags.output === undefined ? {} : { output: flags.output }),
      ...(flags.format === undefined ? {} : { format: flags.format }),
      ...(flags.checksum === undefined ? {} : { checksum: flags.checksum as 'sha256' | 'sha512' }),
      force: flags.force,
      ...(flags.mirror === undefined ? {} : { mirror: flags.mirror }),
      aptCache: flags['no-apt-cache'] ? false : (flags['apt-cache'] ?? true),
      compression: flags.compression as 'zlib' | 'zstd',
      ...(flags['box-name'] === undefined ? {} : { boxName: flags['box-name'] }),
      ...(flags['box-version'] === undefined ? {} : { boxVersion: flags['box-version'] }),
    });
    this.log(`Building ${prepared.recipe.name} from ${prepared.recipeDirShown} (recipe ${prepared.recipeHash.slice(0, 19)}…)`);
    // SIGTERM and SIGHUP cancel like Ctrl-C: the build stops its tools, unmounts and cleans up.
    const terminated = new AbortController();
    const onTerm = (): void => terminated.abort(new InterruptedError('building the box'));
    process.once('SIGTERM', onTerm);
    process.once('SIGHUP', onTerm);
    try {
      const result = await runBuild(prepared, { signal: AbortSignal.any([this.signal, terminated.signal]), timeoutMs: flags['build-timeout'] * 1000 });
      this.log(renderSummary(prepared, result));
    } finally {
      process.off('SIGTERM', onTerm);
      process.off('SIGHUP', onTerm);
    }
  }
}
