import { endSharedSsh } from '../access/shared-ssh.js';
import { stopNatForwarder } from '../net/forwarding.js';
import type { MachineState, ProjectState } from '../project/state.js';

/**
 * Stops what runs on the host for a machine that goes down (halt, suspend, destroy):
 * its port forwarder and its shared SSH connection.
 */
export async function releaseHostSide(state: ProjectState, record: MachineState): Promise<void> {
  await stopNatForwarder(state, record);
  await endSharedSsh(state.machineDir(record.machine));
}
