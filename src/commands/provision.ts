import { BaseCommand } from '../ui/base-command.js';
import { NotImplementedError } from '../ui/errors.js';
import { Issue } from '../ui/issues.js';
import { machinesArg, provisionFlags } from '../ui/machine-flags.js';

export default class Provision extends BaseCommand {
  static override summary = 'Run the provisioners on running machines.';
  static override description = `Runs the provisioners of vmenv.yaml (shell, file, ansible) on each running machine, in the order they are listed, after syncing the project folder. Stops at the first provisioner that fails and shows its output.`;

  static override examples = [
    { description: 'Run every provisioner on every machine.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Run only the ansible provisioners on one machine.', command: '<%= config.bin %> <%= command.id %> web --provision-with ansible' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    'provision-with': provisionFlags['provision-with'],
  };

  async run(): Promise<void> {
    await this.parse(Provision);
    throw new NotImplementedError('provision', Issue.lifecycle);
  }
}
