/**
 * Pick the transport for a libvirt URI and build its Dialer.
 */
import type { Duplex } from 'node:stream';
import { LibvirtConnectError } from '../errors.js';
import {
  DEFAULT_SSH_PORT,
  DEFAULT_TCP_PORT,
  formatLibvirtUri,
  localUserName,
  processSocketEnv,
  unixSocketFor,
  type LibvirtUri,
  type SocketEnv,
  type UnixSocketChoice,
} from '../uri.js';
import type { Dialer } from './dialer.js';
import {
  ensureSessionDaemon,
  findDaemonBinary,
  type EnsureSessionDaemonOptions,
  type SessionDaemonResult,
} from './session-daemon.js';
import type { SshUriDialerOptions } from './ssh.js';
import { tcpDialer } from './tcp.js';
import { unixDialer } from './unix.js';

export interface DialerForUriOptions {
  uid?: number;
  env?: Record<string, string | undefined>;
  home?: string;
  runtimeDir?: string;
  /** Connect timeout for unix and tcp; handshake timeout for ssh. */
  timeoutMs?: number;
  /**
   * Start the per-user daemon when its socket is absent. Default: libvirt's rule —
   * for a session URI of a non-root user without `?socket=`, unless LIBVIRT_AUTOSTART=0.
   */
  autostart?: boolean;
  /** How long to wait for a started daemon's socket. */
  daemonStartTimeoutMs?: number;
  ssh?: SshUriDialerOptions;
  /** Injectable for tests. */
  ensureDaemon?: (socket: string, opts: EnsureSessionDaemonOptions) => Promise<SessionDaemonResult>;
  /** Injectable for tests: does a file exist (for choosing the socket). */
  exists?: (path: string) => boolean;
  /** Called when a session daemon was started (for a progress line). */
  onDaemonStarted?: (r: SessionDaemonResult) => void;
}

function socketEnv(opts: DialerForUriOptions): SocketEnv {
  const base = processSocketEnv();
  const env = opts.env ?? base.env;
  const e: SocketEnv = {
    uid: opts.uid ?? base.uid,
    env,
    home: opts.home ?? env.HOME ?? base.home,
    haveDaemon: (name) => findDaemonBinary(name, env) !== undefined,
  };
  if (opts.runtimeDir !== undefined) e.runtimeDir = opts.runtimeDir;
  if (opts.exists !== undefined) e.exists = opts.exists;
  return e;
}

/** The unix socket a local URI uses, with the same environment dialerForUri would use. */
export function localSocketFor(u: LibvirtUri, opts: DialerForUriOptions = {}): UnixSocketChoice {
  return unixSocketFor(u, socketEnv(opts));
}

function missingHint(u: LibvirtUri, choice: UnixSocketChoice, uid: number): string {
  if (choice.explicit) return '';
  if (u.path === '/session' && uid === 0) {
    return (
      'As root, qemu:///session is served by the system daemon (libvirt\'s rule). ' +
      'Start it (systemctl start libvirtd, or libvirtd -d), or run vmenv as a normal user.'
    );
  }
  if (choice.user) {
    return `Start it with: ${choice.daemon} --timeout=120 & (automatic start is off: LIBVIRT_AUTOSTART=0).`;
  }
  return (
    `Start it (sudo systemctl start ${choice.daemon === 'libvirtd' ? 'libvirtd' : `${choice.daemon}.socket`}), ` +
    'or use qemu:///session, which needs no system service.'
  );
}

function unixDialerForUri(u: LibvirtUri, opts: DialerForUriOptions): Dialer {
  const se = socketEnv(opts);
  const autostartDefault = (): boolean => se.env.LIBVIRT_AUTOSTART !== '0';
  const current = (): UnixSocketChoice => unixSocketFor(u, se);
  return {
    describe: () => `unix socket ${current().path}`,
    async dial(signal?: AbortSignal): Promise<Duplex> {
      const choice = current();
      const autostart = choice.explicit ? (opts.autostart ?? false) : (opts.autostart ?? (choice.user && autostartDefault()));
      const dialOpts: { timeoutMs?: number; missingHint?: string } = {};
      if (opts.timeoutMs !== undefined) dialOpts.timeoutMs = opts.timeoutMs;
      const direct = unixDialer(choice.path, { ...dialOpts, missingHint: missingHint(u, choice, se.uid) });
      if (!autostart) return direct.dial(signal);
      try {
        return await direct.dial(signal);
      } catch (err) {
        const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
        if (!(err instanceof LibvirtConnectError) || (code !== 'ENOENT' && code !== 'ECONNREFUSED')) throw err;
      }
      const ensure = opts.ensureDaemon ?? ensureSessionDaemon;
      const ensureOpts: EnsureSessionDaemonOptions = { signal, env: se.env, home: se.home, daemon: choice.daemon };
      if (opts.daemonStartTimeoutMs !== undefined) ensureOpts.timeoutMs = opts.daemonStartTimeoutMs;
      const r = await ensure(choice.path, ensureOpts);
      if (r.started) opts.onDaemonStarted?.(r);
      return unixDialer(choice.path, dialOpts).dial(signal);
    },
  };
}

function tlsDialer(u: LibvirtUri): Dialer {
  const target = `tls ${u.host ?? 'localhost'}:${u.port ?? 16514}`;
  return {
    describe: () => target,
    dial: () =>
      Promise.reject(
        new LibvirtConnectError(
          `${formatLibvirtUri(u)} uses TLS, which vmenv does not speak yet. ` +
            `Use qemu+ssh://user@${u.host ?? 'host'}${u.path} (no certificates needed), ` +
            `or qemu+tcp:// on a trusted network`,
          target,
        ),
      ),
  };
}

/**
 * The ssh transport, loaded on the first dial: it brings in ssh2, which costs every
 * command tens of milliseconds at startup, and most URIs are local.
 */
function lazySshDialer(u: LibvirtUri, opts: SshUriDialerOptions): Dialer {
  let loaded: Promise<Dialer> | undefined;
  const host = u.host ?? 'localhost';
  const port = u.port ?? DEFAULT_SSH_PORT;
  const where = `${u.user ?? localUserName()}@${host.includes(':') ? `[${host}]` : host}${port === DEFAULT_SSH_PORT ? '' : `:${port}`}`;
  return {
    describe: () => `ssh ${where}`,
    async dial(signal?: AbortSignal): Promise<Duplex> {
      loaded ??= import('./ssh.js').then((m) => m.sshDialerForUri(u, opts));
      return (await loaded).dial(signal);
    },
  };
}

/** The Dialer for a parsed URI: unix (starting the session daemon if needed), tcp, ssh; tls reports unsupported. */
export function dialerForUri(u: LibvirtUri, opts: DialerForUriOptions = {}): Dialer {
  switch (u.transport) {
    case 'unix':
      return unixDialerForUri(u, opts);
    case 'tcp': {
      const o: { port: number; timeoutMs?: number } = { port: u.port ?? DEFAULT_TCP_PORT };
      if (opts.timeoutMs !== undefined) o.timeoutMs = opts.timeoutMs;
      return tcpDialer(u.host ?? 'localhost', o);
    }
    case 'ssh': {
      const o: SshUriDialerOptions = { ...opts.ssh };
      if (opts.env && o.env === undefined) o.env = opts.env;
      if (opts.home && o.home === undefined) o.home = opts.home;
      if (opts.timeoutMs !== undefined && o.timeoutMs === undefined) o.timeoutMs = opts.timeoutMs;
      return lazySshDialer(u, o);
    }
    case 'tls':
      return tlsDialer(u);
  }
}
