import type { ForwardedPort, Protocol } from '../config/types.js';
import type { PortMapping } from '../project/state.js';
import { describePortHolder, isPortFree, nextFreePort, portHolder, portText, type PortFreeCheck } from './forward/ports.js';
import { hostPortText } from '../util/ip.js';
import { UserError } from '../errors.js';
import { bindPort, boundPortNumber, closeBoundPort } from './bind-port.js';

export { isPortFree };


/** A free port on the loopback, chosen by the kernel. */
export async function freeLoopbackPort(): Promise<number> {
  const bound = await bindPort('tcp', '127.0.0.1', 0);
  const port = boundPortNumber(bound);
  await closeBoundPort(bound);
  if (port === undefined) throw new Error('no port');
  return port;
}

/** The host ports already given on `hostIp` for `protocol`. */
function givenPorts(out: readonly PortMapping[], hostIp: string, protocol: Protocol): Set<number> {
  return new Set(out.filter((p) => p.hostIp === hostIp && p.protocol === protocol).map((p) => p.host));
}

export interface ChoosePortsOptions {
  /** Mappings in effect before (state): a port kept from last time is preferred when still free. */
  previous?: readonly PortMapping[];
  /** Told each auto-corrected port ("8080 is taken: 8081 → 80 instead"). */
  onCorrected?: (message: string) => void;
  /** Test hook. */
  isFree?: PortFreeCheck;
}

/** How many ports above a taken one auto_correct tries. */
const AUTO_CORRECT_TRIES = 200;

/**
 * The host ports to forward: each as configured when free; when taken, with
 * `auto_correct` the next free one above it (said through `onCorrected`; NoFreePortError
 * when none is), without it a UserError naming the port. Ports are never given twice.
 */
export async function choosePorts(forwards: readonly ForwardedPort[], options: ChoosePortsOptions = {}): Promise<PortMapping[]> {
  const isFree = options.isFree ?? isPortFree;
  const out: PortMapping[] = [];
  for (const f of forwards) {
    const given = givenPorts(out, f.host_ip, f.protocol);
    const before = options.previous?.find((p) => p.guest === f.guest && p.protocol === f.protocol && p.hostIp === f.host_ip);
    const candidates = before && before.host !== f.host ? [before.host, f.host] : [f.host];
    let host: number | undefined;
    for (const c of candidates) {
      if (!given.has(c) && (await isFree(f.host_ip, c, f.protocol))) {
        host = c;
        break;
      }
    }
    if (host === undefined) {
      if (!f.auto_correct) {
        const holder = await portHolder(f.host, f.protocol, f.host_ip).catch(() => undefined);
        throw new UserError(
          `host port ${portText(f.host_ip, f.host, f.protocol)} (forwarded to guest port ${f.guest}) is already in use${holder ? `: ${describePortHolder(holder)}` : ''}`,
          { hint: "Free it, choose another 'host' port in forwarded_ports, or set 'auto_correct: true' to let vmenv pick the next free one." },
        );
      }
      host = await nextFreePort(f.host_ip, f.host, f.protocol, given, AUTO_CORRECT_TRIES, isFree);
      options.onCorrected?.(`host port ${f.host}/${f.protocol} is in use: forwarding ${hostPortText(f.host_ip, host)} → guest ${f.guest} instead`);
    }
    out.push({ guest: f.guest, host, hostIp: f.host_ip, protocol: f.protocol });
  }
  return out;
}
