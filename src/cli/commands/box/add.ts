import { Args, Flags } from '@oclif/core';
import type { AddBoxResult, AddEvent } from '../../../box/add-box.js';
import { BaseCommand } from '../../base-command.js';
import { formatBytes } from '../../../util/format.js';

export default class BoxAdd extends BaseCommand {
  static override summary = 'Add a box to the local box store.';
  static override description = `Adds a box from a .box file, an http(s) URL to one, or a catalog (Vagrant box metadata JSON, as a file or URL) to the box store in $VMENV_HOME/boxes. The checksum is verified when one is given or published by the catalog; downloads resume where they stopped. The box is unpacked beside the store and moved into place only once verified, so a failed add leaves nothing behind. The box is uploaded to a libvirt storage pool as it is (qcow2, sparse) the first time a machine uses it.

With a catalog, --box-version is a constraint ('>= 1.2, < 2', '~> 1.2', '= 1.0'; default: the newest version with a libvirt box). With a file or URL, it is the version to store the box as (default: the version the box declares, else 0). oclif reserves --version for vmenv's own version, hence --box-version.

Adding a box that is already stored is an error unless it is the very same file (then nothing changes) or --force is given (then it replaces the stored one).`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: 'Add a box file built by vmenv.', command: '<%= config.bin %> <%= command.id %> ./tiny.box' },
    { description: 'Add a box from a URL under a chosen name, verifying it.', command: '<%= config.bin %> <%= command.id %> https://example.org/debian-12.box --name debian-12 --checksum sha256:0123abcd...' },
    { description: 'Add the newest 1.x version from a catalog.', command: "<%= config.bin %> <%= command.id %> https://example.org/boxes/debian-12.json --box-version '>= 1.2, < 2'" },
  ];

  static override args = {
    source: Args.string({ ignoreStdin: true, description: 'A .box file, an http(s) URL to one, or a catalog (metadata JSON) file or URL.', required: true }),
  };

  static override flags = {
    name: Flags.string({ description: 'Name for the box (default: from the catalog, or the name the box declares).', helpValue: '<name>' }),
    'box-version': Flags.string({ description: 'Catalog: version constraint; file or URL: version to store it as.', helpValue: '<version>' }),
    checksum: Flags.string({ description: 'Expected checksum of the .box, as <algorithm>:<hex> (sha256, sha512, sha1, md5).', helpValue: '<algo:hex>' }),
    force: Flags.boolean({ char: 'f', description: 'Replace a stored box with the same name and version.' }),
  };

  async run(): Promise<AddBoxResult['box'] & { replaced: boolean; already_present: boolean }> {
    const { args, flags } = await this.parse(BoxAdd);
    const { addBox } = await import('../../../box/add-box.js');
    const progress = new ProgressLine(process.stderr.isTTY === true && !this.jsonEnabled());
    let result: AddBoxResult;
    try {
      result = await addBox(args.source, {
        ...(flags.name === undefined ? {} : { name: flags.name }),
        ...(flags['box-version'] === undefined ? {} : { version: flags['box-version'] }),
        ...(flags.checksum === undefined ? {} : { checksum: flags.checksum }),
        force: flags.force,
        signal: this.signal,
        onEvent: (e) => progress.event(e),
      });
    } finally {
      progress.done();
    }
    const { box } = result;
    if (!this.jsonEnabled()) {
      const size = box.disks.reduce((n, d) => n + d.size, 0);
      const what = `box '${box.name}' version ${box.version}`;
      this.log(
        result.alreadyPresent
          ? `The ${what} is already in the box store (the same file); nothing changed.`
          : `${result.replaced ? 'Replaced' : 'Added'} ${what} (libvirt, ${box.disks.length} disk${box.disks.length === 1 ? '' : 's'}, ${formatBytes(size)}).`,
      );
    }
    return { ...box, replaced: result.replaced, already_present: result.alreadyPresent };
  }
}

/** One status line on a terminal, rewritten in place; silent when not a terminal (waits are always said). */
class ProgressLine {
  private last = 0;
  private shown = false;
  constructor(private readonly tty: boolean) {}

  event(e: AddEvent): void {
    switch (e.type) {
      case 'source':
        if (e.kind === 'catalog' && this.tty) this.note(`Using ${e.name ?? 'box'} ${e.version ?? ''} from the catalog.`);
        return;
      case 'wait':
        this.note(`Waiting for ${e.what}${e.holder ? ` (pid ${e.holder.pid})` : ''}...`, true);
        return;
      case 'download':
        this.draw(`Downloading${e.resumed ? ' (resumed)' : ''}`, e.received, e.total);
        return;
      case 'unpack':
        this.draw('Unpacking', e.bytes, e.total);
        return;
    }
  }

  private draw(what: string, n: number, total: number | undefined): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.last < 100 && (total === undefined || n < total)) return;
    this.last = now;
    const pct = total !== undefined && total > 0 ? ` (${Math.min(100, Math.floor((n / total) * 100))}%)` : '';
    process.stderr.write(`\r\u001B[2K${what} ${formatBytes(n)}${total === undefined ? '' : ` of ${formatBytes(total)}`}${pct}`);
    this.shown = true;
  }

  private note(text: string, always = false): void {
    if (!this.tty && !always) return;
    if (this.shown) process.stderr.write('\r\u001B[2K');
    this.shown = false;
    process.stderr.write(`${text}\n`);
  }

  done(): void {
    if (this.shown) process.stderr.write('\r\u001B[2K');
    this.shown = false;
  }
}
