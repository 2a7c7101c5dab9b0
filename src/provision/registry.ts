/**
 * The provisioner types, by `type:` in vmenv.yaml: the one place a new type is added
 * (its config shape goes in config/types.ts and its checks in config/validate.ts).
 */
import type { Provisioner, ProvisionerType } from '../config/types.js';
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

export type ProvisionerOf<T extends ProvisionerType> = Extract<Provisioner, { type: T }>;

/** A provisioner type: how one provisioner of it runs. */
export interface ProvisionerKind<T extends ProvisionerType> {
  run(p: ProvisionerOf<T>, run: ProvisionerRun): Promise<void>;
}

const kinds: { readonly [T in ProvisionerType]: ProvisionerKind<T> } = {
  shell: { run: runShell },
  file: { run: uploadFile },
  ansible: { run: (p, r) => provisionWithAnsible(r.h, p, r.label, r.out, r.signal) },
};

export function runProvisioner(p: Provisioner, run: ProvisionerRun): Promise<void> {
  // `kinds` pairs each type with its own provisioner shape; TypeScript cannot follow that pairing through `p.type`.
  const kind = kinds[p.type] as ProvisionerKind<ProvisionerType> as { run(p: Provisioner, run: ProvisionerRun): Promise<void> };
  return kind.run(p, run);
}
