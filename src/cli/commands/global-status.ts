import { Flags } from '@oclif/core';
import type { GlobalStatus as GlobalStatusResult } from '../../inventory/global-status.js';
import { BaseCommand } from '../base-command.js';
import { formatTable } from '../../util/format.js';

export default class GlobalStatus extends BaseCommand {
  static override summary = "List every project's machines on this host.";
  static override description = `Lists the machines of every project, from vmenv's global machine index: a short id, the machine's name, its state asked from libvirt just now, its box, its libvirt URI and its project folder. All machines on one libvirt are asked over one connection; a libvirt that cannot be reached shows its machines as 'unknown (libvirt unreachable)'.

Like Vagrant's global-status, every run prunes the index: an entry whose project folder, vmenv.yaml or machine state is gone, or whose domain a reachable libvirt no longer has, is removed, and what was removed is said on stderr. --prune asks for that explicitly; --no-prune lists those entries marked stale and changes nothing.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: 'List every machine vmenv knows on this host.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'The same as JSON, with what was pruned.', command: '<%= config.bin %> <%= command.id %> --json' },
    { description: 'List without touching the index; stale entries are marked.', command: '<%= config.bin %> <%= command.id %> --no-prune' },
  ];

  static override flags = {
    prune: Flags.boolean({
      description: 'Remove entries whose project, state or domain is gone (the default); --no-prune lists them marked stale instead.',
      allowNo: true,
      default: true,
    }),
  };

  async run(): Promise<GlobalStatusResult> {
    const { flags } = await this.parse(GlobalStatus);
    const { globalStatus, shortId } = await import('../../inventory/global-status.js');
    const result = await globalStatus({ prune: flags.prune, signal: this.signal });

    for (const p of result.pruned) {
      process.stderr.write(`Pruned ${shortId(p.id)} ${p.machine} (${p.project}): ${p.reason}.\n`);
    }
    if (this.jsonEnabled()) return result;

    if (result.machines.length === 0) {
      this.log("No machines. 'vmenv up' in a project folder creates one.");
      return result;
    }
    const rows = [
      ['ID', 'NAME', 'STATE', 'BOX', 'URI', 'DIRECTORY'],
      ...result.machines.map((m) => [
        shortId(m.id),
        m.machine,
        m.stale === undefined ? m.state : `stale: ${m.stale}`,
        m.box.version === '' ? m.box.name : `${m.box.name} ${m.box.version}`,
        m.uri,
        m.project,
      ]),
    ];
    this.log(formatTable(rows));
    const stale = result.machines.filter((m) => m.stale !== undefined).length;
    if (stale > 0) {
      this.log(`\n${stale === 1 ? '1 entry is stale' : `${stale} entries are stale`}; 'vmenv global-status' without --no-prune removes ${stale === 1 ? 'it' : 'them'}.`);
    }
    return result;
  }
}
