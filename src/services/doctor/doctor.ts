import type { LibvirtClient } from '../../libvirt/client.js';
import { usesUserDaemon, type LibvirtUri } from '../../libvirt/uri.js';
import { LibvirtHost } from '../../hosts/libvirt-host.js';
import type { StaleResources } from '../../inventory/stale.js';
import { plural } from '../../util/format.js';
import { closeLibvirt, DEFAULT_PROBE_TIMEOUT_MS, ProbeTimeout, reachLibvirt, withTimeout, type LibvirtProbe } from './libvirt-probe.js';
import { qemuIdentity, type Identity } from '../../hosts/qemu-user.js';
import { type ToolLookup, hostTools, lookupTool } from '../../hosts/tools.js';
import { type Virtualization, detectVirtualization } from '../../hosts/virtualization.js';
import { checkTarget, type CheckTarget } from './target.js';

/**
 * Host checks for `vmenv doctor`: is this machine able to run vmenv? Each check says
 * what it found and, when something is wrong, what to do about it.
 */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do when status is not ok; null when there is nothing to do. */
  fix: string | null;
  /** A word for scripts saying why (libvirt: socket-missing, daemon-down, …). */
  cause?: string;
  /** Lines listed under the check (the stale resources). */
  items?: string[];
}

export interface DoctorReport {
  /** No check failed (warnings allowed). */
  ok: boolean;
  /** 0: nothing failed; 3: libvirt cannot be reached; 1: another check failed. */
  exitCode: 0 | 1 | 3;
  /** libvirt domain type guests will get on this host. */
  domainType: 'kvm' | 'qemu';
  /** The libvirt URI checked. */
  uri: string;
  checks: Check[];
  /** The stale resources found, when libvirt could be asked. */
  stale?: StaleResources;
}

export const MIN_NODE_MAJOR = 20;

export function nodeCheck(version: string = process.versions.node, minMajor = MIN_NODE_MAJOR): Check {
  const major = Number.parseInt(version.split('.')[0] ?? '', 10);
  if (Number.isFinite(major) && major >= minMajor) {
    return { name: 'node', status: 'ok', detail: `node ${version}`, fix: null };
  }
  return {
    name: 'node',
    status: 'fail',
    detail: `node ${version}, vmenv needs ${minMajor} or newer`,
    fix: `Install Node.js ${minMajor} or newer (e.g. from nodejs.org or your distribution's backports).`,
  };
}

export function virtualizationCheck(v: Virtualization): Check {
  if (v.domainType === 'kvm') {
    return {
      name: 'virtualization',
      status: 'ok',
      detail: `kvm (hardware virtualization: CPU flag ${v.cpuFlag ?? '?'}, /dev/kvm read-write)`,
      fix: null,
    };
  }
  return {
    name: 'virtualization',
    status: 'warn',
    detail: `qemu: guests run under software emulation (domain type 'qemu'), many times slower than kvm, because ${v.reason ?? 'hardware virtualization is not usable'}`,
    fix: v.fix ?? null,
  };
}

export function toolCheck(lookup: ToolLookup): Check {
  const { tool, found } = lookup;
  if (found !== undefined) {
    return { name: tool.name, status: 'ok', detail: `${found.program} at ${found.path} (${tool.purpose})`, fix: null };
  }
  const names = tool.programs.join(', ');
  return {
    name: tool.name,
    status: tool.optional === true ? 'warn' : 'fail',
    detail: `${tool.programs.length > 1 ? `none of ${names}` : names} on PATH (${tool.purpose})`,
    fix: `sudo apt-get install ${tool.debianPackage}`,
  };
}

export function libvirtCheck(probe: LibvirtProbe): Check {
  if (probe.ok) {
    const host = probe.hostname === undefined ? '' : ` on ${probe.hostname}`;
    const note = probe.note === undefined ? '' : `; ${probe.note}`;
    return { name: 'libvirt', status: 'ok', detail: `libvirt ${probe.version ?? '?'} at ${probe.uri}${host} (${probe.reason})${note}`, fix: null };
  }
  const check: Check = {
    name: 'libvirt',
    status: 'fail',
    detail: `cannot use libvirt at ${probe.uri} (${probe.reason}): ${probe.error ?? 'unknown error'}`,
    fix:
      probe.hint ??
      'Install libvirt (sudo apt-get install libvirt-daemon-system for qemu:///system, or libvirt-daemon for qemu:///session) and check the URI (--uri).',
  };
  if (probe.cause !== undefined) check.cause = probe.cause;
  return check;
}

