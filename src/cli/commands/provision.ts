import { BaseCommand } from '../base-command.js';
import { cwdFlag, machinesArg, provisionFlags } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

export default class Provision extends BaseCommand {
  static override summary = 'Run the provisioners on running machines.';
  static override description = `Runs the provisioners of vmenv.yaml (shell, file, ansible) on each running machine, in the order they are listed: those with run: once as well as run: always; those with run: never only when named with --provision-with. Output is streamed with the machine's name in front of each line. Stops at the first provisioner that fails, naming it and its exit code. An ansible provisioner with limit: all runs once for all the machines given, after their other provisioners. Synced folders are not synced: 'vmenv rsync' does that.`;

  static override examples = [
    { description: 'Run every provisioner on every machine.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Run only the provisioner named "setup" on one machine.', command: '<%= config.bin %> <%= command.id %> web --provision-with setup' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
    'provision-with': provisionFlags['provision-with'],
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Provision);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { provisionProject } = await import('../../services/provision.js');
    await provisionProject(project, machines, {
      signal: this.signal,
      only: flags['provision-with'],
      onProvisioned: (machine, ran) => {
        if (ran === 0) this.log(`${machine}: no provisioner to run`);
      },
    });
  }
}
