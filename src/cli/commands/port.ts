import { managementNic, type PortMapping } from '../../project/state.js';
import { BaseCommand } from '../base-command.js';
import { cwdFlag, machinesArg } from '../machine-flags.js';
import { machineNames, projectMachines } from '../../services/project.js';

type PortRow = PortMapping & {
  /** `ssh` for the forward vmenv itself uses; `forwarded_ports` for the configured ones. */
  source: 'ssh' | 'forwarded_ports';
};

export default class Port extends BaseCommand {
  static override summary = 'List the ports forwarded from the host to the machines.';
  static override description = `For each machine: the host ports forwarded to its guest ports, as they are in effect (a port moved by auto_correct shows where it went). With user-mode networking this includes the SSH port vmenv forwards for itself.`;

  static override enableJsonFlag = true;
  static override examples = [
    { description: "List the project's forwarded ports.", command: '<%= config.bin %> <%= command.id %>' },
    { description: 'The ports of one machine, as JSON.', command: '<%= config.bin %> <%= command.id %> web --json' },
  ];

  static override args = machinesArg;
  static override strict = false;
  static override flags = { ...cwdFlag };

  async run(): Promise<unknown> {
    const { argv, flags } = await this.parse(Port);
    const { project, machines } = await projectMachines(flags.cwd, machineNames(argv));
    const { ProjectState } = await import('../../project/state.js');
    const state = new ProjectState(project.dir);
    const result: { machine: string; created: boolean; ports: PortRow[] }[] = [];
    for (const m of machines) {
      const record = await state.read(m.name);
      const ports: PortRow[] = [];
      const nic = record && managementNic(record);
      if (nic?.mode === 'user') ports.push({ guest: m.ssh.port, host: nic.sshHostPort, hostIp: '127.0.0.1', protocol: 'tcp', source: 'ssh' });
      for (const p of record?.ports ?? []) ports.push({ ...p, source: 'forwarded_ports' });
      result.push({ machine: m.name, created: record?.domain !== undefined, ports });
    }
    if (!this.jsonEnabled()) {
      for (const r of result) {
        if (!r.created) this.log(`${r.machine}: not created`);
        else if (r.ports.length === 0) this.log(`${r.machine}: no forwarded ports`);
        for (const p of r.ports) {
          this.log(`${r.machine}: ${String(p.guest).padStart(5)}/${p.protocol} (guest) => ${p.hostIp}:${p.host} (host)${p.source === 'ssh' ? '  ssh' : ''}`);
        }
      }
    }
    return { project: project.dir, machines: result };
  }
}
