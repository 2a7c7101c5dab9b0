/**
 * How starting a forwarder fails, for the user: a host port that cannot be bound
 * (named, with who holds it when it is taken), or a forwarder that did not come up.
 */
import { ExitCode, UserError } from '../../errors.js';
import { portHolderProcesses, portText, type PortHolder } from './ports.js';
import type { ForwardProtocol } from './spec.js';

export class ForwardBindError extends UserError {
  readonly protocol: ForwardProtocol;
  readonly hostIp: string;
  readonly hostPort: number;
  /** The system's error code: EADDRINUSE, EACCES, EADDRNOTAVAIL, … */
  readonly code: string;
  /** Who holds the port, when it is taken and that could be found. */
  readonly holder: PortHolder | undefined;

  constructor(o: { protocol: ForwardProtocol; hostIp: string; hostPort: number; code: string; detail: string; holder?: PortHolder }) {
    const where = portText(o.hostIp, o.hostPort, o.protocol);
    let message: string;
    let hint: string;
    switch (o.code) {
      case 'EADDRINUSE':
        message = `Cannot forward host port ${where}: it is already in use${o.holder === undefined ? '' : ` by ${portHolderProcesses(o.holder)}`}.`;
        hint = 'Stop what holds it, give this forwarded port another `host` port, or set `auto_correct: true` to let vmenv pick a free one.';
        break;
      case 'EACCES':
        message = `Cannot forward host port ${where}: permission denied.`;
        hint = 'Ports below 1024 need root (or CAP_NET_BIND_SERVICE); use a host port above 1023.';
        break;
      case 'EADDRNOTAVAIL':
        message = `Cannot forward host port ${where}: ${o.hostIp} is not an address of this host.`;
        hint = 'Set `host_ip` to an address the host has (127.0.0.1 for this host only, 0.0.0.0 for all).';
        break;
      default:
        message = `Cannot forward host port ${where}: ${o.detail}`;
        hint = 'Check the `host_ip` and `host` of this forwarded port.';
    }
    super(message, { hint, exitCode: ExitCode.user });
    this.name = 'ForwardBindError';
    this.protocol = o.protocol;
    this.hostIp = o.hostIp;
    this.hostPort = o.hostPort;
    this.code = o.code;
    this.holder = o.holder;
  }
}

/** The forwarder process did not come up: it failed, ended early, or did not answer in time. */
export class ForwarderStartError extends UserError {
  readonly logFile: string | undefined;
  constructor(message: string, o: { logFile?: string; logTail?: string; timedOut?: boolean } = {}) {
    const tail = o.logTail === undefined || o.logTail.trim() === '' ? '' : `\nLast lines of its log:\n${o.logTail.trimEnd()}`;
    super(`${message}${tail}`, {
      hint: o.logFile === undefined ? 'This is likely a bug in vmenv; please report it.' : `See the forwarder's log: ${o.logFile}`,
      exitCode: o.timedOut === true ? ExitCode.timeout : ExitCode.user,
    });
    this.name = 'ForwarderStartError';
    this.logFile = o.logFile;
  }
}
