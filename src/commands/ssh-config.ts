import { Flags } from '@oclif/core';
import { BaseCommand } from '../ui/base-command.js';
import { NotImplementedError } from '../ui/errors.js';
import { Issue } from '../ui/issues.js';
import { machinesArg } from '../ui/machine-flags.js';

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
    host: Flags.string({ description: 'Host alias to print instead of the machine name (one machine only).', helpValue: '<alias>' }),
  };

  async run(): Promise<void> {
    await this.parse(SshConfig);
    throw new NotImplementedError('ssh-config', Issue.lifecycle);
  }
}
