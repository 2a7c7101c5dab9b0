import { BaseCommand } from '../ui/base-command.js';
import { NotImplementedError } from '../ui/errors.js';
import { Issue } from '../ui/issues.js';
import { machinesArg } from '../ui/machine-flags.js';

export default class Resume extends BaseCommand {
  static override summary = 'Continue suspended machines.';
  static override description = `Continues each machine paused or saved by 'vmenv suspend' and waits until it answers on SSH again.`;

  static override examples = [
    { description: 'Continue every suspended machine.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Continue one machine.', command: '<%= config.bin %> <%= command.id %> db' },
  ];

  static override args = machinesArg;
  static override strict = false;

  async run(): Promise<void> {
    await this.parse(Resume);
    throw new NotImplementedError('resume', Issue.lifecycle);
  }
}
