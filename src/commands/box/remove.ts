import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../ui/base-command.js';
import { NotImplementedError } from '../../ui/errors.js';
import { Issue } from '../../ui/issues.js';

export default class BoxRemove extends BaseCommand {
  static override summary = 'Remove a box from the store and its volumes from the storage pools.';
  static override description = `Removes a box (one version, or all with --all) from the local box store and deletes the volumes vmenv uploaded for it from the libvirt storage pools, so no stale images are left behind. Refuses while a machine still uses the box unless --force is given.`;

  static override examples = [
    { description: 'Remove a box that has one version.', command: '<%= config.bin %> <%= command.id %> debian-12' },
    { description: 'Remove one version of a box.', command: '<%= config.bin %> <%= command.id %> debian-12 --box-version 1.1.0' },
    { description: 'Remove every version, even if machines use it.', command: '<%= config.bin %> <%= command.id %> debian-12 --all --force' },
  ];

  static override args = {
    name: Args.string({ description: 'Name of the box.', required: true }),
  };

  static override flags = {
    'box-version': Flags.string({ description: 'Version to remove (needed when several are stored).', helpValue: '<version>', exclusive: ['all'] }),
    all: Flags.boolean({ description: 'Remove every version of the box.' }),
    force: Flags.boolean({ char: 'f', description: 'Remove even while machines use the box; their disks are overlays on its volume, so they must be destroyed and created again.' }),
  };

  async run(): Promise<void> {
    await this.parse(BoxRemove);
    throw new NotImplementedError('box remove', Issue.boxes);
  }
}
