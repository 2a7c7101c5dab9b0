import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../ui/base-command.js';
import { NotImplementedError } from '../../ui/errors.js';
import { Issue } from '../../ui/issues.js';

export default class BoxBuild extends BaseCommand {
  static override summary = 'Build a box from one of the recipes in boxes/.';
  static override description = `Builds a box from a recipe (e.g. 'tiny', 'debian-12'): creates the image from distribution packages or from a source image, boots it once under QEMU with a cloud-init seed, provisions it over SSH, shuts it down gracefully and packs the disk (qcow2, kept sparse) with its metadata and checksum into a .box file. With --add, the box is added to the local box store as well.`;

  static override examples = [
    { description: 'Build the tiny box into the current directory.', command: '<%= config.bin %> <%= command.id %> tiny' },
    { description: 'Build Debian 12 and add it to the box store.', command: '<%= config.bin %> <%= command.id %> debian-12 --add' },
    { description: 'Build into a chosen file.', command: '<%= config.bin %> <%= command.id %> debian-12 -o out/debian-12.box' },
  ];

  static override args = {
    recipe: Args.string({ description: 'Recipe name (a folder in boxes/) or path to a recipe folder.', required: true }),
  };

  static override flags = {
    output: Flags.string({ char: 'o', description: 'Where to write the .box file (default: ./<recipe>.box).', helpValue: '<file>' }),
    format: Flags.string({ description: 'Disk format inside the box.', options: ['qcow2', 'raw'], default: 'qcow2' }),
    add: Flags.boolean({ description: 'Add the built box to the local box store.' }),
    force: Flags.boolean({ char: 'f', description: 'Overwrite an existing output file (and box, with --add).' }),
    'build-timeout': Flags.integer({
      description: 'Seconds the build may take before it is stopped and cleaned up.',
      default: 1800,
      min: 1,
      helpValue: '<seconds>',
    }),
  };

  async run(): Promise<void> {
    await this.parse(BoxBuild);
    throw new NotImplementedError('box build', Issue.boxes);
  }
}
