import { createHash } from 'node:crypto';
import { basename, resolve } from 'node:path';
import type { DiskConfig } from '../config/types.js';

/**
 * The libvirt name of a machine's domain and the stem of its volumes:
 * `<project dir>_<machine>_<hash of the project's absolute path>`. Two checkouts of the
 * same project (same directory name, same machine names) never collide.
 */
export function machineResourceName(projectDir: string, machine: string): string {
  const abs = resolve(projectDir);
  const hash = createHash('sha256').update(abs).digest('hex').slice(0, 8);
  const dir = basename(abs).replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^[.-]+/, '').slice(0, 40) || 'project';
  return `${dir}_${machine}_${hash}`;
}

/**
 * The volume names a machine owns in its pool: the root overlay (on the box's first
 * disk), the seed, the overlays on the box's other disks (`boxDisk(i)`, i from 1: the
 * box's second disk is `-box1`) and the `disks:` of vmenv.yaml. An extra disk is named
 * after its `name:` (`<resource>-disk-<name>.qcow2`), else after its position in
 * `disks:` (`<resource>-disk<i>.qcow2`); the forms never collide, and the resource name
 * keeps all of them unique to the project. src/inventory/stale.ts recognises all of them.
 */
export function machineVolumeNames(resourceName: string): {
  root: string;
  seed: string;
  disk: (i: number, name?: string) => string;
  boxDisk: (i: number) => string;
} {
  return {
    root: `${resourceName}.qcow2`,
    seed: `${resourceName}-seed.iso`,
    disk: (i, name) => (name === undefined ? `${resourceName}-disk${i}.qcow2` : `${resourceName}-disk-${name}.qcow2`),
    boxDisk: (i) => `${resourceName}-box${i}.qcow2`,
  };
}

/**
 * The volume names of a machine's extra disks, in the order of `disks:`. A named disk of
 * a machine made before names counted keeps the positional volume it was recorded with
 * (`recorded`: the machine's volume names), so its data stays attached.
 */
export function extraDiskVolumeNames(resourceName: string, disks: ReadonlyArray<Pick<DiskConfig, 'name'>>, recorded: readonly string[] = []): string[] {
  const names = machineVolumeNames(resourceName);
  return disks.map((d, i) => {
    const named = names.disk(i, d.name);
    const positional = names.disk(i);
    return d.name !== undefined && !recorded.includes(named) && recorded.includes(positional) ? positional : named;
  });
}
