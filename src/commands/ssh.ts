import { Flags } from '@oclif/core';
import { BaseCommand } from '../ui/base-command.js';
import { NotImplementedError } from '../ui/errors.js';
import { Issue } from '../ui/issues.js';
import { machineArg } from '../ui/machine-flags.js';

export default class Ssh extends BaseCommand {
  static override summary = 'Open a shell on a machine over SSH, or run a command there.';
  static override description = `Connects with the machine's own key and verifies the host key pinned at first contact. Machines on a remote libvirt host are reached through that host. Arguments after -- are passed to ssh unchanged.`;

  static override examples = [
    { description: "Open a shell on the project's machine.", command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Run one command on a machine.', command: "<%= config.bin %> <%= command.id %> web -c 'uname -a'" },
    { description: 'Forward a port with extra ssh options.', command: '<%= config.bin %> <%= command.id %> web -- -L 8080:localhost:80' },
  ];

  static override args = machineArg;
  static override strict = false;
  static override flags = {
    command: Flags.string({ char: 'c', description: 'Run this command instead of a login shell.', helpValue: '<command>' }),
    plain: Flags.boolean({ description: "Connect without vmenv's key and user: let ssh ask for a login." }),
  };

  async run(): Promise<void> {
    await this.parse(Ssh);
    throw new NotImplementedError('ssh', Issue.lifecycle);
  }
}
