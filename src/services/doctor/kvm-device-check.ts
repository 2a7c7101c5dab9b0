/**
 * The `kvm-device` check of `vmenv doctor`: can QEMU's user open /dev/kvm as libvirt's
 * system daemon (root) can? libvirt 9 compares the two at every call that needs QEMU's
 * capabilities (define, start, capabilities): when root probed QEMU with KVM but QEMU's
 * user cannot open the device, the cached capabilities count as out of date and QEMU is
 * probed again, each time — a minute or more per `define` under software emulation. A
 * host without udev leaves /dev/kvm at root:root 0600, where Debian's udev rule makes
 * it root:kvm 0660.
 */
import { stat } from 'node:fs/promises';
import type { Check } from './doctor.js';
import { allows, groupName, modeString, userName, type Identity } from '../../hosts/qemu-user.js';

export const KVM_DEVICE = '/dev/kvm';

export interface KvmDeviceFacts {
  path: string;
  /** Why the check does not apply (a remote or per-user daemon); the rest is then unset. */
  notApplicable?: string;
  /** The device as stat saw it; undefined when there is none. */
  device?: { mode: number; uid: number; gid: number; owner: string; group: string };
  /** QEMU's user, or why it is not known. */
  qemu?: Identity | string;
}

export function kvmDeviceCheck(f: KvmDeviceFacts): Check {
  const name = 'kvm-device';
  if (f.notApplicable !== undefined) return { name, status: 'skip', detail: f.notApplicable, fix: null };
  if (f.device === undefined) {
    return { name, status: 'ok', detail: `no ${f.path}: libvirt probes QEMU without KVM, once`, fix: null };
  }
  const d = f.device;
  const shown = `${f.path} (${modeString(d.mode, false).replace(/^-/, 'c')} ${d.owner}:${d.group})`;
  if (f.qemu === undefined || typeof f.qemu === 'string') {
    return { name, status: 'skip', detail: `${shown}: QEMU's user is not known (${f.qemu ?? 'not asked'})`, fix: null };
  }
  const who = f.qemu;
  if (allows(d, who, 'r') && allows(d, who, 'w')) {
    return { name, status: 'ok', detail: `${shown} opens for ${who.name} (QEMU's user) as for libvirt: its cached QEMU capabilities stay valid`, fix: null };
  }
  return {
    name,
    status: 'warn',
    cause: 'qemu-user-cannot-open-kvm',
    detail:
      `${shown}: libvirt (root) can open it but ${who.name} (QEMU's user) cannot, so libvirt finds its cached QEMU ` +
      'capabilities out of date at every define and start and probes QEMU again (a minute or more per machine under software emulation)',
    fix: `sudo chgrp kvm ${f.path} && sudo chmod 0660 ${f.path} (what Debian's udev rule gives it; a host without udev needs this after each boot)`,
  };
}

/** stat of the device and QEMU's user, for a local system daemon. */
export async function gatherKvmDeviceFacts(o: {
  local: boolean;
  userDaemon: boolean;
  /** Who QEMU runs as, or why that is not known (qemuIdentity; shared with the other checks). */
  qemu: () => Promise<Identity | string>;
  path?: string;
}): Promise<KvmDeviceFacts> {
  const path = o.path ?? KVM_DEVICE;
  if (!o.local) return { path, notApplicable: 'libvirt runs on another host' };
  if (o.userDaemon) return { path, notApplicable: `a per-user daemon runs QEMU as you: libvirt and QEMU see ${path} alike` };
  let s;
  try {
    s = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path };
    throw err;
  }
  const [owner, group, qemu] = await Promise.all([userName(s.uid), groupName(s.gid), o.qemu()]);
  return { path, device: { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, owner: owner ?? String(s.uid), group: group ?? String(s.gid) }, qemu };
}
