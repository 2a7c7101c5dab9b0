import { join } from 'node:path';
import { forwarderRunning, startForwarder, stopForwarder } from './forward/process.js';
import { managementNic, type MachineState, type ProjectState } from '../project/state.js';

/**
 * The forwarded ports of a NAT machine are served by a process of vmenv's own (QEMU
 * serves them in user mode). It is started once the guest's IP is known and stopped
 * with the machine; its pid is in the state, so any later command can stop it.
 */
export async function startNatForwarder(
  state: ProjectState,
  record: MachineState,
  ip: string,
  options: { guestNetns?: string | undefined; signal?: AbortSignal },
): Promise<number> {
  const ports = managementNic(record)?.mode === 'nat' ? (record.ports ?? []) : [];
  const spec = {
    mappings: ports.map((p) => ({ protocol: p.protocol, hostIp: p.hostIp, hostPort: p.host, guestIp: ip, guestPort: p.guest })),
    ...(options.guestNetns ? { netns: options.guestNetns } : {}),
  };
  const serves = JSON.stringify(spec);
  const f = record.forwarder;
  // Already serving exactly this (an `up` of a running machine): keep its connections.
  if (f && f.serves === serves && forwarderRunning(f.pid, { tag: f.tag, ...(f.startedAt !== undefined ? { startedAt: f.startedAt } : {}) })) return ports.length;
  await stopNatForwarder(state, record);
  if (ports.length === 0) return 0;
  const tag = record.domain?.uuid ?? record.machine;
  const running = await startForwarder(
    spec,
    { logFile: join(state.machineDir(record.machine), 'forward.log'), tag, ...(options.signal ? { signal: options.signal } : {}) },
  );
  record.forwarder = { pid: running.pid, tag, serves, ...(running.startedAt !== undefined ? { startedAt: running.startedAt } : {}) };
  await state.write(record);
  return ports.length;
}

/** Stops the machine's forwarder, if one runs, and forgets it. */
export async function stopNatForwarder(state: ProjectState, record: MachineState): Promise<void> {
  const f = record.forwarder;
  if (!f) return;
  await stopForwarder(f.pid, { tag: f.tag, ...(f.startedAt !== undefined ? { startedAt: f.startedAt } : {}) });
  delete record.forwarder;
  await state.write(record);
}
