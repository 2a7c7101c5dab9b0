import { Args, Flags } from '@oclif/core';
import type { BringUpOptions } from '../services/bring-up-batch.js';

/**
 * Arguments and flags shared by the machine commands. Machine commands take any
 * number of machine names (as named in vmenv.yaml); none means every machine of the
 * project. They set `static strict = false` so the argument may repeat.
 *
 * Every argument sets `ignoreStdin`: oclif would otherwise read a missing argument from
 * a piped stdin, eating what `vmenv ssh -c` is to pass on to the guest.
 */
export const machinesArg = {
  machine: Args.string({
    ignoreStdin: true,
    description: 'Machine names from vmenv.yaml (default: every machine of the project).',
  }),
};

/** One machine: the named one, or the project's only (or primary) machine. */
export const machineArg = {
  machine: Args.string({
    ignoreStdin: true,
    description: "Machine name from vmenv.yaml (default: the project's primary machine).",
  }),
};

export const provisionFlags = {
  provision: Flags.boolean({
    description: 'Run the provisioners (default: only on the first up; --no-provision skips them).',
    allowNo: true,
  }),
  'provision-with': Flags.string({
    description: 'Run only these provisioners, by name or type (shell, file, ansible). Repeatable.',
    multiple: true,
    helpValue: '<name>',
  }),
};

/** What provisionFlags and parallelFlag ask of the services that bring machines up. */
export function bringUpOptions(flags: { provision?: boolean | undefined; 'provision-with'?: string[] | undefined; parallel?: boolean | undefined }): Omit<BringUpOptions, 'signal'> {
  return { parallel: flags.parallel, provision: flags.provision, only: flags['provision-with'] };
}

export const parallelFlag = {
  parallel: Flags.boolean({
    description: 'Act on the machines in parallel (shared resources are locked).',
    allowNo: true,
  }),
};

export const cwdFlag = {
  cwd: Flags.string({
    description: 'Work in this folder instead of the current one (default: $VMENV_CWD, else the current folder).',
    helpValue: '<dir>',
  }),
};
