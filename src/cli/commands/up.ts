import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import { bringUpOptions, cwdFlag, machinesArg, parallelFlag, provisionFlags } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

export default class Up extends BaseCommand {
  static override summary = 'Create and start the machines described in vmenv.yaml.';
  static override description = `Creates each machine that does not exist yet (a copy-on-write overlay on its box's volume, a cloud-init seed with a per-machine SSH key, a domain whose name is unique to this project's path), starts it, waits for its IP address and for SSH with a timeout, syncs the project folder and runs the provisioners on first creation. Machines that exist are started; running machines are left as they are.

Every wait reports what it is waiting for; if one times out, vmenv shows the tail of the guest's serial console and what the lease sources said. If creation fails part way, what was made is removed again unless --no-destroy-on-error is given.`;

  static override examples = [
    { description: 'Bring up every machine of the project.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Bring up one machine without running its provisioners.', command: '<%= config.bin %> <%= command.id %> web --no-provision' },
    { description: 'Bring up two machines at once.', command: '<%= config.bin %> <%= command.id %> web db --parallel' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
    ...provisionFlags,
    ...parallelFlag,
    'destroy-on-error': Flags.boolean({
      description: 'Remove what was created when bringing a new machine up fails (--no-destroy-on-error keeps it to debug).',
      default: true,
      allowNo: true,
    }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Up);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { upProject } = await import('../../services/up.js');
    await upProject(project, machines, {
      signal: this.signal,
      ...bringUpOptions(flags),
      keepOnError: !flags['destroy-on-error'],
    });
  }
}
