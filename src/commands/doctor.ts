import { Flags } from '@oclif/core';
import { BaseCommand } from '../ui/base-command.js';
import type { DoctorReport } from '../host/doctor.js';

export default class Doctor extends BaseCommand {
  static override summary = 'Check that this host can run vmenv.';
  static override description = `Reports the Node.js version; whether guests can use hardware virtualization (kvm: the CPU has vmx/svm and /dev/kvm opens read-write) or will run under QEMU's software emulation, and why; the host programs vmenv runs (qemu-system-x86_64, qemu-img, rsync, ssh, an ISO writer; virsh is optional); and whether libvirt answers at the URI. Each problem comes with how to fix it.

Exits 0 when nothing failed (warnings allowed), 1 otherwise.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: 'Check this host.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Check a libvirt daemon on another host.', command: '<%= config.bin %> <%= command.id %> --uri qemu+ssh://me@build1/system' },
    { description: 'Get the checks as JSON.', command: '<%= config.bin %> <%= command.id %> --json' },
  ];

  static override flags = {
    uri: Flags.string({
      description:
        'libvirt URI to check (default: $VMENV_LIBVIRT_URI, $LIBVIRT_DEFAULT_URI, qemu:///system if reachable, else qemu:///session).',
      helpValue: '<uri>',
    }),
    timeout: Flags.integer({
      description: 'Seconds to wait for libvirt to answer.',
      default: 10,
      min: 1,
      helpValue: '<seconds>',
    }),
  };

  async run(): Promise<DoctorReport> {
    const { flags } = await this.parse(Doctor);
    const { runDoctor } = await import('../host/doctor.js');
    const report = await runDoctor({ uri: flags.uri, timeoutMs: flags.timeout * 1000 });
    if (!this.jsonEnabled()) this.log(renderReport(report, process.stdout.isTTY === true && process.env['NO_COLOR'] === undefined));
    if (!report.ok) process.exitCode = 1;
    return report;
  }
}

function renderReport(report: DoctorReport, color: boolean): string {
  const paint = (code: string, text: string): string => (color ? `\u001B[${code}m${text}\u001B[0m` : text);
  const label = { ok: paint('32', ' ok '), warn: paint('33', 'warn'), fail: paint('1;31', 'FAIL') } as const;
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines: string[] = [];
  for (const check of report.checks) {
    lines.push(`[${label[check.status]}] ${check.name.padEnd(width)}  ${check.detail}`);
    if (check.fix !== null) lines.push(`       ${''.padEnd(width)}  fix: ${check.fix}`);
  }
  const fails = report.checks.filter((c) => c.status === 'fail').length;
  const warns = report.checks.filter((c) => c.status === 'warn').length;
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push('');
  lines.push(
    fails === 0
      ? `Ready: guests will run as '${report.domainType}' domains${warns > 0 ? ` (${plural(warns, 'warning')})` : ''}.`
      : `${plural(fails, 'problem')} to fix${warns > 0 ? `, ${plural(warns, 'warning')}` : ''}.`,
  );
  return lines.join('\n');
}
