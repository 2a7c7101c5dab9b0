/**
 * Finding a guest's IP address: `discoverIp` asks several sources, in order, every
 * `pollMs` (or sooner, when the caller's event wakes it) until one knows, the time runs
 * out, or the caller cancels:
 *
 *  1. `lease-api`    libvirt's DHCP lease API for the MAC (`networkGetDhcpLeases`)
 *  2. `domain-lease` the domain's interface addresses from leases (`domainInterfaceAddresses`, lease)
 *  3. `lease-file`   the network's dnsmasq status/lease files on disk (local daemons)
 *  4. `agent`        the QEMU guest agent (`domainInterfaceAddresses`, agent)
 *  5. `arp`          the host's ARP table (`domainInterfaceAddresses`, arp)
 *
 * Each round asks every source that has no call outstanding; a slow source (an agent
 * that does not answer) is left running and does not hold the others up. Among the
 * answers of a round the first source in order wins. On timeout the error carries what
 * each source last answered ("lease API: no lease for 52:54:00:…", "status file …: empty",
 * "agent: not connected"), to print with the guest's console.
 */
import type { DomainInterfaceInfo, DhcpLease, LibvirtClient } from '../libvirt/client.js';
import { DomainInterfaceAddressSource, IpAddrType } from '../libvirt/constants.js';
import {
  ErrorCode,
  isDomainNotFound,
  isNetworkNotFound,
  isUnsupported,
  LibvirtConnectionClosedError,
  LibvirtError,
} from '../libvirt/errors.js';
import type { DomainRef, NetworkRef } from '../libvirt/protocol/types.js';
import { TimeoutError, UserError } from '../errors.js';
import { normalizeIp, normalizeMac, parseIpv4, parseIpv6, type IpFamily } from '../util/ip.js';
import { leaseFileLabel, lookupLeaseFiles } from './lease-files.js';
import { errorMessage } from '../util/format.js';

export type IpSource = 'lease-api' | 'domain-lease' | 'lease-file' | 'agent' | 'arp';

/** All sources, in the order they are preferred. */
export const IP_SOURCES: readonly IpSource[] = ['lease-api', 'domain-lease', 'lease-file', 'agent', 'arp'];

/** The calls discovery makes: a LibvirtClient, or a fake in tests. */
export type IpDiscoveryClient = Pick<
  LibvirtClient,
  'networkGetDhcpLeases' | 'domainInterfaceAddresses' | 'networkLookupByName' | 'networkGetBridgeName'
>;

/** What one source said in one attempt. */
export interface IpAttempt {
  /** 1-based round. */
  round: number;
  source: IpSource;
  /** Who answered: "lease API", "status file /…/virbr1.status", "agent". */
  label: string;
  answer: string;
  /** The address, when this answer found one. */
  ip?: string;
  elapsedMs: number;
}

/** The last answer of one source (lease files: one per file). */
export interface SourceAnswer {
  source: IpSource;
  label: string;
  answer: string;
  /** How many times it was asked. */
  attempts: number;
}

export interface DiscoveredIp {
  ip: string;
  source: IpSource;
  /** Who answered, as in the reports: "lease API", "status file …". */
  label: string;
  rounds: number;
  elapsedMs: number;
}

export interface DiscoverIpOptions {
  client: IpDiscoveryClient;
  domain: DomainRef;
  /** The MAC of the interface whose address is wanted (any case, `:` or `-`). */
  mac: string;
  /** The libvirt network of that interface (a handle or its name): needed by `lease-api`, and to name the bridge for `lease-file`. */
  network?: NetworkRef | string;
  /** Status/lease files or directories holding them (e.g. `/var/lib/libvirt/dnsmasq`); left out, `lease-file` is skipped. */
  leaseFiles?: string | readonly string[];
  /** The network's bridge (`virbr1`), to pick its files in a directory; left out, asked of libvirt when `network` is given. */
  bridge?: string;
  /** Which sources, in which order (default `IP_SOURCES`). */
  sources?: readonly IpSource[];
  /** Default `ipv4`; `any`: IPv4 before IPv6. Loopback and link-local addresses never count. */
  family?: IpFamily | 'any';
  timeoutMs: number;
  /** Time between rounds (default 200 ms). */
  pollMs?: number;
  signal?: AbortSignal;
  /**
   * Subscribes to the caller's "something changed" event (a lifecycle or agent event, a
   * console line): calling `wakeUp` starts the next round now. Returns the unsubscribe.
   */
  wake?: (wakeUp: () => void) => () => void;
  /** Called with every answer, as it arrives. */
  onAttempt?: (attempt: IpAttempt) => void;
  /** Who wants the address, for the timeout message (default: the domain's name). */
  what?: string;
  /** Clock (tests). */
  now?: () => number;
}

