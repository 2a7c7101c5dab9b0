import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../ui/base-command.js';
import { NotImplementedError } from '../ui/errors.js';
import { Issue } from '../ui/issues.js';

export default class Init extends BaseCommand {
  static override summary = 'Write a vmenv.yaml for a new project.';
  static override description = `Writes vmenv.yaml in the current directory from a template, with one machine using BOX (default: the 'tiny' box). Refuses to overwrite an existing file unless --force is given.`;

  static override examples = [
    { description: 'Start a project with the default box.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Start a project on Debian 12.', command: '<%= config.bin %> <%= command.id %> debian-12' },
    { description: 'Start from the multi-machine template.', command: '<%= config.bin %> <%= command.id %> debian-12 --template multi' },
  ];

  static override args = {
    box: Args.string({ description: 'Box for the first machine (a name from \'vmenv box list\', a file or a URL).' }),
  };

  static override flags = {
    template: Flags.string({ char: 't', description: 'Template to start from (see templates/).', default: 'default', helpValue: '<name>' }),
    name: Flags.string({ char: 'n', description: 'Name of the first machine.', default: 'default', helpValue: '<machine>' }),
    minimal: Flags.boolean({ char: 'm', description: 'Write only the required fields, without explanatory comments.' }),
    force: Flags.boolean({ char: 'f', description: 'Overwrite an existing vmenv.yaml.' }),
  };

  async run(): Promise<void> {
    await this.parse(Init);
    throw new NotImplementedError('init', Issue.lifecycle);
  }
}
