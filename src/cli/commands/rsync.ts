import { BaseCommand } from '../base-command.js';
import { cwdFlag, machinesArg } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

export default class Rsync extends BaseCommand {
  static override summary = 'Copy the synced folders into running machines again.';
  static override description = `Runs rsync for each synced folder of type rsync (by default the project folder to /vagrant), over the machine's SSH with its own key and pinned host key. Files deleted on the host are deleted in the guest; .vmenv/ and the folder's excludes are left out.`;

  static override examples = [
    { description: 'Sync every machine of the project.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Sync one machine.', command: '<%= config.bin %> <%= command.id %> web' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = { ...cwdFlag };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Rsync);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { rsyncProject } = await import('../../services/rsync.js');
    await rsyncProject(project, machines, {
      signal: this.signal,
      onSynced: (machine, n) => this.log(`${machine}: ${n === 0 ? 'no rsync folder to sync' : `synced ${n} folder${n === 1 ? '' : 's'}`}`),
    });
  }
}
