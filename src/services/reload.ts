import type { MachineConfig, ProjectConfig } from '../config/types.js';
import { reloadMachine } from '../lifecycle/reload.js';
import { bringUpEachMachine, type BringUpOptions } from './bring-up-batch.js';

export interface ReloadProjectOptions extends BringUpOptions {
  /** Power off at once instead of a graceful shutdown. */
  force?: boolean | undefined;
  /** Told each change applied to a machine's domain ("memory 256 → 512 MiB"). */
  onChange?: ((machine: string, change: string) => void) | undefined;
}

/** `vmenv reload`: restarts each machine with its domain updated from vmenv.yaml, then syncs and provisions it. */
export function reloadProject(project: ProjectConfig, machines: readonly MachineConfig[], options: ReloadProjectOptions): Promise<void> {
  const { signal, onChange } = options;
  return bringUpEachMachine(project, machines, 'reload', options, (h) =>
    reloadMachine(h, { signal, force: options.force === true, onChange: (change) => onChange?.(h.machine.name, change) }),
  );
}
