/**
 * What goes over node's IPC channels: from the forwarder to the process that started
 * it (once, at start), and between the forwarder and its relay inside a network
 * namespace (listening sockets handed over with the messages).
 */
import type { ForwardMapping, ForwardProtocol } from './spec.js';

/** The command-line marker of a forwarder process (checked before signalling a pid). */
export const FORWARDER_FLAG = '--vmenv-forwarder';
/** The command-line marker of its relay inside a network namespace. */
export const RELAY_FLAG = '--vmenv-forwarder-relay';
/** `--tag=<tag>`: who the forwarder is for (a machine id), for the pid check. */
export const TAG_PREFIX = '--tag=';

/** A mapping as bound: hostPort is the real port (the kernel's choice when the spec said 0). */
export type BoundMapping = ForwardMapping;

export type StartReport =
  | { kind: 'ready'; listeners: BoundMapping[] }
  | { kind: 'bind-failed'; protocol: ForwardProtocol; hostIp: string; hostPort: number; code: string; message: string }
  | { kind: 'failed'; message: string };

export type RelayCommand =
  /** With a listening net.Server or dgram.Socket as the handle. */
  | { kind: 'serve'; index: number; protocol: ForwardProtocol; guestIp: string; guestPort: number; udpIdleMs: number }
  /** With a net.Socket the forwarder accepted before handing listener `index` over. */
  | { kind: 'adopt'; index: number };

export type RelayReport = { kind: 'relay-up' } | { kind: 'serving'; index: number } | { kind: 'relay-failed'; message: string };

function hasKind(v: unknown): v is { kind: unknown } {
  return typeof v === 'object' && v !== null && 'kind' in v;
}

export function isStartReport(v: unknown): v is StartReport {
  return hasKind(v) && (v.kind === 'ready' || v.kind === 'bind-failed' || v.kind === 'failed');
}

export function isRelayCommand(v: unknown): v is RelayCommand {
  return hasKind(v) && (v.kind === 'serve' || v.kind === 'adopt') && typeof (v as { index?: unknown }).index === 'number';
}

export function isRelayReport(v: unknown): v is RelayReport {
  return hasKind(v) && (v.kind === 'relay-up' || v.kind === 'serving' || v.kind === 'relay-failed');
}
