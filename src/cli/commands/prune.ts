import { Flags } from '@oclif/core';
import type { PruneResult } from '../../services/prune.js';
import { BaseCommand } from '../base-command.js';
import { ExitCode, UserError } from '../../errors.js';
import { cwdFlag } from '../machine-flags.js';
import { confirm } from '../prompt.js';

export default class Prune extends BaseCommand {
  static override summary = 'Remove what projects that are gone left behind in libvirt.';
  static override description = `Finds, on one libvirt (--uri, else the project's "uri", else vmenv's default choice):
- domains vmenv made (they carry vmenv's metadata) whose project folder, vmenv.yaml or machine state (.vmenv/machines/<machine>) is gone — destroyed and undefined with their nvram, snapshot metadata and managed save;
- the volumes of those machines, and machine volumes whose domain is gone (older than 10 minutes: an 'up' under way makes volumes before its domain) — deleted;
- vmenv's networks that no remaining domain uses — removed;
and prunes the global machine index of entries whose project, state or domain is gone.

Box volumes and the resources of projects that still exist are never touched. On a libvirt on another host, only domains that this host's machine index lists are judged (a project path that does not exist here may be another client's). Asks for confirmation in a terminal; without a terminal it needs --force. 'vmenv doctor' reports the same stale resources.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: 'List what would be removed, and remove nothing.', command: '<%= config.bin %> <%= command.id %> --dry-run' },
    { description: 'Remove the stale resources after confirming.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Remove them without asking (scripts, CI), as JSON.', command: '<%= config.bin %> <%= command.id %> -f --json' },
    { description: 'Clean up a libvirt on another host.', command: '<%= config.bin %> <%= command.id %> --uri qemu+ssh://me@build1/system' },
  ];

  static override flags = {
    ...cwdFlag,
    uri: Flags.string({
      description: "libvirt URI to clean up (default: the project's uri, $VMENV_LIBVIRT_URI, $LIBVIRT_DEFAULT_URI, qemu:///system if reachable, else qemu:///session).",
      helpValue: '<uri>',
    }),
    'dry-run': Flags.boolean({ char: 'n', description: 'Only list what would be removed.' }),
    force: Flags.boolean({ char: 'f', description: 'Do not ask for confirmation.' }),
    timeout: Flags.integer({ description: 'Seconds to wait for libvirt to answer.', default: 10, min: 1, helpValue: '<seconds>' }),
  };

  async run(): Promise<PruneResult> {
    const { flags } = await this.parse(Prune);
    const { pruneCount, removedCount, withStaleResources } = await import('../../services/prune.js');
    return withStaleResources({ cwd: flags.cwd, uri: flags.uri, timeoutMs: flags.timeout * 1000 }, async (found) => {
      const planned = await found.plan(this.signal);
      const count = pruneCount(planned);
      if (count === 0) {
        if (!this.jsonEnabled()) this.log(`Nothing to prune on ${found.uri}.${this.keptNote(planned.kept)}`);
        return { ...planned, dryRun: flags['dry-run'] };
      }
      if (flags['dry-run']) {
        if (!this.jsonEnabled()) {
          this.log(`Would remove from ${found.uri}:`);
          for (const line of this.lines(planned)) this.log(`  ${line}`);
          this.log(`\nRun 'vmenv prune' to remove ${count === 1 ? 'it' : 'them'}.${this.keptNote(planned.kept)}`);
        }
        return planned;
      }
      if (!flags.force) {
        if (!process.stdin.isTTY) {
          throw new UserError('prune needs confirmation, and there is no terminal to ask in', {
            hint: "Run 'vmenv prune --dry-run' to see what it removes, and 'vmenv prune --force' to remove it without asking.",
            exitCode: ExitCode.usage,
          });
        }
        process.stderr.write(`Stale on ${found.uri}:\n${this.lines(planned).map((l) => `  ${l}\n`).join('')}`);
        if (!(await confirm(`Remove ${count === 1 ? 'it' : `these ${count}`}? (y/N) `))) {
          this.log('Nothing removed.');
          return { ...planned, dryRun: false };
        }
      }
      const result = await found.remove(this.signal);
      if (!this.jsonEnabled()) {
        for (const line of this.lines(result)) this.log(line);
        this.log(`\nRemoved ${removedCount(result)} of ${count} from ${found.uri}${result.failed > 0 ? `; ${result.failed} failed` : ''}.`);
      }
      if (result.failed > 0) process.exitCode = ExitCode.user;
      return result;
    });
  }

  private keptNote(kept: readonly string[]): string {
    return kept.length === 0 ? '' : `\nKept (they look stale but may not be):\n${kept.map((k) => `  ${k}`).join('\n')}`;
  }

  /** One line per resource: what happened (not in a dry run), what, which, why. */
  private lines(r: PruneResult): string[] {
    const verdict = (x: { removed: boolean; skipped?: string; error?: string }): string =>
      r.dryRun ? '' : x.error !== undefined ? 'FAILED   ' : x.skipped !== undefined ? 'kept     ' : 'removed  ';
    const after = (x: { skipped?: string; error?: string }): string =>
      r.dryRun ? '' : x.error !== undefined ? ` — ${x.error}` : x.skipped !== undefined ? ` — ${x.skipped}` : '';
    return [
      ...r.domains.map((d) => `${verdict(d)}domain  ${d.name}: ${d.reason}${after(d)}`),
      ...r.volumes.map((v) => `${verdict(v)}volume  ${v.pool}/${v.name}: ${v.reason}${after(v)}`),
      ...r.networks.map((n) => `${verdict(n)}network ${n.name}: ${n.reason}${after(n)}`),
      ...r.index.map((e) => `${verdict(e)}index   ${e.machine} (${e.project}): ${e.reason}`),
    ];
  }
}