function answersHint(heading: string, answers: readonly SourceAnswer[], consoleTail?: readonly string[]): string {
  const parts = [
    answers.length === 0 ? 'No source was asked.' : `${heading}\n${answers.map((a) => `  ${a.label}: ${a.answer}`).join('\n')}`,
  ];
  if (consoleTail !== undefined) {
    parts.push(
      consoleTail.length === 0
        ? 'The serial console printed nothing.'
        : `Last lines of the serial console:\n${consoleTail.map((l) => `  | ${l}`).join('\n')}`,
    );
  }
  return parts.join('\n');
}

/**
 * Discovery ran out of time; `answers` says what each source last answered. The hint
 * lists them; `withConsoleTail` adds the last lines of the guest's serial console.
 */
export class IpDiscoveryTimeoutError extends TimeoutError {
  readonly answers: SourceAnswer[];
  readonly mac: string;
  readonly what: string;
  readonly timeoutMs: number;
  readonly consoleTail: readonly string[] | undefined;

  constructor(what: string, mac: string, timeoutMs: number, answers: SourceAnswer[], consoleTail?: readonly string[]) {
    super(`an IP address for ${what} (MAC ${mac})`, timeoutMs, answersHint('What each source answered last:', answers, consoleTail));
    this.name = 'IpDiscoveryTimeoutError';
    this.answers = answers;
    this.mac = mac;
    this.what = what;
    this.timeoutMs = timeoutMs;
    this.consoleTail = consoleTail;
  }

  /** "lease API: no lease for 52:54:00:…", one line per source. */
  lines(): string[] {
    return this.answers.map((a) => `${a.label}: ${a.answer}`);
  }

  /** The same error, its hint followed by the last lines of the guest's serial console. */
  withConsoleTail(lines: readonly string[]): IpDiscoveryTimeoutError {
    return new IpDiscoveryTimeoutError(this.what, this.mac, this.timeoutMs, this.answers, lines);
  }
}

/** Every source gave up for good (none configured, unsupported, agent not configured) before the timeout. */
export class IpSourcesExhaustedError extends UserError {
  readonly answers: SourceAnswer[];
  readonly mac: string;

  constructor(what: string, mac: string, answers: SourceAnswer[]) {
    super(`No source can tell the IP address of ${what} (MAC ${mac}).`, { hint: answersHint('What each source answered:', answers) });
    this.name = 'IpSourcesExhaustedError';
    this.answers = answers;
    this.mac = mac;
  }
}

// --- Sources ---------------------------------------------------------------------------

interface ProbeAnswer {
  label: string;
  answer: string;
  ip?: string;
}

/** A probe's verdict: answers (one, or one per file); `stop`: asking again is pointless. */
interface Probe {
  answers: ProbeAnswer[];
  stop?: boolean;
}

interface Context {
  opts: DiscoverIpOptions;
  mac: string;
  family: IpFamily | 'any';
  network: () => Promise<NetworkRef | undefined>;
  bridge: () => Promise<string | undefined>;
}

function usable(ip: string, family: IpFamily | 'any'): boolean {
  const v4 = parseIpv4(ip);
  if (v4 !== undefined) {
    if (family === 'ipv6') return false;
    return v4 >>> 24 !== 127 && v4 >>> 16 !== 0xa9fe && v4 !== 0; // loopback, link-local 169.254/16
  }
  const v6 = parseIpv6(ip);
  if (v6 === undefined || family === 'ipv4') return false;
  return v6 !== 1n && v6 >> 118n !== 0x3fan && v6 !== 0n; // ::1, fe80::/10
}

