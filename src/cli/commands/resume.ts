import { BaseCommand } from '../base-command.js';
import { cwdFlag, machinesArg, parallelFlag } from '../machine-flags.js';
import { machineNames, projectMachines, withProjectLock } from '../../services/project.js';

export default class Resume extends BaseCommand {
  static override summary = 'Continue suspended machines.';
  static override description = `Continues each machine paused or saved by 'vmenv suspend' and waits until it answers on SSH again. A machine that is shut off is not started: 'vmenv up' does that.`;

  static override examples = [
    { description: 'Continue every suspended machine.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Continue one machine.', command: '<%= config.bin %> <%= command.id %> db' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = { ...cwdFlag, ...parallelFlag };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Resume);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { forEachMachine } = await import('../../services/batch.js');
    const { resumeMachine } = await import('../../lifecycle/suspend.js');
    await withProjectLock(project, 'resume', this.signal, () =>
      forEachMachine(project, machines, { signal: this.signal, parallel: flags.parallel }, async (h) => {
        this.log(`${h.machine.name}: ${await resumeMachine(h, { signal: this.signal })}`);
      }),
    );
  }
}
