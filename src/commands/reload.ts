import { Flags } from '@oclif/core';
import { BaseCommand } from '../ui/base-command.js';
import { NotImplementedError } from '../ui/errors.js';
import { Issue } from '../ui/issues.js';
import { machinesArg, provisionFlags } from '../ui/machine-flags.js';

export default class Reload extends BaseCommand {
  static override summary = 'Restart the machines, applying changes made to vmenv.yaml.';
  static override description = `Halts each machine, updates its domain from the current vmenv.yaml (CPUs, memory, networks, synced folders) and starts it again. Provisioners run only with --provision.`;

  static override examples = [
    { description: 'Restart every machine with the new configuration.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Restart one machine and provision it again.', command: '<%= config.bin %> <%= command.id %> web --provision' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...provisionFlags,
    force: Flags.boolean({ char: 'f', description: 'Power off at once instead of a graceful shutdown.' }),
  };

  async run(): Promise<void> {
    await this.parse(Reload);
    throw new NotImplementedError('reload', Issue.lifecycle);
  }
}
