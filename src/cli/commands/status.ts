import type { MachineState } from '../../project/state.js';
import { BaseCommand } from '../base-command.js';
import { cwdFlag, machinesArg } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

export default class Status extends BaseCommand {
  static override summary = 'Show the state of the machines.';
  static override description = `For each machine: its state (not created, running, paused, saved, shut off), its libvirt domain and host, its IP address and where that came from (DHCP lease, guest agent, user-mode forward). 'vmenv global-status' lists the machines of every project. With --json, prints the same as data.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: "Show the project's machines.", command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Show one machine, as JSON.', command: '<%= config.bin %> <%= command.id %> web --json' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
  };

  async run(): Promise<unknown> {
    const { argv, flags } = await this.parse(Status);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { forEachMachine } = await import('../../services/batch.js');
    const { machineStatus } = await import('../../hosts/machine-status.js');
    const { ProjectState } = await import('../../project/state.js');
    const state = new ProjectState(project.dir);
    const records = new Map<string, MachineState>();
    for (const m of machines) {
      const record = await state.read(m.name);
      if (record) records.set(m.name, record);
    }
    const found = new Map<string, Awaited<ReturnType<typeof machineStatus>>>();
    // Machines never created need no connection to libvirt; the others share one per URI.
    await forEachMachine(project, machines.filter((m) => records.has(m.name)), { signal: this.signal, parallel: true, records }, async (h) => {
      found.set(h.machine.name, await machineStatus(h, records.get(h.machine.name)));
    });
    const reports = machines.map((m) => found.get(m.name) ?? { machine: m.name, status: 'not created' as const });
    if (!this.jsonEnabled()) {
      for (const r of reports) this.log(`${r.machine.padEnd(16)} ${r.status.padEnd(12)}${'ip' in r && r.ip ? ` ${r.ip}` : ''}`);
    }
    return { project: project.dir, machines: reports };
  }
}
