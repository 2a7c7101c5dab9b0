import type { MachineConfig, SyncedFolder } from '../../../src/config/types.js';

/** The project folder the tables pretend vmenv.yaml is in. */
export const DIR = '/p';
export const FILE = '/p/vmenv.yaml';

export function folder(over: Partial<SyncedFolder> = {}): SyncedFolder {
  return {
    host: DIR,
    guest: '/vagrant',
    type: 'rsync',
    exclude: [],
    args: [],
    exclude_vcs_ignored: false,
    owner: undefined,
    group: undefined,
    create: false,
    disabled: false,
    mount: true,
    accessmode: undefined,
    readonly: false,
    ...over,
  };
}

/** A machine with every default, as loadConfig returns it for `box: tiny`. */
export function machine(over: Partial<MachineConfig> = {}): MachineConfig {
  const name = over.name ?? 'default';
  return {
    name,
    primary: true,
    box: { name: 'tiny', version: undefined },
    cpus: 1,
    memory: 512,
    disk_size: undefined,
    hostname: name,
    uri: undefined,
    driver: 'auto',
    pool: 'default',
    network: { mode: undefined, name: undefined, subnet: undefined, lease_file: undefined },
    ssh: { username: 'vagrant', port: 22, private_key_path: undefined, insert_key: true },
    synced_folders: [folder()],
    provision: [],
    shutdown: { mode: 'ssh', timeout: 60 },
    autostart: false,
    boot: { machine: 'pc', firmware: 'bios', timeout: 300 },
    disks: [],
    forwarded_ports: [],
    suspend_mode: 'pause',
    cloud_init: { user_data: undefined, network_config: undefined },
    ...over,
  };
}

/** Lines joined with newlines and a final newline: `yaml('box: tiny', 'cpus: 2')`. */
export function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}
