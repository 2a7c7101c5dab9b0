import { join } from 'node:path';
import type { MachineConfig } from '../config/types.js';
import { DEFAULT_NETWORK } from '../net/network.js';
import { newMachineState, type MachineNics, type MachineState, type ProjectState } from '../project/state.js';
import { MACHINE_KEY_FILE } from '../access/login.js';
import { machineMac } from './domain-plan.js';

/** The machine's record for a first `up`, or its existing one. */
export async function machineRecord(state: ProjectState, machine: MachineConfig, uri: string): Promise<{ record: MachineState; isNew: boolean }> {
  const existing = await state.read(machine.name);
  if (existing) return { record: existing, isNew: false };
  return {
    record: newMachineState({
      machine: machine.name,
      uri,
      pool: machine.pool,
      ssh: { username: machine.ssh.username, privateKeyPath: join(state.machineDir(machine.name), MACHINE_KEY_FILE) },
    }),
    isNew: true,
  };
}

/** The NICs recorded for a machine (state from before NICs were recorded: one, NAT on its configured network). */
export function recordedNics(record: MachineState, machine: MachineConfig, resourceName: string): MachineNics {
  return record.nics ?? [{ mode: 'nat', network: machine.network.name ?? DEFAULT_NETWORK, mac: machineMac(resourceName) }];
}