export function projectCheck(target: CheckTarget): Check | undefined {
  if (target.projectError !== undefined) {
    const first = target.projectError.message.split('\n').slice(0, 3).join(' ').replace(/\s+/g, ' ');
    return {
      name: 'project',
      status: 'fail',
      detail: `${first} — the checks below use vmenv's defaults`,
      fix: "Fix vmenv.yaml ('vmenv up' stops on it); 'vmenv up' shows every problem with its line.",
    };
  }
  const p = target.project;
  if (p === undefined) return undefined;
  const which = p.machines.length > 1 ? `; checking machine '${p.machine}'s settings` : '';
  const detail = `${p.path}: machine${p.machines.length === 1 ? '' : 's'} ${p.machines.join(', ')}${which}`;
  if (p.warnings.length > 0) return { name: 'project', status: 'warn', detail: `${detail}; ${p.warnings.join('; ')}`, fix: 'See the warnings in vmenv.yaml.' };
  return { name: 'project', status: 'ok', detail, fix: null };
}

/** The stale check: what `vmenv prune` would remove. Pure. */
export function staleCheck(stale: StaleResources, indexStale: ReadonlyArray<{ machine: string; project: string; reason: string }>, pruneCommand = 'vmenv prune'): Check {
  const items = [
    ...stale.domains.map((d) => `domain ${d.name}: ${d.reason}`),
    ...stale.volumes.map((v) => `volume ${v.pool}/${v.name}: ${v.reason}`),
    ...stale.networks.map((n) => `network ${n.name}: ${n.reason}`),
    ...indexStale.map((e) => `index entry ${e.machine} (${e.project}): ${e.reason}`),
  ];
  if (items.length === 0) {
    return { name: 'stale', status: 'ok', detail: `no stale vmenv domains, volumes or networks on ${stale.uri}; the machine index lists no vanished project`, fix: null };
  }
  const parts = [
    stale.domains.length > 0 ? plural(stale.domains.length, 'domain') : '',
    stale.volumes.length > 0 ? plural(stale.volumes.length, 'volume') : '',
    stale.networks.length > 0 ? plural(stale.networks.length, 'network') : '',
    indexStale.length > 0 ? plural(indexStale.length, 'machine index entry', 'machine index entries') : '',
  ].filter((s) => s !== '');
  return {
    name: 'stale',
    status: 'warn',
    detail: `left behind by projects that are gone, on ${stale.uri}: ${parts.join(', ')}`,
    fix: `${pruneCommand} (${pruneCommand} --dry-run lists what it would remove)`,
    items,
  };
}

function skipped(name: string, why: string): Check {
  return { name, status: 'skip', detail: `not checked: ${why}`, fix: null };
}

/** The exit code for a set of checks: 3 when libvirt cannot be reached, 1 for another failure. Pure. */
export function doctorExitCode(checks: readonly Check[]): 0 | 1 | 3 {
  if (checks.some((c) => c.name === 'libvirt' && c.status === 'fail')) return 3;
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}

export interface DoctorOptions {
  /** The folder to look for a project from (default: the current one). */
  cwd?: string;
  uri?: string | undefined;
  timeoutMs?: number;
  pathEnv?: string;
}

/** Runs `work` with a deadline; a check that errs or runs out of time fails with what happened. */
async function guarded(name: string, timeoutMs: number, work: () => Promise<Check>): Promise<Check> {
  try {
    return await withTimeout(work(), timeoutMs, `checking ${name}`);
  } catch (err) {
    if (err instanceof ProbeTimeout) {
      return { name, status: 'fail', detail: `libvirt did not answer within ${(timeoutMs / 1000).toFixed(0)} s`, fix: 'Is the daemon overloaded? Try again, or raise --timeout.' };
    }
    return { name, status: 'fail', detail: `cannot check: ${err instanceof Error ? err.message : String(err)}`, fix: 'Run it again; if it persists, file a bug with this message.' };
  }
}

