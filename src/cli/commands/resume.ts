import { BaseCommand } from '../base-command.js';
import { cwdFlag, machinesArg, parallelFlag } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

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
    const { resumeProject } = await import('../../services/resume.js');
    await resumeProject(project, machines, {
      signal: this.signal,
      parallel: flags.parallel,
      onResumed: (machine, how) => this.log(`${machine}: ${how}`),
    });
  }
}
