/**
 * Good vmenv.yaml files → the normalised config, every field (toStrictEqual: every key
 * present, defaults filled, nothing extra).
 */
import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { decodeLoaded, encodeLoaded } from '../../../src/config/cache.js';
import { checkConfigText, parseConfig } from '../../../src/config/load.js';
import type { MachineConfig, ShellProvisioner } from '../../../src/config/types.js';
import { FILE, folder, machine, yaml } from './helpers.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface Good {
  name: string;
  text: string;
  machines: MachineConfig[];
}

const shell: Omit<ShellProvisioner, 'type'> = { name: undefined, run: 'once', inline: undefined, path: undefined, args: [], env: {}, privileged: true };

const good: Good[] = [
  { name: 'one machine, only a box: every default', text: yaml('box: tiny'), machines: [machine()] },
  {
    name: 'every key of a single machine',
    text: yaml(
      'box: { name: debian-12, version: "~> 1.0" }',
      'cpus: 2',
      'memory: 2G',
      'disk_size: 20G',
      'hostname: devbox',
      'uri: qemu+ssh://me@build1/system?keyfile=~/.ssh/id_ed25519',
      'driver: kvm',
      'pool: images',
      'network: { mode: nat, name: vmenv-net, subnet: 192.168.130.0/24 }',
      'ssh: { username: debian, port: 2222, private_key_path: keys/id, insert_key: false }',
      'synced_folders:',
      '  - { host: src, guest: /srv/src/, type: 9p, accessmode: mapped, readonly: true, mount: false, owner: 1000, group: www }',
      '  - { host: /data, guest: /data, type: virtiofs, create: true }',
      '  - { guest: /vagrant, exclude: [.git/], args: [--delete] }',
      'provision:',
      '  - { name: deps, type: shell, inline: apt-get update, run: always, privileged: false, args: [-x, 1], env: { A: b, N: 1 } }',
      '  - { type: shell, path: scripts/setup.sh }',
      '  - { type: file, source: conf/app.conf, destination: ~/app.conf }',
      '  - { type: ansible, playbook: site.yml, extra_vars: { port: 80, list: [a] }, limit: [web, db], tags: deploy, become: true, run: never }',
      'shutdown: { mode: acpi, timeout: 30 }',
      'autostart: true',
      'boot: { machine: q35, firmware: uefi, timeout: 600 }',
      'disks:',
      '  - { size: 10 }',
      '  - { size: 512M, format: raw, bus: sata, name: scratch }',
      'forwarded_ports:',
      '  - { guest: 80, host: 8080 }',
      '  - { guest: 53, host: 5353, host_ip: 0.0.0.0, protocol: udp, auto_correct: true }',
      'suspend_mode: managedsave',
    ),
    machines: [
      machine({
        box: { name: 'debian-12', version: '~> 1.0' },
        cpus: 2,
        memory: 2048,
        disk_size: 20 * GiB,
        hostname: 'devbox',
        uri: 'qemu+ssh://me@build1/system?keyfile=~/.ssh/id_ed25519',
        driver: 'kvm',
        pool: 'images',
        network: { mode: 'nat', name: 'vmenv-net', subnet: '192.168.130.0/24', lease_file: undefined },
        ssh: { username: 'debian', port: 2222, private_key_path: '/p/keys/id', insert_key: false },
        synced_folders: [
          // The entry on /vagrant replaces the default in its place (first).
          folder({ exclude: ['.git/'], args: ['--delete'] }),
          folder({ host: '/p/src', guest: '/srv/src', type: '9p', accessmode: 'mapped', readonly: true, mount: false, owner: '1000', group: 'www' }),
          folder({ host: '/data', guest: '/data', type: 'virtiofs', create: true }),
        ],
        provision: [
          { ...shell, name: 'deps', type: 'shell', inline: 'apt-get update', run: 'always', privileged: false, args: ['-x', '1'], env: { A: 'b', N: '1' } },
          { ...shell, type: 'shell', path: '/p/scripts/setup.sh' },
          { name: undefined, run: 'once', type: 'file', source: '/p/conf/app.conf', destination: '~/app.conf' },
          {
            name: undefined,
            run: 'never',
            type: 'ansible',
            playbook: '/p/site.yml',
            extra_vars: { port: 80, list: ['a'] },
            limit: 'web,db',
            tags: ['deploy'],
            become: true,
          },
        ],
        shutdown: { mode: 'acpi', timeout: 30 },
        autostart: true,
        boot: { machine: 'q35', firmware: 'uefi', timeout: 600 },
        disks: [
          { size: 10 * GiB, format: 'qcow2', bus: 'virtio', name: undefined },
          { size: 512 * MiB, format: 'raw', bus: 'sata', name: 'scratch' },
        ],
        forwarded_ports: [
          { guest: 80, host: 8080, host_ip: '127.0.0.1', protocol: 'tcp', auto_correct: false },
          { guest: 53, host: 5353, host_ip: '0.0.0.0', protocol: 'udp', auto_correct: true },
        ],
        suspend_mode: 'managedsave',
      }),
    ],
  },
  {
    name: 'machines: per-machine values override top-level ones; ssh/network/boot/shutdown merge key by key',
    text: yaml(
      'box: { name: debian-12, version: "1.0" }',
      'cpus: 2',
      'ssh: { username: ops, port: 2200 }',
      'network: { mode: nat, subnet: 10.10.0.0/16 }',
      'boot: { firmware: uefi }',
      'shutdown: { timeout: 10 }',
      'machines:',
      '  web:',
      '    cpus: 4',
      '    ssh: { username: web }',
      '    network: { name: webnet }',
      '    boot: { machine: q35 }',
      '    shutdown: { mode: acpi }',
      '  db:',
      '    box: tiny', // replaces the whole box: the top-level version is not inherited
      '    hostname: database',
    ),
    machines: [
      machine({
        name: 'web',
        primary: false,
        box: { name: 'debian-12', version: '1.0' },
        cpus: 4,
        ssh: { username: 'web', port: 2200, private_key_path: undefined, insert_key: true },
        network: { mode: 'nat', name: 'webnet', subnet: '10.10.0.0/16', lease_file: undefined },
        boot: { machine: 'q35', firmware: 'uefi', timeout: 300 },
        shutdown: { mode: 'acpi', timeout: 10 },
      }),
      machine({
        name: 'db',
        primary: false,
        hostname: 'database',
        cpus: 2,
        ssh: { username: 'ops', port: 2200, private_key_path: undefined, insert_key: true },
        network: { mode: 'nat', name: undefined, subnet: '10.10.0.0/16', lease_file: undefined },
        boot: { machine: 'pc', firmware: 'uefi', timeout: 300 },
        shutdown: { mode: 'ssh', timeout: 10 },
      }),
    ],
  },
  {
    name: 'machines: lists concatenate, top-level items first',
    text: yaml(
      'box: tiny',
      'provision:',
      '  - { name: common, type: shell, inline: echo common }',
      'disks:',
      '  - { size: 1G, name: shared }',
      'forwarded_ports:',
      '  - { guest: 22, host: 2200, auto_correct: true }',
      'synced_folders:',
      '  - { host: shared, guest: /shared }',
      'machines:',
      '  web:',
      '    provision:',
      '      - { name: own, type: shell, inline: echo web }',
      '    disks:',
      '      - { size: 2G }',
      '    forwarded_ports:',
      '      - { guest: 80, host: 8080 }',
      '    synced_folders:',
      '      - { host: web, guest: /web }',
      '  db:',
    ),
    machines: [
      machine({
        name: 'web',
        primary: false,
        provision: [
          { ...shell, name: 'common', type: 'shell', inline: 'echo common' },
          { ...shell, name: 'own', type: 'shell', inline: 'echo web' },
        ],
        disks: [
          { size: GiB, format: 'qcow2', bus: 'virtio', name: 'shared' },
          { size: 2 * GiB, format: 'qcow2', bus: 'virtio', name: undefined },
        ],
        forwarded_ports: [
          { guest: 22, host: 2200, host_ip: '127.0.0.1', protocol: 'tcp', auto_correct: true },
          { guest: 80, host: 8080, host_ip: '127.0.0.1', protocol: 'tcp', auto_correct: false },
        ],
        synced_folders: [folder(), folder({ host: '/p/shared', guest: '/shared' }), folder({ host: '/p/web', guest: '/web' })],
      }),
      machine({
        name: 'db',
        primary: false,
        provision: [{ ...shell, name: 'common', type: 'shell', inline: 'echo common' }],
        disks: [{ size: GiB, format: 'qcow2', bus: 'virtio', name: 'shared' }],
        forwarded_ports: [{ guest: 22, host: 2200, host_ip: '127.0.0.1', protocol: 'tcp', auto_correct: true }],
        synced_folders: [folder(), folder({ host: '/p/shared', guest: '/shared' })],
      }),
    ],
  },
  {
    name: 'synced folders: a machine replaces a top-level folder by guest path, or disables it',
    text: yaml(
      'box: tiny',
      'synced_folders:',
      '  - { guest: /vagrant, type: 9p }',
      '  - { host: cache, guest: /cache }',
      'machines:',
      '  a:',
      '    synced_folders:',
      '      - { guest: /vagrant, disabled: true }',
      '  b:',
      '    synced_folders:',
      '      - { host: other, guest: /cache/ }',
    ),
    machines: [
      machine({ name: 'a', primary: false, synced_folders: [folder({ host: '/p/cache', guest: '/cache' })] }),
      machine({ name: 'b', primary: false, synced_folders: [folder({ type: '9p' }), folder({ host: '/p/other', guest: '/cache' })] }),
    ],
  },
  {
    name: 'the default folder disabled',
    text: yaml('box: tiny', 'synced_folders: [{ disabled: true }]'),
    machines: [machine({ synced_folders: [] })],
  },
  {
    name: 'the primary machine; a lone machine under machines: is primary',
    text: yaml('box: tiny', 'machines:', '  a: {}', '  b: { primary: true }'),
    machines: [machine({ name: 'a', primary: false }), machine({ name: 'b', primary: true })],
  },
  {
    name: 'one machine under machines:, written with nothing under it',
    text: yaml('box: tiny', 'machines:', '  web:'),
    machines: [machine({ name: 'web' })],
  },
  {
    name: 'YAML anchors, merge keys and x- keys to hold them',
    text: yaml(
      'x-common: &common',
      '  cpus: 2',
      '  memory: 1G',
      'box: tiny',
      'machines:',
      '  a:',
      '    <<: *common',
      '  b:',
      '    <<: *common',
      '    memory: 2G',
    ),
    machines: [machine({ name: 'a', primary: false, cpus: 2, memory: 1024 }), machine({ name: 'b', primary: false, cpus: 2, memory: 2048 })],
  },
  {
    name: 'host paths: ~ expands to the home folder, absolute paths stay',
    text: yaml('box: tiny', 'ssh: { private_key_path: ~/.ssh/id_ed25519 }', 'synced_folders: [{ host: /srv/x, guest: /x }]'),
    machines: [
      machine({
        ssh: { username: 'vagrant', port: 22, private_key_path: `${homedir()}/.ssh/id_ed25519`, insert_key: true },
        synced_folders: [folder(), folder({ host: '/srv/x', guest: '/x' })],
      }),
    ],
  },
  {
    name: 'provisioners with only their required keys: every default',
    text: yaml(
      'box: tiny',
      'provision:',
      '  - { type: ansible, playbook: site.yml }',
      '  - { type: file, source: a, destination: /a }',
      '  - { type: ansible, playbook: /pb.yml, extra_vars: { debug: }, tags: [a, b], limit: all }',
      '  - { type: shell, inline: x, env: { EMPTY: "" } }',
    ),
    machines: [
      machine({
        provision: [
          { name: undefined, run: 'once', type: 'ansible', playbook: '/p/site.yml', extra_vars: {}, limit: undefined, tags: [], become: false },
          { name: undefined, run: 'once', type: 'file', source: '/p/a', destination: '/a' },
          { name: undefined, run: 'once', type: 'ansible', playbook: '/pb.yml', extra_vars: { debug: null }, limit: 'all', tags: ['a', 'b'], become: false },
          { ...shell, type: 'shell', inline: 'x', env: { EMPTY: '' } },
        ],
      }),
    ],
  },
  {
    name: 'numbers where strings are expected are taken as written',
    text: yaml('box: { name: tiny, version: 1.10 }', 'provision: [{ type: shell, inline: x, args: [1.50] }]'),
    machines: [
      machine({
        box: { name: 'tiny', version: '1.10' },
        provision: [{ ...shell, type: 'shell', inline: 'x', args: ['1.50'] }],
      }),
    ],
  },
];