/** The best address among interfaces with the MAC: IPv4 before IPv6, in the order given. */
function pickFromInterfaces(ifaces: readonly DomainInterfaceInfo[], mac: string, family: IpFamily | 'any'): { ip?: string; answer: string } {
  const mine = ifaces.filter((i) => i.mac !== null && normalizeMac(i.mac) === mac);
  if (mine.length === 0) {
    const others = ifaces.map((i) => i.name || i.mac || '?').join(', ');
    return { answer: `no interface with ${mac}${ifaces.length > 0 ? ` (answered for: ${others})` : ''}` };
  }
  const addrs = mine.flatMap((i) => i.addrs);
  const candidates = addrs
    .filter((a) => usable(a.addr, family))
    .sort((a, b) => (a.type === b.type ? 0 : a.type === IpAddrType.ipv4 ? -1 : 1));
  const best = candidates[0];
  if (best !== undefined) return { ip: normalizeIp(best.addr) ?? best.addr, answer: `${best.addr}/${best.prefix} on ${mine[0]?.name ?? mac}` };
  if (addrs.length > 0) return { answer: `${mac} has only ${addrs.map((a) => a.addr).join(', ')} (not a usable ${family === 'any' ? 'IP' : family === 'ipv4' ? 'IPv4' : 'IPv6'} address)` };
  return { answer: `no address on ${mac} yet` };
}

function pickLease(leases: readonly DhcpLease[], mac: string, family: IpFamily | 'any'): DhcpLease | undefined {
  return leases
    .filter((l) => l.mac !== null && normalizeMac(l.mac) === mac && usable(l.ipaddr, family))
    .sort((a, b) => {
      if (a.type !== b.type) return a.type === IpAddrType.ipv4 ? -1 : 1;
      const ea = a.expiryTime === 0n ? BigInt(Number.MAX_SAFE_INTEGER) : a.expiryTime;
      const eb = b.expiryTime === 0n ? BigInt(Number.MAX_SAFE_INTEGER) : b.expiryTime;
      return ea === eb ? 0 : ea > eb ? -1 : 1;
    })[0];
}

const LABELS: Record<IpSource, string> = {
  'lease-api': 'lease API',
  'domain-lease': 'domain leases',
  'lease-file': 'lease files',
  agent: 'agent',
  arp: 'ARP',
};

/** libvirt's VIR_ERR_ARGUMENT_UNSUPPORTED: e.g. "QEMU guest agent is not configured". */
const ARGUMENT_UNSUPPORTED = 74;


async function probeLeaseApi(ctx: Context): Promise<Probe> {
  const label = LABELS['lease-api'];
  const net = await ctx.network();
  if (net === undefined) return { answers: [{ label, answer: 'no network given' }], stop: true };
  const leases = await ctx.opts.client.networkGetDhcpLeases(net, ctx.mac);
  const hit = pickLease(leases, ctx.mac, ctx.family);
  if (hit !== undefined) return { answers: [{ label, answer: `lease ${hit.ipaddr}/${hit.prefix} on ${net.name}`, ip: normalizeIp(hit.ipaddr) ?? hit.ipaddr }] };
  const have = leases.filter((l) => l.mac !== null && normalizeMac(l.mac) === ctx.mac).map((l) => l.ipaddr);
  return {
    answers: [{ label, answer: have.length > 0 ? `${ctx.mac} has only ${have.join(', ')} on ${net.name}` : `no lease for ${ctx.mac} on ${net.name}` }],
  };
}

async function probeInterfaces(ctx: Context, source: 'domain-lease' | 'agent' | 'arp'): Promise<Probe> {
  const label = LABELS[source];
  const how =
    source === 'agent'
      ? DomainInterfaceAddressSource.agent
      : source === 'arp'
        ? DomainInterfaceAddressSource.arp
        : DomainInterfaceAddressSource.lease;
  let ifaces: DomainInterfaceInfo[];
  try {
    ifaces = await ctx.opts.client.domainInterfaceAddresses(ctx.opts.domain, how);
  } catch (err) {
    if (source === 'agent' && err instanceof LibvirtError) {
      if (err.code === ErrorCode.agentUnresponsive) {
        return { answers: [{ label, answer: /not connected/i.test(err.message) ? 'not connected' : `not responding (${err.message})` }] };
      }
      if (err.code === ARGUMENT_UNSUPPORTED) {
        return { answers: [{ label, answer: `not configured in the domain (${err.message})` }], stop: true };
      }
    }
    throw err;
  }
  const r = pickFromInterfaces(ifaces, ctx.mac, ctx.family);
  return { answers: [{ label, answer: r.answer, ...(r.ip !== undefined ? { ip: r.ip } : {}) }] };
}

