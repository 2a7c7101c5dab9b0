/**
 * The forwarder process's work: bind every host end of the spec, relay (here, or from a
 * relay inside the guests' network namespace), tell the starter how binding went, and
 * stop cleanly on SIGTERM. One process per machine; the starter tracks it by pid.
 */
import { hostPortText } from '../../util/ip.js';
import { BindFailure, bindListeners, boundPort, closeListener, type Listener } from './listen.js';
import type { BoundMapping, StartReport } from './messages.js';
import { startNetnsRelay, type NetnsRelay } from './netns.js';
import { relayTcp, relayUdp, type Log, type Relay } from './relay.js';
import { DEFAULT_UDP_IDLE_MS, describeHostEnd, type ForwardSpec } from './spec.js';

export const ForwarderExit = { ok: 0, failed: 1, badSpec: 2, bug: 70 } as const;

/** Tells the starter, when there is one on the IPC channel, and lets go of the channel. */
export function sendStartReport(r: StartReport): Promise<void> {
  const send = process.send?.bind(process);
  if (send === undefined || !process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    send(r, undefined, {}, () => {
      // The starter has what it waited for; the channel would only keep it attached.
      if (process.connected) process.disconnect();
      resolve();
    });
  });
}

/** Tells the starter and the log. */
function report(r: StartReport, log: Log): Promise<void> {
  log(r.kind === 'ready' ? `ready: ${r.listeners.map(mappingText).join(', ')}` : `not started: ${r.message}`);
  return sendStartReport(r);
}

function mappingText(m: BoundMapping): string {
  return `${describeHostEnd(m)} → ${hostPortText(m.guestIp, m.guestPort)}`;
}

/** Runs until SIGTERM/SIGINT (exit 0) or a failure (exit 1). `entry`: main.js, for the netns relay. */
export async function runForwarder(spec: ForwardSpec, entry: string, log: Log): Promise<void> {
  let listeners: Listener[];
  try {
    listeners = await bindListeners(spec.mappings);
  } catch (err) {
    if (!(err instanceof BindFailure)) throw err;
    const m = err.mapping;
    await report({ kind: 'bind-failed', protocol: m.protocol, hostIp: m.hostIp, hostPort: m.hostPort, code: err.code, message: `${describeHostEnd(m)}: ${err.message}` }, log);
    process.exit(ForwarderExit.failed);
  }
  const bound: BoundMapping[] = listeners.map((l) => ({ ...l.mapping, hostPort: boundPort(l) }));
  const udpIdleMs = spec.udpIdleMs ?? DEFAULT_UDP_IDLE_MS;

  let stopping = false;
  let relays: Relay[] = [];
  let netnsRelay: NetnsRelay | undefined;
  if (spec.netns !== undefined) {
    try {
      netnsRelay = await startNetnsRelay({ netns: spec.netns, listeners, udpIdleMs, entry, log });
    } catch (err) {
      await Promise.all(listeners.map(closeListener));
      await report({ kind: 'failed', message: (err as Error).message }, log);
      process.exit(ForwarderExit.failed);
    }
    log(`relay inside network namespace ${spec.netns}: pid ${netnsRelay.pid}`);
    void netnsRelay.exited.then((how) => {
      if (stopping) return;
      log(`the relay in network namespace ${spec.netns} ended (${how}); nothing is forwarded any more`);
      process.exit(ForwarderExit.failed);
    });
  } else {
    relays = listeners.map((l) => (l.protocol === 'tcp' ? relayTcp(l.server, l.mapping, log) : relayUdp(l.socket, l.mapping, udpIdleMs, log)));
  }

  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`stopping: ${why}`);
    await Promise.all([...relays.map((r) => r.close()), netnsRelay?.stop()]);
    log('stopped');
    process.exit(ForwarderExit.ok);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // Detached from any terminal; a hangup is no reason to drop the machine's ports.
  process.on('SIGHUP', () => log('SIGHUP ignored'));

  await report({ kind: 'ready', listeners: bound }, log);
}
