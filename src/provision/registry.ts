/**
 * The provisioner types, by `type:` in vmenv.yaml: the one place a new type is added
 * (its config shape goes in config/types.ts and its checks in config/validate.ts).
 */
import type { Provisioner } from '../config/types.js';
import type { MachineHandle } from '../hosts/handle.js';
import type { SshSession } from '../ssh/index.js';
import { provisionWithAnsible } from './ansible.js';
import { uploadFile } from './file.js';
import { runShell } from './shell.js';

/** What a provisioner runs with: the machine, an open session to it, where its output goes. */
export interface ProvisionerRun {
  h: MachineHandle;
  session: SshSession;
  /** Its name in messages: `name:`, else "<type> #<n>". */
  label: string;
  out: NodeJS.WritableStream;
  signal?: AbortSignal;
}

/** Runs one provisioner by its type; a new type is one more case (the switch must cover every type). */
export function runProvisioner(p: Provisioner, run: ProvisionerRun): Promise<void> {
  switch (p.type) {
    case 'shell':
      return runShell(p, run);
    case 'file':
      return uploadFile(p, run);
    case 'ansible':
      return provisionWithAnsible(run.h, p, run.label, run.out, run.signal);
  }
}
