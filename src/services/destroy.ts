import type { MachineConfig, ProjectConfig } from '../config/types.js';
import { destroyMachine } from '../lifecycle/destroy.js';
import { eachMachineLocked } from './machine-batch.js';

export interface DestroyProjectOptions {
  signal: AbortSignal;
  parallel?: boolean | undefined;
  /** Try a graceful shutdown before removing each machine. */
  graceful?: boolean | undefined;
  /** Told each machine's name once it is destroyed. */
  onDestroyed?: ((machine: string) => void) | undefined;
}

/** `vmenv destroy`: removes each machine and what vmenv made for it. */
export async function destroyProject(project: ProjectConfig, machines: readonly MachineConfig[], options: DestroyProjectOptions): Promise<void> {
  const { signal, onDestroyed } = options;
  // Only a graceful destroy talks to the guest (and so loads SSH).
  const halt = options.graceful === true ? (await import('../lifecycle/halt.js')).haltMachine : undefined;
  await eachMachineLocked(project, machines, 'destroy', { signal, parallel: options.parallel, onResult: onDestroyed }, async (h) => {
    // A machine not created (no domain) has nothing to halt: halt says so, and that is no failure here.
    if (halt) await halt(h, { signal }).catch(() => undefined);
    await destroyMachine(h);
  });
}
