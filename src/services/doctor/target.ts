/**
 * What `vmenv doctor` and `vmenv prune` look at: the libvirt URI (--uri, else the
 * project's, else the default choice), and from the project around the current folder
 * (if any) the pool and management network its machines use — else vmenv's defaults.
 */
import { ConfigError, ProjectNotFoundError } from '../../config/errors.js';
import { loadProject } from '../../config/load.js';
import type { MachineConfig, NetworkMode } from '../../config/types.js';
import { DEFAULT_NETWORK } from '../../net/network.js';
import { UserError } from '../../errors.js';

/** The `pool` default of vmenv.yaml (src/config/fields.ts). */
export const DEFAULT_POOL = 'default';

export interface CheckTarget {
  /** undefined: vmenv's default choice ($VMENV_LIBVIRT_URI, …, system, session). */
  uri?: string;
  /** Where `uri` came from. */
  uriReason?: string;
  pool: string;
  /** "vmenv.yaml" or "default". */
  poolSource: string;
  network: { mode?: NetworkMode; name: string; subnet?: string; source: string };
  project?: {
    dir: string;
    path: string;
    machines: string[];
    /** The machine whose settings are checked (the primary one, else the first). */
    machine: string;
    warnings: string[];
  };
  /** vmenv.yaml was found but cannot be used. */
  projectError?: { path: string; message: string };
}

function fromMachine(m: MachineConfig): Pick<CheckTarget, 'pool' | 'poolSource' | 'network'> {
  return {
    pool: m.pool,
    poolSource: 'vmenv.yaml',
    network: {
      ...(m.network.mode !== undefined ? { mode: m.network.mode } : {}),
      name: m.network.name ?? DEFAULT_NETWORK,
      ...(m.network.subnet !== undefined ? { subnet: m.network.subnet } : {}),
      source: 'vmenv.yaml',
    },
  };
}

export async function checkTarget(cwd: string, uriFlag?: string): Promise<CheckTarget> {
  const target: CheckTarget = {
    pool: DEFAULT_POOL,
    poolSource: 'default',
    network: { name: DEFAULT_NETWORK, source: 'default' },
  };
  if (uriFlag !== undefined && uriFlag !== '') {
    target.uri = uriFlag;
    target.uriReason = 'given with --uri';
  }
  try {
    const { config, warnings } = await loadProject(cwd);
    const machine = config.primary ?? config.machines[0];
    if (machine === undefined) return target;
    Object.assign(target, fromMachine(machine));
    target.project = {
      dir: config.dir,
      path: config.path,
      machines: config.machines.map((m) => m.name),
      machine: machine.name,
      warnings: warnings.map((w) => `${w.path}: ${w.message}`),
    };
    if (target.uri === undefined && machine.uri !== undefined) {
      target.uri = machine.uri;
      target.uriReason = `set by "uri" in ${config.path}`;
    }
  } catch (err) {
    if (err instanceof ProjectNotFoundError) return target;
    if (err instanceof ConfigError) {
      target.projectError = { path: err.file, message: err.message };
      return target;
    }
    if (err instanceof UserError) {
      target.projectError = { path: cwd, message: err.message };
      return target;
    }
    throw err;
  }
  return target;
}