async function probeLeaseFiles(ctx: Context): Promise<Probe> {
  const files = ctx.opts.leaseFiles;
  const paths = files === undefined ? [] : typeof files === 'string' ? [files] : [...files];
  if (paths.length === 0) return { answers: [{ label: LABELS['lease-file'], answer: 'none configured' }], stop: true };
  const bridge = await ctx.bridge();
  const found = await lookupLeaseFiles(paths, {
    mac: ctx.mac,
    family: ctx.family,
    ...(bridge !== undefined ? { bridge } : {}),
  });
  // First file with the lease wins; every file's answer is kept for the report.
  return {
    answers: found.map((a) => ({
      label: leaseFileLabel(a),
      answer: a.answer,
      ...(a.lease !== undefined ? { ip: a.lease.ip } : {}),
    })),
  };
}

function probe(ctx: Context, source: IpSource): Promise<Probe> {
  switch (source) {
    case 'lease-api':
      return probeLeaseApi(ctx);
    case 'lease-file':
      return probeLeaseFiles(ctx);
    case 'domain-lease':
    case 'agent':
    case 'arp':
      return probeInterfaces(ctx, source);
  }
}

/** Errors after which nothing is worth asking again: the connection or the domain is gone. */
function isFatal(err: unknown): boolean {
  return err instanceof LibvirtConnectionClosedError || isDomainNotFound(err);
}

// --- The loop ------------------------------------------------------------------------

interface SourceState {
  source: IpSource;
  inFlight: boolean;
  /** When the call in flight (or the last one) was made. */
  since: number;
  stopped: boolean;
  attempts: number;
  answers: ProbeAnswer[];
  /** A hit not yet taken (from the round it arrived in). */
  hit?: ProbeAnswer;
}

/**
 * The IP address of the domain's interface with `mac`, and which source gave it.
 * Rejects with an IpDiscoveryTimeoutError after `timeoutMs`, with `signal.reason` when
 * cancelled, and at once when the connection or the domain is gone.
 */
