import { type LibvirtProbe, probeLibvirt } from './libvirt-probe.js';
import { type ToolLookup, hostTools, lookupTool } from './tools.js';
import { type Virtualization, detectVirtualization } from './virtualization.js';

/**
 * Host checks for `vmenv doctor`: is this machine able to run vmenv? Each check says
 * what it found and, when something is wrong, what to do about it.
 */
export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do when status is not ok; null when there is nothing to do. */
  fix: string | null;
}

export interface DoctorReport {
  /** No check failed (warnings allowed). */
  ok: boolean;
  /** libvirt domain type guests will get on this host. */
  domainType: 'kvm' | 'qemu';
  checks: Check[];
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
    detail: `qemu (software emulation, much slower): ${v.reason ?? 'hardware virtualization is not usable'}`,
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
    return { name: 'libvirt', status: 'ok', detail: `libvirt ${probe.version ?? '?'} at ${probe.uri}${host}`, fix: null };
  }
  return {
    name: 'libvirt',
    status: 'fail',
    detail: `cannot use libvirt at ${probe.uri}: ${probe.error ?? 'unknown error'}`,
    fix:
      probe.hint ??
      'Install libvirt (sudo apt-get install libvirt-daemon-system for qemu:///system, or libvirt-daemon for qemu:///session) and check the URI (--uri).',
  };
}

export interface DoctorOptions {
  uri?: string | undefined;
  timeoutMs?: number;
  pathEnv?: string;
}

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const [virt, tools, probe] = await Promise.all([
    detectVirtualization(),
    Promise.all(hostTools.map((tool) => lookupTool(tool, options.pathEnv))),
    probeLibvirt(options.uri, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  ]);
  const checks = [nodeCheck(), virtualizationCheck(virt), ...tools.map(toolCheck), libvirtCheck(probe)];
  return { ok: checks.every((c) => c.status !== 'fail'), domainType: virt.domainType, checks };
}
