import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import { ExitCode, UserError } from '../../errors.js';
import { cwdFlag, machinesArg, parallelFlag } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';
import { confirm } from '../prompt.js';

export default class Destroy extends BaseCommand {
  static override summary = 'Stop the machines and delete everything vmenv made for them.';
  static override description = `Stops each machine and removes its libvirt domain, its disk overlay, its cloud-init seed, its SSH key and pinned host key, and any network vmenv created that no machine uses any more. Box volumes stay in the pool for the next 'vmenv up' ('vmenv box remove' deletes them). Asks for confirmation in a terminal; without a terminal it needs --force.`;

  static override examples = [
    { description: 'Destroy every machine of the project, after confirming.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Destroy one machine without asking.', command: '<%= config.bin %> <%= command.id %> web --force' },
    { description: 'Shut down gracefully first, then destroy.', command: '<%= config.bin %> <%= command.id %> --graceful -f' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
    force: Flags.boolean({ char: 'f', description: 'Do not ask for confirmation.' }),
    graceful: Flags.boolean({ char: 'g', description: 'Try a graceful shutdown before removing the machine.' }),
    ...parallelFlag,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Destroy);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    if (!flags.force) {
      if (!process.stdin.isTTY) {
        throw new UserError('destroy needs confirmation, and there is no terminal to ask in', {
          hint: "Run 'vmenv destroy --force' to destroy without asking.",
          exitCode: ExitCode.usage,
        });
      }
      const names = machines.map((m) => m.name).join(', ');
      if (!(await confirm(`Destroy ${names} and delete their disks? (y/N) `))) return;
    }
    const { destroyProject } = await import('../../services/destroy.js');
    await destroyProject(project, machines, {
      signal: this.signal,
      parallel: flags.parallel,
      graceful: flags.graceful,
      onDestroyed: (machine) => this.log(`${machine}: destroyed`),
    });
  }
}
