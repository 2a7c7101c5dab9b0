import { BaseCommand } from '../../ui/base-command.js';
import { NotImplementedError } from '../../ui/errors.js';
import { Issue } from '../../ui/issues.js';

export default class BoxList extends BaseCommand {
  static override summary = 'List the boxes in the local box store.';
  static override description = `Lists each box with its versions, size, format and the storage pools it has been uploaded to. With --json, prints the same as data.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: 'List the boxes.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'List them as JSON.', command: '<%= config.bin %> <%= command.id %> --json' },
  ];

  async run(): Promise<void> {
    await this.parse(BoxList);
    throw new NotImplementedError('box list', Issue.boxes);
  }
}
