import { Flags } from '@oclif/core';
import { projectCwd } from '../../config/load.js';
import { BaseCommand } from '../base-command.js';
import { cwdFlag } from '../machine-flags.js';
import type { DoctorReport } from '../../services/doctor/doctor.js';

export default class Doctor extends BaseCommand {
  static override summary = 'Check that this host can run vmenv, and say how to fix what cannot.';
  static override description = `Checks, each with what it found and a fix:
- libvirt answers at the URI (--uri, else the project's "uri", else vmenv's default choice), and if not why: socket missing, permission denied, daemon down, session daemon not started;
- the storage pool (the project's "pool", else "default") exists and is active, and QEMU's user (libvirt's qemu.conf user, libvirt-qemu on Debian) can reach its folder: search permission on every folder above it;
- hardware virtualization (vmx/svm and /dev/kvm), or software emulation (domain type qemu, much slower);
- the host programs vmenv runs: qemu-system-x86_64, qemu-img, rsync, ssh, an ISO writer (genisoimage, xorriso or mkisofs), with the package to install;
- the management network's subnet is free, or which host route, address or libvirt network it collides with;
- stale vmenv resources (domains, volumes, networks whose project is gone), which 'vmenv prune' removes.

Run in a project folder, it checks that project's settings. Exits 0 when nothing failed (warnings allowed), 3 when libvirt cannot be reached, 1 when another check failed.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: 'Check this host (and the project here, if any).', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Check a libvirt daemon on another host.', command: '<%= config.bin %> <%= command.id %> --uri qemu+ssh://me@build1/system' },
    { description: 'Get the checks as JSON.', command: '<%= config.bin %> <%= command.id %> --json' },
  ];

  static override flags = {
    ...cwdFlag,
    uri: Flags.string({
      description:
        "libvirt URI to check (default: the project's uri, $VMENV_LIBVIRT_URI, $LIBVIRT_DEFAULT_URI, qemu:///system if reachable, else qemu:///session).",
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
    const [{ runDoctor }, { renderDoctorReport }] = await Promise.all([import('../../services/doctor/doctor.js'), import('../../services/doctor/report.js')]);
    const report = await runDoctor({ cwd: projectCwd(flags.cwd), uri: flags.uri, timeoutMs: flags.timeout * 1000 });
    if (!this.jsonEnabled()) this.log(renderDoctorReport(report, { color: process.stdout.isTTY === true && process.env['NO_COLOR'] === undefined }));
    process.exitCode = report.exitCode;
    return report;
  }
}
