import { Flags } from '@oclif/core';
import type { LibvirtClient } from '../libvirt/client.js';
import { BaseCommand } from '../ui/base-command.js';
import { UserError } from '../ui/errors.js';
import { cwdFlag, machineArg } from '../ui/machine-flags.js';
import { projectMachines } from '../ui/project.js';

export default class Ssh extends BaseCommand {
  static override summary = 'Open a shell on a machine over SSH, or run a command there.';
  static override description = `Connects with the machine's own key and verifies the host key pinned at first contact. Machines on a remote libvirt host are reached through that host. Arguments after -- are passed to ssh unchanged.`;

  static override examples = [
    { description: "Open a shell on the project's machine.", command: '<%= config.bin %> <%= command.id %>' },
    { description: 'Run one command on a machine.', command: "<%= config.bin %> <%= command.id %> web -c 'uname -a'" },
    { description: 'Forward a port with extra ssh options.', command: '<%= config.bin %> <%= command.id %> web -- -L 8080:localhost:80' },
  ];

  static override args = machineArg;
  static override strict = false;
  static override flags = {
    ...cwdFlag,
    command: Flags.string({ char: 'c', description: 'Run this command instead of a login shell.', helpValue: '<command>' }),
    plain: Flags.boolean({ description: "Connect without vmenv's key and user: let ssh ask for a login." }),
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Ssh);
    const extra = argv.slice(args.machine === undefined ? 0 : 1).filter((a): a is string => typeof a === 'string');
    const { project, machines } = await projectMachines(flags.cwd, args.machine === undefined ? [] : [args.machine]);
    if (machines.length !== 1) {
      throw new UserError('this project has several machines: name the one to connect to', { hint: `Its machines: ${machines.map((m) => m.name).join(', ')}` });
    }
    const machine = machines[0]!;
    const { ProjectState } = await import('../project/state.js');
    const m = { project, machine, state: new ProjectState(project.dir) };
    if (flags.plain || extra.length > 0) {
      // OpenSSH itself, with the machine's config: extra arguments go to ssh unchanged.
      const { writeMachineSshConfig } = await import('../machine/ssh-access.js');
      const { path } = await writeMachineSshConfig(m);
      const { spawnSync } = await import('node:child_process');
      const sshArgs = ['-F', path, ...(flags.plain ? ['-o', 'IdentitiesOnly=no', '-o', 'User=' + (process.env.USER ?? 'root')] : []), ...extra, machine.name];
      if (flags.command !== undefined) sshArgs.push(flags.command);
      const r = spawnSync('ssh', sshArgs, { stdio: 'inherit' });
      this.exit(r.status ?? 255);
    }
    const { connectToMachine } = await import('../machine/ssh-access.js');
    // libvirt is asked only when SSH is slow to connect or fails: does the machine run at all?
    let opened: Promise<LibvirtClient> | undefined;
    const libvirt = (): Promise<LibvirtClient> =>
      (opened ??= import('../machine/handle.js').then(async ({ openMachine }) => (await openMachine(project, machine, this.signal)).client));
    try {
      const session = await connectToMachine(m, { signal: this.signal, libvirt, askLibvirtAfterMs: 1000 });
      try {
        const result =
          flags.command !== undefined
            ? await session.exec(flags.command, {
                onStdout: (c) => process.stdout.write(c),
                onStderr: (c) => process.stderr.write(c),
                ...(process.stdin.isTTY ? {} : { stdin: process.stdin }),
              })
            : await session.shell();
        process.exitCode = result.code ?? 255;
      } finally {
        await session.close();
      }
    } finally {
      await opened?.then((c) => c.close()).catch(() => undefined);
    }
  }
}
