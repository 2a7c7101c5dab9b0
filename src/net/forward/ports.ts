/**
 * Host ports: whether one is free (by binding it), the next free one for
 * `auto_correct`, and who holds a taken one (the socket tables in /proc/net, then the
 * process whose /proc/<pid>/fd links to that socket) for the error message.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { hostPortText, type Endianness } from '../../util/ip.js';
import { ExitCode, UserError } from '../../errors.js';
import { bindPort, closeBoundPort } from '../bind-port.js';
import { parseProcNet, socketsHoldingPort, type ProcNetSocket } from './proc-net.js';
import type { ForwardProtocol } from './spec.js';

export interface PortHolderProcess {
  pid: number;
  /** The process's name (/proc/<pid>/comm). */
  command: string;
}

export interface PortHolder {
  port: number;
  protocol: ForwardProtocol;
  /** The address the holding socket is bound to (`0.0.0.0`, `::`, `127.0.0.1`, …). */
  address: string;
  inode: number;
  /** The socket owner's uid. */
  uid: number;
  /** The processes with the socket open; empty when none can be seen (another user's, without root). */
  processes: PortHolderProcess[];
}

/** Where to read from: tests give a /proc of files, and the byte order of the machine it came from. */
export interface ProcSource {
  procRoot?: string;
  endianness?: Endianness;
}

async function readSockets(protocol: ForwardProtocol, procRoot: string, order: Endianness): Promise<ProcNetSocket[]> {
  const out: ProcNetSocket[] = [];
  for (const file of [protocol, `${protocol}6`]) {
    try {
      out.push(...parseProcNet(await readFile(`${procRoot}/net/${file}`, 'utf8'), order));
    } catch {
      // No IPv6 on this host (or no /proc): nothing held there.
    }
  }
  return out;
}

/** The pids whose open files include one of `inodes`, with their names. */
async function processesWithSockets(inodes: ReadonlySet<number>, procRoot: string): Promise<Map<number, PortHolderProcess[]>> {
  const found = new Map<number, PortHolderProcess[]>();
  const pids = (await readdir(procRoot)).filter((d) => /^[0-9]+$/.test(d));
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`${procRoot}/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to see
    }
    const seen = new Set<number>();
    for (const fd of fds) {
      const target = await readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[([0-9]+)\]$/.exec(target);
      const inode = m ? Number(m[1]) : NaN;
      if (!inodes.has(inode) || seen.has(inode)) continue;
      seen.add(inode);
      const command = (await readFile(`${procRoot}/${pid}/comm`, 'utf8').catch(() => '?')).trim();
      found.set(inode, [...(found.get(inode) ?? []), { pid: Number(pid), command }]);
    }
  }
  return found;
}

/**
 * Who holds host port `port` against a listener on `hostIp` (any address when not
 * given), in this process's network namespace; undefined when no socket holds it.
 */
export async function portHolder(port: number, protocol: ForwardProtocol, hostIp?: string, source: ProcSource = {}): Promise<PortHolder | undefined> {
  const procRoot = source.procRoot ?? '/proc';
  const holding = socketsHoldingPort(await readSockets(protocol, procRoot, source.endianness ?? endianness()), port, protocol, hostIp).filter((s) => s.inode !== 0);
  const first = holding[0];
  if (first === undefined) return undefined;
  const byInode = await processesWithSockets(new Set(holding.map((s) => s.inode)), procRoot);
  // The socket whose process can be named, when there is a choice.
  const best = holding.find((s) => byInode.has(s.inode)) ?? first;
  return { port, protocol, address: best.localIp, inode: best.inode, uid: best.uid, processes: byInode.get(best.inode) ?? [] };
}

/** Who has the socket: "pid 1234 (nginx)", or its uid when no process is visible. */
export function portHolderProcesses(h: PortHolder): string {
  if (h.processes.length === 0) return `a process of uid ${h.uid} (not visible to this user)`;
  return h.processes.map((p) => `pid ${p.pid} (${p.command})`).join(', ');
}

/** "tcp port 8080 is held by pid 1234 (nginx)", with the socket's address when it is not a wildcard. */
export function describePortHolder(h: PortHolder): string {
  const at = h.address === '0.0.0.0' || h.address === '::' ? '' : ` on ${h.address}`;
  return `${h.protocol} port ${h.port} is held by ${portHolderProcesses(h)}${at === '' ? '' : `, bound${at}`}`;
}

/**
 * Whether `hostIp:port` can be bound for `protocol` now (by binding and closing it).
 * False when taken or not permitted (a port below 1024 without the privilege); other
 * errors (an address that is not the host's) are thrown.
 */
export async function isPortFree(hostIp: string, port: number, protocol: ForwardProtocol): Promise<boolean> {
  try {
    await closeBoundPort(await bindPort(protocol, hostIp, port));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') return false;
    throw err;
  }
}

/** Whether a host port can be bound now; isPortFree, or a stand-in for tests. */
export type PortFreeCheck = (hostIp: string, port: number, protocol: ForwardProtocol) => Promise<boolean>;

export class NoFreePortError extends UserError {
  readonly from: number;
  readonly protocol: ForwardProtocol;
  constructor(hostIp: string, from: number, protocol: ForwardProtocol, tried: number) {
    super(`No free ${protocol} port found on ${hostIp} above ${from} (${tried} tried).`, {
      hint: `Free a port, or give this forwarded port another \`host\` value.`,
      exitCode: ExitCode.user,
    });
    this.name = 'NoFreePortError';
    this.from = from;
    this.protocol = protocol;
  }
}

/**
 * The first free port above `from` on `hostIp` for `protocol` (for `auto_correct`),
 * skipping `exclude` (ports already given to other forwards). At most `tries` checks
 * with `isFree`; throws NoFreePortError when none of them is free.
 */
export async function nextFreePort(
  hostIp: string,
  from: number,
  protocol: ForwardProtocol,
  exclude: ReadonlySet<number> = new Set(),
  tries = 100,
  isFree: PortFreeCheck = isPortFree,
): Promise<number> {
  let tried = 0;
  for (let port = from + 1; port <= 65535 && tried < tries; port++) {
    if (exclude.has(port)) continue;
    tried++;
    if (await isFree(hostIp, port, protocol)) return port;
  }
  throw new NoFreePortError(hostIp, from, protocol, tried);
}

/** `127.0.0.1:8080/tcp`, for messages. */
export function portText(hostIp: string, port: number, protocol: ForwardProtocol): string {
  return `${hostPortText(hostIp, port)}/${protocol}`;
}
