/**
 * Guests reachable only from inside a network namespace. The forwarder binds its
 * listeners in the host's namespace, then starts one relay process inside the guests'
 * (`ip netns exec <ns> node main.js --vmenv-forwarder-relay`) and hands it the bound
 * sockets over node's IPC channel. A socket keeps the namespace it was made in, so the
 * relay accepts on the host's ports and connects to the guests from inside: one process
 * for every connection and UDP client, no `nc` per connection.
 *
 * Between handing a listener over and closing its own copy, the forwarder may still
 * accept a TCP connection itself; it passes that one on too. A UDP datagram that lands
 * in that instant is lost (before the forwarder reports ready, so no client expects it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type dgram from 'node:dgram';
import type net from 'node:net';
import { exitText } from '../../util/exit-text.js';
import { closeListener, type Listener } from './listen.js';
import { isRelayCommand, isRelayReport, RELAY_FLAG, type RelayCommand, type RelayReport } from './messages.js';
import { relayTcp, relayUdp, type Log, type Relay, type TcpRelay } from './relay.js';

export interface NetnsRelay {
  readonly pid: number;
  /** Settles when the relay process ends: how it ended. */
  readonly exited: Promise<string>;
  /** Ends the relay (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
}

export interface NetnsRelayOptions {
  netns: string;
  listeners: Listener[];
  udpIdleMs: number;
  /** The path of main.js, run again inside the namespace. */
  entry: string;
  log: Log;
  timeoutMs?: number;
}

const STDERR_KEEP = 2_000;

export class NetnsRelayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetnsRelayError';
  }
}

/** Starts the relay inside `netns` and hands it every listener; the local copies are closed once it serves them. */
export async function startNetnsRelay(o: NetnsRelayOptions): Promise<NetnsRelay> {
  const child = spawn('ip', ['netns', 'exec', o.netns, process.execPath, o.entry, RELAY_FLAG], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_KEEP);
  });
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(exitText(code, signal)));
    child.once('error', (err) => resolve(`could not start: ${err.message}`));
  });
  const relay: NetnsRelay = {
    pid: child.pid ?? -1,
    exited,
    stop: () => stopChild(child, exited),
  };

  const failure = exited.then((how) => {
    const said = stderrTail.trim().split('\n').slice(-3).join(' / ');
    throw new NetnsRelayError(`the relay in network namespace ${o.netns} ended (${how})${said === '' ? '' : `: ${said}`}`);
  });
  failure.catch(() => undefined);
  const timeoutMs = o.timeoutMs ?? 8_000;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NetnsRelayError(`the relay in network namespace ${o.netns} did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  deadline.catch(() => undefined);

  const reports: RelayReport[] = [];
  let wake: (() => void) | undefined;
  child.on('message', (m: unknown) => {
    if (!isRelayReport(m)) return;
    reports.push(m);
    wake?.();
  });
  const next = async (want: (r: RelayReport) => boolean): Promise<void> => {
    for (;;) {
      const i = reports.findIndex((r) => want(r) || r.kind === 'relay-failed');
      if (i >= 0) {
        const r = reports.splice(i, 1)[0] as RelayReport;
        if (r.kind === 'relay-failed') throw new NetnsRelayError(`the relay in network namespace ${o.netns} failed: ${r.message}`);
        return;
      }
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), failure, deadline]);
    }
  };

  try {
    await next((r) => r.kind === 'relay-up');
    for (const [index, l] of o.listeners.entries()) {
      const command: RelayCommand = { kind: 'serve', index, protocol: l.protocol, guestIp: l.mapping.guestIp, guestPort: l.mapping.guestPort, udpIdleMs: o.udpIdleMs };
      if (l.protocol === 'tcp') {
        l.server.on('connection', (s: net.Socket) => {
          child.send({ kind: 'adopt', index } satisfies RelayCommand, s, (err) => {
            if (err) o.log(`tcp: could not pass an early connection to the relay: ${err.message}`);
          });
        });
      }
      const handle: net.Server | dgram.Socket = l.protocol === 'tcp' ? l.server : l.socket;
      await new Promise<void>((resolve, reject) => child.send(command, handle, (err) => (err ? reject(err) : resolve())));
      await next((r) => r.kind === 'serving' && r.index === index);
      await closeListener(l);
    }
    return relay;
  } catch (err) {
    await relay.stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function stopChild(child: ChildProcess, exited: Promise<string>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 1_500);
  await exited;
  clearTimeout(t);
}

/** The relay's side, run inside the namespace: serves what the forwarder hands over until told to stop or orphaned. */
export function runNetnsRelay(log: Log): void {
  const send = process.send?.bind(process);
  if (send === undefined) {
    log('the relay needs an IPC channel to its forwarder; it is not meant to be run by hand');
    process.exit(2);
  }
  const relays: Relay[] = [];
  const tcp = new Map<number, TcpRelay>();
  const early = new Map<number, net.Socket[]>();
  let stopping = false;

  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`relay stopping: ${why}`);
    await Promise.all(relays.map((r) => r.close()));
    process.exit(0);
  };

  process.on('message', (m: unknown, handle: unknown) => {
    if (!isRelayCommand(m)) return;
    try {
      if (m.kind === 'adopt') {
        const socket = handle as net.Socket;
        (socket as { allowHalfOpen: boolean }).allowHalfOpen = true;
        const r = tcp.get(m.index);
        if (r !== undefined) r.adopt(socket);
        else early.set(m.index, [...(early.get(m.index) ?? []), socket]);
        return;
      }
      const guest = { guestIp: m.guestIp, guestPort: m.guestPort };
      if (m.protocol === 'tcp') {
        const r = relayTcp(handle as net.Server, guest, log);
        tcp.set(m.index, r);
        relays.push(r);
        for (const s of early.get(m.index) ?? []) r.adopt(s);
        early.delete(m.index);
      } else {
        relays.push(relayUdp(handle as dgram.Socket, guest, m.udpIdleMs, log));
      }
      send({ kind: 'serving', index: m.index } satisfies RelayReport);
    } catch (err) {
      send({ kind: 'relay-failed', message: (err as Error).message } satisfies RelayReport);
    }
  });
  // The forwarder gone (even by SIGKILL) closes the channel: nothing is left serving.
  process.on('disconnect', () => void stop('the forwarder is gone'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  send({ kind: 'relay-up' } satisfies RelayReport);
}
