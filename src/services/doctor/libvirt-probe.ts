/**
 * Can vmenv talk to libvirt at this URI, and if not, why not? For a local URI the
 * socket is tried first, so that "socket missing", "permission denied" and "daemon
 * down" are told apart before any libvirt call; then the connection is opened as
 * every vmenv command opens it (starting the per-user session daemon when needed).
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { LibvirtClient } from '../../libvirt/client.js';
import { isAccessDenied, LibvirtUriError } from '../../libvirt/errors.js';
import { openLibvirt } from '../../libvirt/index.js';
import { findDaemonBinary } from '../../libvirt/transport/session-daemon.js';
import { localSocketFor } from '../../libvirt/transport/select.js';
import { checkUnixSocket } from '../../libvirt/transport/unix.js';
import { formatLibvirtUri, parseLibvirtUri, resolveUri, type LibvirtUri } from '../../libvirt/uri.js';
import { describeError } from '../error-report.js';
import { diagnoseSocket, type LibvirtCause, type SocketFacts } from './socket-diagnosis.js';
import { groupName, userName } from '../../hosts/qemu-user.js';

export type { LibvirtCause } from './socket-diagnosis.js';

export interface LibvirtProbe {
  ok: boolean;
  /** The URI probed (as given, or the default vmenv would use). */
  uri: string;
  /** Why this URI: "--uri", "set by \"uri\" in vmenv.yaml", "set by $VMENV_LIBVIRT_URI", … */
  reason: string;
  /** A local URI's socket. */
  socket?: string;
  /** libvirt's version, "major.minor.release". */
  version?: string;
  hostname?: string;
  /** Why it cannot be used (not ok), or why it nearly could not (ok with a note). */
  cause?: LibvirtCause;
  error?: string;
  hint?: string;
  /** Said when ok: e.g. the session daemon was started for this check. */
  note?: string;
}

export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 2_000;

/** libvirt encodes versions as major * 1_000_000 + minor * 1000 + release. Pure. */
export function formatLibvirtVersion(encoded: bigint | number): string {
  const v = BigInt(encoded);
  return `${v / 1_000_000n}.${(v / 1000n) % 1000n}.${v % 1000n}`;
}

