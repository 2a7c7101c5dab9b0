import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command.js';
import { cwdFlag, machinesArg, parallelFlag } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

export default class Halt extends BaseCommand {
  static override summary = 'Shut the machines down.';
  static override description = `Asks each running machine to shut down as shutdown.mode says (poweroff over SSH by default, the guest agent, or the ACPI power button; the ACPI power button when that fails) and waits up to --timeout seconds; a machine still running then is powered off. --force powers off at once, like pulling the plug. Disks and the machine's state are kept: 'vmenv up' starts it again.`;

  static override examples = [
    { description: 'Shut down every machine of the project.', command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Give one machine two minutes to shut down.', command: '<%= config.bin %> <%= command.id %> db --timeout 120' },
    { description: 'Power a hung machine off.', command: '<%= config.bin %> <%= command.id %> web --force' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
    force: Flags.boolean({ char: 'f', description: 'Power off at once instead of a graceful shutdown.' }),
    timeout: Flags.integer({
      description: 'Seconds to wait for a graceful shutdown before powering off (default: shutdown.timeout in vmenv.yaml, else 60).',
      min: 0,
      helpValue: '<seconds>',
    }),
    ...parallelFlag,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Halt);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { haltProject } = await import('../../services/halt.js');
    await haltProject(project, machines, {
      signal: this.signal,
      parallel: flags.parallel,
      force: flags.force,
      timeoutSeconds: flags.timeout,
      onNote: (machine, note) => process.stderr.write(`${machine}: ${note}\n`),
      onHalted: (machine, how) => this.log(`${machine}: ${how === 'already off' ? 'already shut off' : how === 'graceful' ? 'shut down' : 'powered off'}`),
    });
  }
}
