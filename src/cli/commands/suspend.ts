import { Flags } from '@oclif/core';
import type { SuspendMode } from '../../config/types.js';
import { BaseCommand } from '../base-command.js';
import { cwdFlag, machinesArg, parallelFlag } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

export default class Suspend extends BaseCommand {
  static override summary = 'Pause the machines, keeping their memory.';
  static override description = `Suspends each running machine. With --mode pause (the default, or suspend_mode in vmenv.yaml) the guest stays in the host's memory and resumes instantly; with --mode managedsave its memory is written to disk and the host's memory freed. 'vmenv resume' or 'vmenv up' continues it; 'vmenv halt' drops the saved memory.`;

  static override examples = [
    { description: 'Pause every machine of the project.', command: '<%= config.bin %> <%= command.id %>' },
    { description: "Save one machine's memory to disk.", command: '<%= config.bin %> <%= command.id %> db --mode managedsave' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
    mode: Flags.string({
      description: 'How to suspend (default: suspend_mode in vmenv.yaml, else pause).',
      options: ['pause', 'managedsave'],
    }),
    ...parallelFlag,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Suspend);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { suspendProject } = await import('../../services/suspend.js');
    await suspendProject(project, machines, {
      signal: this.signal,
      parallel: flags.parallel,
      mode: flags.mode as SuspendMode | undefined,
      onSuspended: (machine, how) => this.log(`${machine}: ${how === 'saved' ? 'saved to disk' : how}`),
    });
  }
}
