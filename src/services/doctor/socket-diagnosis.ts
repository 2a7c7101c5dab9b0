/**
 * Why a local libvirt socket does not answer, in the user's words, with the command
 * that fixes it. Pure: the facts (what connecting to the socket said, which daemon
 * serves it, whether it is installed) are gathered by libvirt-probe.ts.
 */

/** What a connect to the socket said (checkUnixSocket). */
export type SocketState = 'ok' | 'missing' | 'refused' | 'denied' | 'error';

/** Why libvirt cannot be used, as a word for scripts (`--json`). */
export type LibvirtCause =
  | 'bad-uri'
  | 'socket-missing'
  | 'permission-denied'
  | 'daemon-down'
  | 'session-not-started'
  | 'not-installed'
  | 'timeout'
  | 'access-denied'
  | 'error';

export interface SocketFacts {
  /** The URI, as shown. */
  uri: string;
  socket: string;
  state: SocketState;
  /** The socket is a per-user (session) daemon's. */
  userDaemon: boolean;
  /** The socket came from `?socket=` in the URI. */
  explicit: boolean;
  /** The daemon that serves it: libvirtd or virtqemud. */
  daemon: string;
  daemonInstalled: boolean;
  /** vmenv starts the session daemon itself when its socket is absent (LIBVIRT_AUTOSTART is not 0). */
  autostart: boolean;
  /** The host runs systemd (so `systemctl` starts the system daemon). */
  systemd: boolean;
  /** Running as root: qemu:///session is then the system daemon too (libvirt's rule). */
  root: boolean;
  /** The URI asks for the session instance. */
  session: boolean;
  /** Owner, group and mode of the socket (or of the folder that hides it), for "permission denied". */
  owner?: { path: string; user: string; group: string; mode: string };
  /** The system error text, for 'error'. */
  errorText?: string;
}

export interface SocketDiagnosis {
  cause: LibvirtCause;
  detail: string;
  fix: string;
  /** The daemon may still be started by vmenv itself (a session daemon): try connecting anyway. */
  tryConnect: boolean;
}

function startSystemDaemon(f: SocketFacts, verb: 'start' | 'restart'): string {
  if (f.systemd) {
    return f.daemon === 'libvirtd' ? `sudo systemctl ${verb} libvirtd` : `sudo systemctl ${verb} ${f.daemon}.socket ${f.daemon}`;
  }
  return `sudo ${f.daemon} --daemon (no systemd here)`;
}

/** undefined when the socket answers. */
export function diagnoseSocket(f: SocketFacts): SocketDiagnosis | undefined {
  if (f.state === 'ok') return undefined;
  const where = `${f.socket}${f.explicit ? " (the URI's socket=)" : ''}`;
  const otherwise = f.root
    ? ' — or run vmenv as a normal user with qemu:///session, a per-user daemon that needs no system service'
    : f.session
      ? ''
      : ' — or use qemu:///session, which needs no system service';

  if (f.userDaemon && (f.state === 'missing' || f.state === 'refused')) {
    if (!f.daemonInstalled) {
      return {
        cause: 'not-installed',
        detail: `session daemon not started, and it cannot be: ${f.daemon} is not installed (no socket at ${f.socket})`,
        fix: 'sudo apt-get install libvirt-daemon qemu-system-x86 (the per-user daemon needs no system service)',
        tryConnect: false,
      };
    }
    if (!f.autostart) {
      return {
        cause: 'session-not-started',
        detail: `session daemon not started: no ${f.daemon} answers at ${f.socket}, and LIBVIRT_AUTOSTART=0 stops vmenv from starting it`,
        fix: `Start it: ${f.daemon} --timeout=120 & — or unset LIBVIRT_AUTOSTART and vmenv starts it when needed.`,
        tryConnect: false,
      };
    }
    return {
      cause: 'session-not-started',
      detail: `session daemon not started (no ${f.daemon} answers at ${f.socket}); vmenv starts it when needed`,
      fix: `Nothing to do; to start it yourself: ${f.daemon} --timeout=120 &`,
      tryConnect: true,
    };
  }

  switch (f.state) {
    case 'missing':
      if (f.explicit) {
        return {
          cause: 'socket-missing',
          detail: `socket missing: nothing at ${where}`,
          fix: `Start the libvirt daemon that listens on ${f.socket}, or correct the socket= path in the URI.`,
          tryConnect: false,
        };
      }
      if (!f.daemonInstalled) {
        return {
          cause: 'not-installed',
          detail: `socket missing: no libvirt socket at ${f.socket}, and no libvirt daemon is installed`,
          fix: `sudo apt-get install libvirt-daemon-system${otherwise}`,
          tryConnect: false,
        };
      }
      return {
        cause: 'socket-missing',
        detail: `socket missing: no libvirt socket at ${f.socket} — ${f.daemon} is not running${f.root && f.session ? " (as root, qemu:///session is served by the system daemon: libvirt's rule)" : ''}`,
        fix: `${startSystemDaemon(f, 'start')}${otherwise}`,
        tryConnect: false,
      };
    case 'refused':
      return {
        cause: 'daemon-down',
        detail: `daemon down: the socket ${where} exists but nothing accepts connections on it (a daemon that stopped or crashed left it behind)`,
        fix: f.explicit ? `Restart the libvirt daemon that listens on ${f.socket}.` : startSystemDaemon(f, 'restart'),
        tryConnect: false,
      };
    case 'denied': {
      const o = f.owner;
      const owned = o === undefined ? '' : `; ${o.path} is ${o.mode} ${o.user}:${o.group}`;
      const group = o !== undefined && o.group !== 'root' ? o.group : 'libvirt';
      return {
        cause: 'permission-denied',
        detail: `permission denied: this user may not open ${where}${owned}`,
        fix: `sudo usermod -aG ${group} $USER, then log in again${otherwise}`,
        tryConnect: false,
      };
    }
    default:
      return {
        cause: 'error',
        detail: `cannot connect to ${where}${f.errorText !== undefined ? `: ${f.errorText}` : ''}`,
        fix: `Check that ${f.socket} is the socket of a running libvirt daemon.`,
        tryConnect: false,
      };
  }
}
