import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';

/**
 * Can this host run guests with hardware virtualization? libvirt's domain type is
 * 'kvm' only when the CPU advertises vmx (Intel VT-x) or svm (AMD-V) AND /dev/kvm opens
 * read-write for this user; otherwise guests run under QEMU's software emulation
 * ('qemu'), which works everywhere but is many times slower.
 */
export interface Virtualization {
  domainType: 'kvm' | 'qemu';
  /** The CPU flag found, if any. */
  cpuFlag?: 'vmx' | 'svm';
  /** Why hardware virtualization is not usable ('qemu' only). */
  reason?: string;
  /** What the user can do about it ('qemu' only). */
  fix?: string;
}

/** The virtualization flag in /proc/cpuinfo text, if any CPU advertises one. Pure. */
export function cpuVirtFlag(cpuinfo: string): 'vmx' | 'svm' | undefined {
  for (const line of cpuinfo.split('\n')) {
    const m = /^flags\s*:(.*)$/.exec(line);
    if (m === null) continue;
    const flags = (m[1] ?? '').trim().split(/\s+/);
    if (flags.includes('vmx')) return 'vmx';
    if (flags.includes('svm')) return 'svm';
  }
  return undefined;
}

/** Why /dev/kvm could not be opened, from the error code, with a fix. Pure. */
export function explainKvmOpenError(code: string | undefined, path = '/dev/kvm'): { reason: string; fix: string } {
  switch (code) {
    case 'ENOENT':
      return {
        reason: `${path} does not exist`,
        fix: 'Load the kvm module (modprobe kvm_intel or kvm_amd); in a VM, enable nested virtualization on its host.',
      };
    case 'EACCES':
    case 'EPERM':
      return {
        reason: `no permission to open ${path} read-write`,
        fix: `Add yourself to the group that owns ${path} (usually 'kvm': sudo usermod -aG kvm $USER), then log in again.`,
      };
    default:
      return {
        reason: `${path} cannot be opened (${code ?? 'unknown error'})`,
        fix: 'Check that the kvm module is loaded and that no other hypervisor holds VT-x/AMD-V.',
      };
  }
}

export interface DetectOptions {
  cpuinfoPath?: string;
  kvmPath?: string;
}

export async function detectVirtualization(options: DetectOptions = {}): Promise<Virtualization> {
  const cpuinfoPath = options.cpuinfoPath ?? '/proc/cpuinfo';
  const kvmPath = options.kvmPath ?? '/dev/kvm';
  let cpuinfo: string;
  try {
    cpuinfo = await readFile(cpuinfoPath, 'utf8');
  } catch (err) {
    return {
      domainType: 'qemu',
      reason: `cannot read ${cpuinfoPath} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      fix: 'vmenv needs a Linux host to use KVM.',
    };
  }
  const cpuFlag = cpuVirtFlag(cpuinfo);
  if (cpuFlag === undefined) {
    return {
      domainType: 'qemu',
      reason: 'the CPU does not advertise vmx or svm',
      fix: "Enable VT-x/AMD-V in the firmware settings, or in a VM enable nested virtualization on its host.",
    };
  }
  try {
    const handle = await open(kvmPath, constants.O_RDWR);
    await handle.close();
    return { domainType: 'kvm', cpuFlag };
  } catch (err) {
    return { domainType: 'qemu', cpuFlag, ...explainKvmOpenError((err as NodeJS.ErrnoException).code, kvmPath) };
  }
}
