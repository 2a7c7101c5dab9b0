import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../ui/base-command.js';
import { NotImplementedError } from '../../ui/errors.js';
import { Issue } from '../../ui/issues.js';

export default class BoxAdd extends BaseCommand {
  static override summary = 'Add a box to the local box store.';
  static override description = `Adds a box from a .box file, a URL or a catalog (metadata JSON) to the box store in $VMENV_HOME. The checksum is verified when one is given or published by the catalog. The box is uploaded to a libvirt storage pool as it is (qcow2, sparse) the first time a machine uses it.`;

  static override examples = [
    { description: 'Add a box file built by vmenv.', command: '<%= config.bin %> <%= command.id %> ./tiny.box' },
    { description: 'Add a box from a URL under a chosen name, verifying it.', command: '<%= config.bin %> <%= command.id %> https://example.org/debian-12.box --name debian-12 --checksum sha256:0123abcd...' },
    { description: 'Add a given version from a catalog.', command: '<%= config.bin %> <%= command.id %> https://example.org/boxes/debian-12.json --box-version 1.2.0' },
  ];

  static override args = {
    source: Args.string({ description: 'A .box file, a URL to one, or a catalog (metadata JSON) file or URL.', required: true }),
  };

  static override flags = {
    name: Flags.string({ description: 'Name for the box (required for a bare .box file without metadata).', helpValue: '<name>' }),
    'box-version': Flags.string({ description: 'Version to add (default: from the box, or the newest in the catalog).', helpValue: '<version>' }),
    checksum: Flags.string({ description: 'Expected checksum, as <algorithm>:<hex> (sha256, sha512).', helpValue: '<algo:hex>' }),
    force: Flags.boolean({ char: 'f', description: 'Replace a box with the same name and version.' }),
  };

  async run(): Promise<void> {
    await this.parse(BoxAdd);
    throw new NotImplementedError('box add', Issue.boxes);
  }
}
