import type { MachineConfig, ProjectConfig } from '../config/types.js';
import { LibvirtConnections, type MachineHandle } from '../hosts/handle.js';
import type { MachineState } from '../project/state.js';

/**
 * Runs `fn` for each machine with a handle on its libvirt, one after another or all at
 * once. In parallel every machine runs to its end; the first failure is then rethrown.
 */
export async function forEachMachine(
  project: ProjectConfig,
  machines: readonly MachineConfig[],
  options: { signal?: AbortSignal; parallel?: boolean | undefined; records?: ReadonlyMap<string, MachineState> },
  fn: (h: MachineHandle) => Promise<void>,
): Promise<void> {
  const connections = new LibvirtConnections(options.signal);
  const handle = (m: MachineConfig): Promise<MachineHandle> => connections.handle(project, m, options.records?.get(m.name));
  try {
    if (!options.parallel) {
      for (const m of machines) await fn(await handle(m));
      return;
    }
    const results = await Promise.allSettled(machines.map(async (m) => fn(await handle(m))));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 1) {
      for (const f of failed.slice(1)) process.stderr.write(`Also failed: ${f.reason instanceof Error ? f.reason.message : String(f.reason)}\n`);
    }
    if (failed[0]) throw failed[0].reason;
  } finally {
    await connections.closeAll();
  }
}