async function libvirtChecks(
  client: LibvirtClient,
  parsed: LibvirtUri,
  target: CheckTarget,
  virt: Virtualization,
  timeoutMs: number,
): Promise<{ checks: Check[]; stale?: StaleResources }> {
  const [{ gatherPoolFacts, poolCheck }, { gatherNetworkFacts, networkCheck }, { detectStale }, { gatherKvmDeviceFacts, kvmDeviceCheck }] = await Promise.all([
    import('./pool-check.js'),
    import('./network-check.js'),
    import('../../inventory/stale.js'),
    import('./kvm-device-check.js'),
  ]);
  const local = parsed.transport === 'unix';
  const uri = client.uri;
  const userDaemon = usesUserDaemon(parsed, process.getuid?.() ?? 0);
  const host = LibvirtHost.of(uri);
  const session = host.session;
  const mode = target.network.mode ?? host.defaultNetworkMode;
  const modeSource = target.network.mode !== undefined ? 'network.mode in vmenv.yaml' : `the default for ${session ? 'qemu:///session' : 'a system libvirt'}`;
  let stale: StaleResources | undefined;
  const pruneCommand = target.uriReason === 'given with --uri' ? `vmenv prune --uri '${uri}'` : 'vmenv prune';
  // The pool and kvm-device checks both need QEMU's user: ask libvirt's capabilities once
  // (with an unusable /dev/kvm each capabilities call can make libvirt probe QEMU again).
  let identity: Promise<Identity | string> | undefined;
  const qemu = (): Promise<Identity | string> => (identity ??= qemuIdentity(client, { userDaemon, domainType: virt.domainType }));

  const checks = await Promise.all([
    guarded('pool', timeoutMs, async () =>
      poolCheck(await gatherPoolFacts(client, { name: target.pool, source: target.poolSource, uri, local, userDaemon, qemu })),
    ),
    guarded('kvm-device', timeoutMs, async () => kvmDeviceCheck(await gatherKvmDeviceFacts({ local, userDaemon, qemu }))),
    guarded('network', timeoutMs, async () =>
      networkCheck(
        await gatherNetworkFacts(client, {
          uri,
          mode,
          modeSource,
          name: target.network.name,
          configuredSubnet: target.network.subnet,
          local,
          netns: host.guestNetns,
        }),
      ),
    ),
    guarded('stale', timeoutMs, async () => {
      const projects = target.project === undefined ? [] : [{ dir: target.project.dir, machines: target.project.machines }];
      const found = await detectStale(client, { local, projects });
      stale = found.stale;
      return staleCheck(found.stale, found.staleIndex, pruneCommand);
    }),
  ]);
  return stale === undefined ? { checks } : { checks, stale };
}

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const target = await checkTarget(options.cwd ?? process.cwd(), options.uri);
  const reachOptions = { timeoutMs, ...(target.uri !== undefined ? { uri: target.uri } : {}), ...(target.uriReason !== undefined ? { uriReason: target.uriReason } : {}) };
  const [virt, tools, reached] = await Promise.all([
    detectVirtualization(),
    Promise.all(hostTools.map((tool) => lookupTool(tool, options.pathEnv))),
    reachLibvirt(reachOptions),
  ]);
  const project = projectCheck(target);
  const checks: Check[] = [nodeCheck(), ...(project ? [project] : []), virtualizationCheck(virt), ...tools.map(toolCheck), libvirtCheck(reached.probe)];
  let stale: StaleResources | undefined;
  if (reached.client !== undefined && reached.target !== undefined) {
    try {
      const more = await libvirtChecks(reached.client, reached.target, target, virt, timeoutMs);
      checks.push(...more.checks);
      stale = more.stale;
    } finally {
      await closeLibvirt(reached.client);
    }
  } else {
    for (const name of ['pool', 'kvm-device', 'network', 'stale']) checks.push(skipped(name, 'libvirt cannot be reached'));
  }
  const exitCode = doctorExitCode(checks);
  const report: DoctorReport = { ok: exitCode === 0, exitCode, domainType: virt.domainType, uri: reached.probe.uri, checks };
  if (stale !== undefined) report.stale = stale;
  return report;
}
