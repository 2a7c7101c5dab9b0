import { Flags } from '@oclif/core';
import { BaseCommand } from '../ui/base-command.js';
import { NotImplementedError } from '../ui/errors.js';
import { Issue } from '../ui/issues.js';
import { machinesArg } from '../ui/machine-flags.js';

export default class Suspend extends BaseCommand {
  static override summary = 'Pause the machines, keeping their memory.';
  static override description = `Pauses each running machine. With --mode pause (the default) the guest stays in the host's memory and resumes instantly; with --mode managedsave its memory is written to disk and the host's memory freed. 'vmenv resume' or 'vmenv up' continues it.`;

  static override examples = [
    { description: 'Pause every machine of the project.', command: '<%= config.bin %> <%= command.id %>' },
    { description: "Save one machine's memory to disk.", command: '<%= config.bin %> <%= command.id %> db --mode managedsave' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    mode: Flags.string({
      description: 'How to suspend (default: from vmenv.yaml, else pause).',
      options: ['pause', 'managedsave'],
    }),
  };

  async run(): Promise<void> {
    await this.parse(Suspend);
    throw new NotImplementedError('suspend', Issue.lifecycle);
  }
}
