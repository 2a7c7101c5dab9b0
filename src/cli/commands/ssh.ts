import { Flags } from '@oclif/core';
import { existsSync } from 'node:fs';
import type { LibvirtClient } from '../../libvirt/client.js';
import type { MachineRef } from '../../hosts/handle.js';
import { SHARED_SSH_IDLE_S, sharedSshArgs, sharedSshSocket } from '../../access/shared-ssh.js';
import { BaseCommand } from '../base-command.js';
import { UserError } from '../../errors.js';
import { cwdFlag, machineArg } from '../machine-flags.js';
import { projectMachines } from '../../services/project.js';

export default class Ssh extends BaseCommand {
  static override summary = 'Open a shell on a machine over SSH, or run a command there.';
  static override description = `Runs OpenSSH's ssh with the machine's own key, checking the host key pinned at first contact; machines on a remote libvirt host are reached through that host. The first run leaves its connection open (ControlMaster) for ${SHARED_SSH_IDLE_S / 60} idle minutes, and later runs share it: no new handshake. halt, suspend, reload and destroy close it. Arguments after -- are passed to ssh unchanged. Where OpenSSH is not installed, vmenv's own SSH client is used.`;

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
    // Loaded while the project is read: OpenSSH is what nearly every run starts.
    const openSsh = import('../../access/openssh-run.js');
    openSsh.catch(() => undefined);
    const { args, argv, flags } = await this.parse(Ssh);
    const extra = argv.slice(args.machine === undefined ? 0 : 1).filter((a): a is string => typeof a === 'string');
    const { project, machines } = await projectMachines(flags.cwd, args.machine === undefined ? [] : [args.machine]);
    if (machines.length !== 1) {
      throw new UserError('this project has several machines: name the one to connect to', { hint: `Its machines: ${machines.map((m) => m.name).join(', ')}` });
    }
    const machine = machines[0]!;
    const [{ ProjectState }, { noAddress, requireRecord, whyUnreachable, writeMachineSshConfig }] = await Promise.all([
      import('../../project/state.js'),
      import('../../access/machine-ssh-config.js'),
    ]);
    const m = { project, machine, state: new ProjectState(project.dir) };
    // libvirt is asked only when SSH is slow to connect or fails: does the machine run at all?
    let opened: Promise<LibvirtClient> | undefined;
    const libvirt = (): Promise<LibvirtClient> =>
      (opened ??= import('../../hosts/handle.js').then(async ({ openMachine }) => (await openMachine(project, machine, this.signal)).client));
    try {
      const record = await requireRecord(m);
      const whyNot = async (): Promise<UserError | undefined> => whyUnreachable(m, record, libvirt);
      if (!record.ip) throw (await whyNot()) ?? noAddress(m);
      const code = await this.runOpenSsh(m, extra, flags, whyNot, () => writeMachineSshConfig(m, record), openSsh);
      if (code !== 'missing') {
        process.exitCode = code;
        return;
      }
      if (flags.plain || extra.length > 0) {
        throw new UserError("OpenSSH's ssh is not on PATH: --plain and extra ssh arguments need it", { hint: 'Install it: sudo apt-get install openssh-client' });
      }
      process.exitCode = await this.runBuiltinSsh(m, flags.command, libvirt);
    } finally {
      await opened?.then((c) => c.close()).catch(() => undefined);
    }
  }

  /** OpenSSH with the machine's config, through the machine's shared connection (unless --plain). */
  private async runOpenSsh(
    m: MachineRef,
    extra: string[],
    flags: { plain: boolean; command?: string | undefined },
    whyNot: () => Promise<UserError | undefined>,
    writeConfig: () => Promise<{ path: string }>,
    openSsh: Promise<typeof import('../../access/openssh-run.js')>,
  ): Promise<number | 'missing'> {
    const [{ path }, { ensureRuntimeDir }, { runOpenSsh }] = await Promise.all([
      writeConfig(),
      import('../../util/runtime-dir.js'),
      openSsh,
    ]);
    const dir = flags.plain ? undefined : await ensureRuntimeDir();
    const socket = dir === undefined ? undefined : sharedSshSocket(m.state.machineDir(m.machine.name), dir);
    const args = [
      '-F', path,
      ...(socket === undefined ? [] : sharedSshArgs(socket)),
      ...(flags.plain ? ['-o', 'IdentitiesOnly=no', '-o', 'User=' + (process.env.USER ?? 'root')] : []),
      ...extra,
      m.machine.name,
      ...(flags.command === undefined ? [] : [flags.command]),
    ];
    this.leaveCtrlCToChild();
    return runOpenSsh({ args, whyNot, connected: () => socket !== undefined && existsSync(socket) });
  }

  /** vmenv's own SSH client (ssh2), where OpenSSH is not installed. */
  private async runBuiltinSsh(m: MachineRef, command: string | undefined, libvirt: () => Promise<LibvirtClient>): Promise<number> {
    const { connectToMachine } = await import('../../access/ssh-access.js');
    const session = await connectToMachine(m, { signal: this.signal, libvirt, askLibvirtAfterMs: 1000 });
    try {
      const result =
        command !== undefined
          ? await session.exec(command, {
              onStdout: (c) => process.stdout.write(c),
              onStderr: (c) => process.stderr.write(c),
              ...(process.stdin.isTTY ? {} : { stdin: process.stdin }),
            })
          : await session.shell();
      return result.code ?? 255;
    } finally {
      await session.close();
    }
  }
}
