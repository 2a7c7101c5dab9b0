import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/** Where `name` would be found on PATH, like `command -v`; undefined when it is not. */
export async function findOnPath(name: string, pathEnv = process.env['PATH'] ?? ''): Promise<string | undefined> {
  for (const dir of pathEnv.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A host program vmenv runs, and the Debian package that provides it. */
export interface HostTool {
  /** Check name; for alternatives, a name for the group. */
  name: string;
  /** Programs that satisfy it; the first found wins. */
  programs: string[];
  /** What vmenv uses it for. */
  purpose: string;
  /** Debian/Ubuntu package to install. */
  debianPackage: string;
  optional?: boolean;
}

export const hostTools: HostTool[] = [
  { name: 'qemu-system-x86_64', programs: ['qemu-system-x86_64'], purpose: 'runs the guests', debianPackage: 'qemu-system-x86' },
  { name: 'qemu-img', programs: ['qemu-img'], purpose: 'creates and converts disk images', debianPackage: 'qemu-utils' },
  {
    name: 'virsh',
    programs: ['virsh'],
    purpose: 'optional, to inspect libvirt by hand',
    debianPackage: 'libvirt-clients',
    optional: true,
  },
  { name: 'rsync', programs: ['rsync'], purpose: 'syncs project folders into guests', debianPackage: 'rsync' },
  { name: 'ssh', programs: ['ssh'], purpose: "opens 'vmenv ssh' sessions", debianPackage: 'openssh-client' },
  {
    name: 'iso-tool',
    programs: ['genisoimage', 'xorriso', 'mkisofs'],
    purpose: 'writes cloud-init seed ISOs',
    debianPackage: 'genisoimage',
  },
];

export interface ToolLookup {
  tool: HostTool;
  /** The program found and its path, if any. */
  found?: { program: string; path: string };
}

export async function lookupTool(tool: HostTool, pathEnv?: string): Promise<ToolLookup> {
  for (const program of tool.programs) {
    const path = await findOnPath(program, pathEnv);
    if (path !== undefined) return { tool, found: { program, path } };
  }
  return { tool };
}
