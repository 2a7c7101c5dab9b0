import { Flags } from '@oclif/core';
import { BaseCommand } from '../ui/base-command.js';
import { NotImplementedError } from '../ui/errors.js';
import { Issue } from '../ui/issues.js';
import { machinesArg } from '../ui/machine-flags.js';

export default class Status extends BaseCommand {
  static override summary = 'Show the state of the machines.';
  static override description = `For each machine: its state (not created, running, paused, saved, shut off), its libvirt domain and host, its IP address and where that came from (DHCP lease, guest agent, user-mode forward). --all lists every machine vmenv knows on this host, from every project. With --json, prints the same as data.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: "Show the project's machines.", command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Show every machine vmenv knows, as JSON.', command: '<%= config.bin %> <%= command.id %> --all --json' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    all: Flags.boolean({ char: 'a', description: 'Every machine in the global machine index, from all projects.' }),
  };

  async run(): Promise<void> {
    await this.parse(Status);
    throw new NotImplementedError('status', Issue.lifecycle);
  }
}
