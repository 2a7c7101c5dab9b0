import { createServer } from 'node:net';
import type { ForwardedPort, Protocol } from '../config/types.js';
import { describePortHolder, isPortFree, portHolder } from '../forward/ports.js';
import { UserError } from '../ui/errors.js';

export { isPortFree };

/** A host port forwarded to a guest port, as it is in effect (after auto_correct). */
export interface PortMapping {
  guest: number;
  host: number;
  hostIp: string;
  protocol: Protocol;
}

/** A free port on the loopback, chosen by the kernel. */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const key = (ip: string, port: number, protocol: Protocol): string => `${protocol}/${ip}/${port}`;

export interface ChoosePortsOptions {
  /** Mappings in effect before (state): a port kept from last time is preferred when still free. */
  previous?: readonly PortMapping[];
  /** Told each auto-corrected port ("8080 is taken: 8081 → 80 instead"). */
  onCorrected?: (message: string) => void;
  /** Test hook. */
  isFree?: (hostIp: string, port: number, protocol: Protocol) => Promise<boolean>;
}

/**
 * The host ports to forward: each as configured when free; when taken, with
 * `auto_correct` the next free one above it (said through `onCorrected`), without it a
 * UserError naming the port. Ports are never given twice.
 */
export async function choosePorts(forwards: readonly ForwardedPort[], options: ChoosePortsOptions = {}): Promise<PortMapping[]> {
  const isFree = options.isFree ?? isPortFree;
  const given = new Set<string>();
  const out: PortMapping[] = [];
  for (const f of forwards) {
    const before = options.previous?.find((p) => p.guest === f.guest && p.protocol === f.protocol && p.hostIp === f.host_ip);
    const candidates = before && before.host !== f.host ? [before.host, f.host] : [f.host];
    let host: number | undefined;
    for (const c of candidates) {
      if (!given.has(key(f.host_ip, c, f.protocol)) && (await isFree(f.host_ip, c, f.protocol))) {
        host = c;
        break;
      }
    }
    if (host === undefined) {
      if (!f.auto_correct) {
        const holder = await portHolder(f.host, f.protocol, f.host_ip).catch(() => undefined);
        throw new UserError(
          `host port ${f.host_ip}:${f.host}/${f.protocol} (forwarded to guest port ${f.guest}) is already in use${holder ? `: ${describePortHolder(holder)}` : ''}`,
          { hint: "Free it, choose another 'host' port in forwarded_ports, or set 'auto_correct: true' to let vmenv pick the next free one." },
        );
      }
      for (let c = f.host + 1; c <= Math.min(65535, f.host + 200); c++) {
        if (!given.has(key(f.host_ip, c, f.protocol)) && (await isFree(f.host_ip, c, f.protocol))) {
          host = c;
          break;
        }
      }
      if (host === undefined) throw new UserError(`no free host port near ${f.host} for guest port ${f.guest}`, { hint: "Choose another 'host' port." });
      options.onCorrected?.(`host port ${f.host}/${f.protocol} is in use: forwarding ${f.host_ip}:${host} → guest ${f.guest} instead`);
    }
    given.add(key(f.host_ip, host, f.protocol));
    out.push({ guest: f.guest, host, hostIp: f.host_ip, protocol: f.protocol });
  }
  return out;
}