export function discoverIp(opts: DiscoverIpOptions): Promise<DiscoveredIp> {
  const now = opts.now ?? Date.now;
  const started = now();
  const pollMs = Math.max(10, opts.pollMs ?? 200);
  const sources = [...new Set(opts.sources ?? IP_SOURCES)];
  const mac = normalizeMac(opts.mac) ?? opts.mac.toLowerCase();
  const what = opts.what ?? `domain ${opts.domain.name}`;
  const signal = opts.signal;
  if (signal?.aborted === true) return Promise.reject(signal.reason);

  let networkRef: NetworkRef | undefined = typeof opts.network === 'object' ? opts.network : undefined;
  let bridgeName: string | undefined = opts.bridge;
  let bridgeAsked = false;
  const ctx: Context = {
    opts,
    mac,
    family: opts.family ?? 'ipv4',
    network: async () => {
      if (networkRef === undefined && typeof opts.network === 'string') networkRef = await opts.client.networkLookupByName(opts.network);
      return networkRef;
    },
    bridge: async () => {
      if (bridgeName !== undefined || bridgeAsked || opts.network === undefined) return bridgeName;
      bridgeAsked = true; // once: without it, every file in a directory is read
      try {
        const net = await ctx.network();
        if (net !== undefined) bridgeName = await opts.client.networkGetBridgeName(net);
      } catch {
        // the lease API reports a missing network; here, read the whole directory
      }
      return bridgeName;
    },
  };

  const states: SourceState[] = sources.map((source) => ({
    source,
    inFlight: false,
    since: 0,
    stopped: false,
    attempts: 0,
    answers: [{ label: LABELS[source], answer: 'not asked yet' }],
  }));

  return new Promise<DiscoveredIp>((resolve, reject) => {
    let round = 0;
    let done = false;
    let sleepTimer: NodeJS.Timeout | undefined;
    let deadlineTimer: NodeJS.Timeout | undefined;
    let roundTimer: NodeJS.Timeout | undefined;
    let unsubscribe: (() => void) | undefined;
    /** Resolves the wait of the current round early (all answered, woken, or finished). */
    let nudge: (() => void) | undefined;

    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(sleepTimer);
      clearTimeout(deadlineTimer);
      clearTimeout(roundTimer);
      signal?.removeEventListener('abort', onAbort);
      try {
        unsubscribe?.();
      } catch {
        // the caller's unsubscribe failing must not hide the result
      }
      nudge?.();
      fn();
    };
    const onAbort = (): void => finish(() => reject(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });

    const report = (): SourceAnswer[] =>
      states.flatMap((s) =>
        s.answers.map((a) => ({
          source: s.source,
          label: a.label,
          answer:
            s.inFlight && s.attempts > 0
              ? `${a.answer} (asked again ${now() - s.since} ms ago, no answer yet)`
              : s.inFlight
                ? `no answer yet (asked ${now() - s.since} ms ago)`
                : a.answer,
          attempts: s.attempts,
        })),
      );

    deadlineTimer = setTimeout(() => {
      finish(() => reject(new IpDiscoveryTimeoutError(what, mac, opts.timeoutMs, report())));
    }, Math.max(0, opts.timeoutMs));

    if (opts.wake !== undefined) {
      try {
        unsubscribe = opts.wake(() => {
          if (done) return;
          clearTimeout(sleepTimer);
          sleepTimer = undefined;
          nudge?.();
        });
      } catch (err) {
        finish(() => reject(err));
        return;
      }
    }

    const notify = (a: IpAttempt): void => {
      if (opts.onAttempt === undefined || done) return;
      try {
        opts.onAttempt(a);
      } catch (err) {
        finish(() => reject(err));
      }
    };

    /** Between rounds, a late answer with an address ends the sleep. */
    let sleeping = false;

    const start = (s: SourceState): Promise<void> => {
      s.inFlight = true;
      s.since = now();
      const thisRound = round;
      return probe(ctx, s.source).then(
        (p) => {
          s.inFlight = false;
          s.attempts++;
          if (done) return;
          s.answers = p.answers.length > 0 ? p.answers : [{ label: LABELS[s.source], answer: 'no answer' }];
          if (p.stop === true) s.stopped = true;
          const hit = p.answers.find((a) => a.ip !== undefined);
          if (hit !== undefined) s.hit = hit;
          for (const a of s.answers) {
            notify({
              round: thisRound,
              source: s.source,
              label: a.label,
              answer: a.answer,
              ...(a.ip !== undefined ? { ip: a.ip } : {}),
              elapsedMs: now() - started,
            });
          }
          if (hit !== undefined && sleeping) nudge?.();
        },
        (err: unknown) => {
          s.inFlight = false;
          s.attempts++;
          if (done) return;
          if (isFatal(err)) {
            finish(() => reject(err));
            return;
          }
          const label = LABELS[s.source];
          if (s.source === 'lease-api' && isNetworkNotFound(err)) {
            const name = typeof opts.network === 'string' ? opts.network : (opts.network?.name ?? '');
            s.answers = [{ label, answer: `network ${name} not found` }];
          } else if (isUnsupported(err)) {
            s.answers = [{ label, answer: `not supported here (${errorMessage(err)})` }];
            s.stopped = true;
          } else {
            s.answers = [{ label, answer: `error: ${errorMessage(err)}` }];
          }
          notify({ round: thisRound, source: s.source, label, answer: s.answers[0]?.answer ?? '', elapsedMs: now() - started });
        },
      );
    };

    /** The first source in order holding an address wins. */
    const takeHit = (): boolean => {
      for (const s of states) {
        if (s.hit?.ip === undefined) continue;
        const hit = s.hit;
        finish(() =>
          resolve({ ip: hit.ip as string, source: s.source, label: hit.label, rounds: round, elapsedMs: now() - started }),
        );
        return true;
      }
      return false;
    };

    const runRound = async (): Promise<void> => {
      round++;
      const roundStart = now();
      const calls = states.filter((s) => !s.stopped && !s.inFlight).map((s) => start(s));
      // Wait for this round's answers, but no longer than one poll interval: a slow
      // source keeps its call and is looked at again next round.
      await new Promise<void>((wake) => {
        nudge = wake;
        roundTimer = setTimeout(wake, pollMs);
        void Promise.allSettled(calls).then(() => wake());
      });
      clearTimeout(roundTimer);
      nudge = undefined;
      if (done || takeHit()) return;
      if (states.every((s) => s.stopped)) {
        finish(() => reject(new IpSourcesExhaustedError(what, mac, report())));
        return;
      }
      const rest = Math.max(0, pollMs - (now() - roundStart));
      sleeping = true;
      await new Promise<void>((wake) => {
        nudge = wake;
        sleepTimer = setTimeout(wake, rest);
      });
      sleeping = false;
      nudge = undefined;
      if (!done) takeHit();
    };

    void (async () => {
      try {
        while (!done) await runRound();
      } catch (err) {
        finish(() => reject(err));
      }
    })();
  });
}
