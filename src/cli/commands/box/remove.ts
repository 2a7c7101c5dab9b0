import { Args, Flags } from '@oclif/core';
import type { RemoveBoxResult } from '../../../box/remove-box.js';
import { BaseCommand } from '../../base-command.js';

export default class BoxRemove extends BaseCommand {
  static override summary = 'Remove a box from the store and its volumes from the storage pools.';
  static override description = `Removes a box (one version, or all with --all) from the local box store and deletes the volumes vmenv uploaded for it from every libvirt storage pool it went to, so no stale images are left behind. Refuses while a machine uses the box, naming those machines; --force removes it anyway, but only when none of them is running (their disks are overlays on the box's volume, so they cannot start again).`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: 'Remove a box that has one version.', command: '<%= config.bin %> <%= command.id %> debian-12' },
    { description: 'Remove one version of a box.', command: '<%= config.bin %> <%= command.id %> debian-12 --box-version 1.1.0' },
    { description: 'Remove every version, even if stopped machines use it.', command: '<%= config.bin %> <%= command.id %> debian-12 --all --force' },
  ];

  static override args = {
    name: Args.string({ ignoreStdin: true, description: 'Name of the box.', required: true }),
  };

  static override flags = {
    'box-version': Flags.string({ description: 'Version to remove (needed when several are stored).', helpValue: '<version>', exclusive: ['all'] }),
    all: Flags.boolean({ description: 'Remove every version of the box.', exclusive: ['box-version'] }),
    force: Flags.boolean({ char: 'f', description: 'Remove even while stopped machines use the box; never while one of them runs.' }),
  };

  async run(): Promise<RemoveBoxResult> {
    const { args, flags } = await this.parse(BoxRemove);
    const { removeBox } = await import('../../../box/remove-box.js');
    const result = await removeBox(args.name, {
      ...(flags['box-version'] === undefined ? {} : { version: flags['box-version'] }),
      all: flags.all,
      force: flags.force,
      signal: this.signal,
    });
    if (!this.jsonEnabled()) {
      for (const r of result.removed) this.log(`Removed box '${r.name}' version ${r.version}.`);
      for (const v of result.volumesDeleted) this.log(`Deleted volume ${v.pool}/${v.volume} (${v.uri}).`);
      if (result.orphanedMachines.length > 0) {
        this.log(`These machines used it and cannot start again until destroyed: ${result.orphanedMachines.map((m) => `${m.machine} (${m.project})`).join(', ')}.`);
      }
    }
    return result;
  }
}
