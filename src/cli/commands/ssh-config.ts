import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import { UserError } from '../../errors.js';
import { cwdFlag, machinesArg } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

export default class SshConfig extends BaseCommand {
  static override summary = 'Print an OpenSSH client configuration for the machines.';
  static override description = `Prints Host blocks (HostName, Port, User, IdentityFile, UserKnownHostsFile with the pinned host key, ProxyJump for remote libvirt hosts) to paste into ~/.ssh/config or to use with 'ssh -F', scp, rsync or an editor's remote mode. With --json, prints the same as data.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: 'Print the configuration of every running machine.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Use it with scp.', command: '<%= config.bin %> <%= command.id %> web > /tmp/web.ssh && scp -F /tmp/web.ssh notes.txt web:' },
    { description: 'Name the host block yourself.', command: '<%= config.bin %> <%= command.id %> web --host myproject-web' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
    host: Flags.string({ description: 'Host alias to print instead of the machine name (one machine only).', helpValue: '<alias>' }),
  };

  async run(): Promise<unknown> {
    const { argv, flags } = await this.parse(SshConfig);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    if (flags.host !== undefined && machines.length !== 1) {
      throw new UserError('--host renames one machine: name exactly one', { hint: 'vmenv ssh-config web --host web.test' });
    }
    const { writeMachineSshConfig } = await import('../../access/machine-ssh-config.js');
    const { ProjectState } = await import('../../project/state.js');
    // All it needs is recorded in the project's state: no libvirt connection.
    const state = new ProjectState(project.dir);
    const blocks: { machine: string; config: string; file: string }[] = [];
    for (const m of machines) {
      const { text, path } = await writeMachineSshConfig({ project, machine: m, state });
      blocks.push({ machine: m.name, config: flags.host ? text.replace(/^Host .*$/m, `Host ${flags.host}`) : text, file: path });
    }
    if (!this.jsonEnabled()) this.log(blocks.map((b) => b.config).join('\n').trimEnd());
    return { machines: blocks };
  }
}