describe('good files', () => {
  it.each(good)('$name', ({ text, machines }) => {
    const { config, warnings } = parseConfig(text, FILE);
    expect(warnings).toEqual([]);
    expect(config.path).toBe(FILE);
    expect(config.dir).toBe('/p');
    expect(config.machines).toStrictEqual(machines);
    expect(config.primary).toBe(config.machines.find((m) => m.primary));
    // What the config cache (.vmenv/config-cache.json) gives back is the same config.
    const again = decodeLoaded(JSON.parse(JSON.stringify(encodeLoaded({ config, warnings }))));
    expect(again.config).toStrictEqual(config);
    expect(again.config.primary).toBe(again.config.machines.find((m) => m.primary));
  });
});

describe('sizes', () => {
  const memory: Array<[string, number]> = [
    ['512', 512],
    ['"2048"', 2048],
    ['512M', 512],
    ['512MB', 512],
    ['512MiB', 512],
    ['2G', 2048],
    ['2g', 2048],
    ['2GiB', 2048],
    ['2GB', 2048],
    ['1.5G', 1536],
    ['"1.5 GiB"', 1536],
    ['1T', 1024 * 1024],
    ['65536K', 64],
  ];
  it.each(memory)('memory: %s is %i MiB', (written, mib) => {
    expect(parseConfig(yaml('box: tiny', `memory: ${written}`), FILE).config.machines[0]!.memory).toBe(mib);
  });

  const disk: Array<[string, number]> = [
    ['20', 20 * GiB],
    ['20G', 20 * GiB],
    ['1.5G', 1.5 * GiB],
    ['512M', 512 * MiB],
    ['2T', 2 * 1024 * GiB],
    ['10737418240B', 10 * GiB],
  ];
  it.each(disk)('disk_size: %s is %i bytes', (written, bytes) => {
    expect(parseConfig(yaml('box: tiny', `disk_size: ${written}`), FILE).config.machines[0]!.disk_size).toBe(bytes);
  });
});

describe('warnings', () => {
  it('a top-level hostname shared by several machines, a privileged host port', () => {
    const r = checkConfigText(
      yaml('box: tiny', 'hostname: same', 'forwarded_ports: [{ guest: 80, host: 80, auto_correct: true }]', 'machines: { a: {}, b: {} }'),
      FILE,
    );
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([
      { path: 'hostname', message: 'is set at the top level, so several machines get the same host name', line: 2 },
      { path: 'forwarded_ports[0].host', message: 'port 80 on the host needs root (or CAP_NET_BIND_SERVICE)', line: 3 },
    ]);
    expect(r.config?.machines.map((m) => m.hostname)).toEqual(['same', 'same']);
  });
});
