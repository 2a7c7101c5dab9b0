import type { BoxListing } from '../../../box/describe-store.js';
import { BaseCommand } from '../../base-command.js';
import { formatBytes, formatTable } from '../../../util/format.js';

export default class BoxList extends BaseCommand {
  static override summary = 'List the boxes in the local box store.';
  static override description = `Lists each stored box: name, version, provider, size on disk, and the machines that use it (from vmenv's machine index). With --json, prints the same as data, with the disks and the storage pools each box was uploaded to.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: 'List the boxes.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'List them as JSON.', command: '<%= config.bin %> <%= command.id %> --json' },
  ];

  async run(): Promise<BoxListing> {
    await this.parse(BoxList);
    const { describeStore } = await import('../../../box/describe-store.js');
    const listing = await describeStore();
    if (!this.jsonEnabled()) {
      if (listing.boxes.length === 0) {
        this.log("There are no boxes yet. Add one with 'vmenv box add <file or URL>' (or build one: 'vmenv box build tiny').");
      } else {
        const rows = [
          ['NAME', 'VERSION', 'PROVIDER', 'SIZE', 'USED BY'],
          ...listing.boxes.map((b) => [
            b.name,
            b.version,
            b.provider,
            formatBytes(b.size),
            b.machines === null ? '?' : b.machines.length === 0 ? '-' : b.machines.map((m) => `${m.machine} (${m.project})`).join(', '),
          ]),
        ];
        this.log(formatTable(rows));
      }
      if (listing.warning !== undefined) process.stderr.write(`Warning: ${listing.warning}\n`);
    }
    return listing;
  }
}
