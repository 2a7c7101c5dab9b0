import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import { bringUpOptions, cwdFlag, machinesArg, parallelFlag, provisionFlags } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

export default class Reload extends BaseCommand {
  static override summary = 'Restart the machines, applying changes made to vmenv.yaml.';
  static override description = `Shuts each machine down, updates its domain from the current vmenv.yaml (CPUs, memory, boot options, shared folders, new extra disks, a larger disk_size) and starts it again, then syncs the rsync folders. The machine keeps its disk, MAC address and network. Provisioners with run: always run; the others only with --provision.`;

  static override examples = [
    { description: 'Restart every machine with the new configuration.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Restart one machine and provision it again.', command: '<%= config.bin %> <%= command.id %> web --provision' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
    ...provisionFlags,
    force: Flags.boolean({ char: 'f', description: 'Power off at once instead of a graceful shutdown.' }),
    ...parallelFlag,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Reload);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { reloadProject } = await import('../../services/reload.js');
    await reloadProject(project, machines, {
      signal: this.signal,
      ...bringUpOptions(flags),
      force: flags.force,
      onChange: (machine, change) => this.log(`${machine}: ${change}`),
    });
  }
}
