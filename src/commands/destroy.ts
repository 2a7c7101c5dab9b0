import { Flags } from '@oclif/core';
import { BaseCommand } from '../ui/base-command.js';
import { NotImplementedError } from '../ui/errors.js';
import { Issue } from '../ui/issues.js';
import { machinesArg, parallelFlag } from '../ui/machine-flags.js';

export default class Destroy extends BaseCommand {
  static override summary = 'Stop the machines and delete everything vmenv made for them.';
  static override description = `Stops each machine and removes its libvirt domain, its disk overlay, its cloud-init seed, its SSH key and pinned host key, and any network vmenv created that no machine uses any more. Box volumes stay in the pool for the next 'vmenv up' ('vmenv box remove' deletes them). Asks for confirmation unless --force is given or stdin is not a terminal.`;

  static override examples = [
    { description: 'Destroy every machine of the project, after confirming.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Destroy one machine without asking.', command: '<%= config.bin %> <%= command.id %> web --force' },
    { description: 'Shut down gracefully first, then destroy.', command: '<%= config.bin %> <%= command.id %> --graceful -f' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'Do not ask for confirmation.' }),
    graceful: Flags.boolean({ char: 'g', description: 'Try a graceful shutdown before removing the machine.' }),
    ...parallelFlag,
  };

  async run(): Promise<void> {
    await this.parse(Destroy);
    throw new NotImplementedError('destroy', Issue.lifecycle);
  }
}