/** The URI that will be used when none is given, for messages. */
export function describeDefaultUri(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['VMENV_LIBVIRT_URI'] || env['LIBVIRT_DEFAULT_URI'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'default (qemu:///system if reachable, else qemu:///session)';
}

export class ProbeTimeout extends Error {
  constructor(
    readonly what: string,
    ms: number,
  ) {
    super(`no answer from libvirt after ${(ms / 1000).toFixed(1)} s while ${what}`);
    this.name = 'ProbeTimeout';
  }
}

/** `promise`, or a ProbeTimeout rejection after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeout(what, ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface ReachOptions {
  /** An explicit URI (--uri) or the configured one; undefined: the default choice. */
  uri?: string | undefined;
  /** Where `uri` came from, for the report: "--uri", "set by \"uri\" in vmenv.yaml". */
  uriReason?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface Reached {
  probe: LibvirtProbe;
  /** Open when the probe is ok; the caller closes it. */
  client?: LibvirtClient;
  /** The parsed URI, when it parsed. */
  target?: LibvirtUri;
}

async function pickTarget(options: ReachOptions): Promise<{ target: LibvirtUri; reason: string }> {
  if (options.uri !== undefined && options.uri.trim() !== '') {
    return { target: parseLibvirtUri(options.uri), reason: options.uriReason ?? 'given' };
  }
  const resolved = await resolveUri(options.env === undefined ? {} : { env: options.env });
  return { target: resolved.uri, reason: resolved.reason };
}

/** Owner, group and mode of the socket, or of the first folder on its way this user cannot search. */
async function socketOwner(path: string): Promise<SocketFacts['owner']> {
  for (const p of [path, dirname(path)]) {
    try {
      const s = await stat(p);
      const [user, group] = await Promise.all([userName(s.uid), groupName(s.gid)]);
      return { path: p, user: user ?? String(s.uid), group: group ?? String(s.gid), mode: (s.mode & 0o7777).toString(8).padStart(4, '0') };
    } catch {
      // not visible from here: try its folder
    }
  }
  return undefined;
}

async function socketFacts(target: LibvirtUri, env: NodeJS.ProcessEnv): Promise<SocketFacts> {
  const choice = localSocketFor(target, { env });
  const state = await checkUnixSocket(choice.path, SOCKET_TIMEOUT_MS);
  const facts: SocketFacts = {
    uri: formatLibvirtUri(target),
    socket: choice.path,
    state,
    userDaemon: choice.user,
    explicit: choice.explicit,
    daemon: choice.daemon,
    daemonInstalled: findDaemonBinary(choice.daemon, env) !== undefined || findDaemonBinary('libvirtd', env) !== undefined,
    autostart: env['LIBVIRT_AUTOSTART'] !== '0',
    systemd: existsSync('/run/systemd/system'),
    root: (process.getuid?.() ?? 0) === 0,
    session: target.instance === 'session',
  };
  if (state === 'denied') {
    const owner = await socketOwner(choice.path);
    if (owner !== undefined) facts.owner = owner;
  }
  return facts;
}

function failure(uri: string, reason: string, err: unknown): LibvirtProbe {
  if (err instanceof ProbeTimeout) {
    return {
      ok: false,
      uri,
      reason,
      cause: 'timeout',
      error: `timeout: ${err.message}`,
      hint:
        err.what === 'connecting'
          ? 'Is the daemon running, and (for qemu+ssh:// or qemu+tcp://) is the host reachable? Raise --timeout on a slow link.'
          : 'The daemon accepted the connection but does not answer; is it stuck or overloaded? Try again, or restart it.',
    };
  }
  if (err instanceof LibvirtUriError) {
    return { ok: false, uri, reason, cause: 'bad-uri', error: err.message, hint: 'Use a URI such as qemu:///session, qemu:///system or qemu+ssh://user@host/system.' };
  }
  const report = describeError(err);
  const result: LibvirtProbe = { ok: false, uri, reason, cause: isAccessDenied(err) ? 'access-denied' : 'error', error: report.message };
  if (isAccessDenied(err)) {
    result.hint = "libvirt refused this user (polkit or its access rules): sudo usermod -aG libvirt $USER, then log in again — or use qemu:///session.";
  } else if (report.hint !== undefined) {
    result.hint = report.hint;
  }
  return result;
}

/**
 * Reaches libvirt as vmenv would, saying why not when it cannot; on success returns the
 * open connection (keepalive off: the checks that follow are short).
 */
export async function reachLibvirt(options: ReachOptions = {}): Promise<Reached> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const env = options.env ?? process.env;
  let picked: { target: LibvirtUri; reason: string };
  try {
    picked = await pickTarget(options);
  } catch (err) {
    return { probe: failure(options.uri ?? describeDefaultUri(env), options.uriReason ?? 'default', err) };
  }
  const { target, reason } = picked;
  const shown = formatLibvirtUri(target);

  let note: string | undefined;
  let socket: string | undefined;
  if (target.transport === 'unix') {
    const facts = await socketFacts(target, env);
    socket = facts.socket;
    const diagnosis = diagnoseSocket(facts);
    if (diagnosis !== undefined && !diagnosis.tryConnect) {
      return { probe: { ok: false, uri: shown, reason, socket, cause: diagnosis.cause, error: diagnosis.detail, hint: diagnosis.fix }, target };
    }
    if (diagnosis !== undefined) note = 'the session daemon was not running: vmenv started it, as it does when needed (it exits after 120 s idle)';
  }

  const cancel = new AbortController();
  const opening = openLibvirt(target, { signal: cancel.signal, keepalive: false });
  let client: LibvirtClient;
  try {
    client = await withTimeout(opening, timeoutMs, 'connecting');
  } catch (err) {
    // Give up on the attempt; a connection that opens anyway must not keep the process alive.
    cancel.abort();
    opening.then((late) => late.close()).catch(() => undefined);
    return { probe: { ...failure(shown, reason, err), ...(socket !== undefined ? { socket } : {}) }, target };
  }
  try {
    const version = formatLibvirtVersion(await withTimeout(client.connectGetLibVersion(), timeoutMs, 'asking its version'));
    const probe: LibvirtProbe = { ok: true, uri: shown, reason, version };
    if (socket !== undefined) probe.socket = socket;
    if (note !== undefined) probe.note = note;
    try {
      probe.hostname = await withTimeout(client.connectGetHostname(), timeoutMs, 'asking its hostname');
    } catch {
      // The hostname is a nicety; a daemon that cannot tell it still works.
    }
    return { probe, client, target };
  } catch (err) {
    void withTimeout(client.close(), timeoutMs, 'closing').catch(() => undefined);
    return { probe: failure(shown, reason, err), target };
  }
}

/** Closes a connection, waiting at most `capMs`: a daemon that stopped answering may not answer the close either. */
export async function closeLibvirt(client: LibvirtClient, capMs = 1000): Promise<void> {
  await Promise.race([client.close().catch(() => undefined), new Promise((r) => setTimeout(r, capMs).unref())]);
}
