import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import { cwdFlag, machinesArg } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

export default class RsyncAuto extends BaseCommand {
  static override summary = 'Watch the synced folders and sync each change into the running machines.';
  static override description = `Watches the host folder of each rsync synced folder of the running machines and runs rsync as changes happen: a sync starts after 100 ms without a change (at most 1 s into a stream of changes), so a burst such as a git checkout is one or a few syncs; one folder is never synced twice at once. One sync at start. .vmenv/, the inside of .git folders and the folder's excludes are not watched; .vmenv/ and the excludes are not synced.

A guest that goes away (a reboot, a halt) is waited for: syncs are retried, every 5 s at most, with the machine's state read again (for a new IP), and go on once it answers. Runs until Ctrl-C (exit code 130).`;

  static override examples = [
    { description: 'Watch every running machine of the project.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Watch one machine.', command: '<%= config.bin %> <%= command.id %> web' },
    { description: 'Poll for changes, on a file system without inotify (NFS, some FUSE mounts).', command: '<%= config.bin %> <%= command.id %> --poll' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
    poll: Flags.boolean({ description: 'Poll the folders for changes instead of using inotify (slower; for file systems without inotify).' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(RsyncAuto);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { rsyncAuto } = await import('../../sync/rsync-auto.js');
    await rsyncAuto(project, machines, {
      poll: flags.poll,
      signal: this.signal,
      log: (line) => this.log(line),
      warn: (line) => process.stderr.write(`${line}\n`),
    });
  }
}
