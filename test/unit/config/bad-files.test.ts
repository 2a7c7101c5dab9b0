/**
 * Bad vmenv.yaml files → exactly the problems reported: key path, message, line. Every
 * problem of a file comes at once, in line order.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, formatProblem } from '../../../src/config/errors.js';
import { checkConfigText, parseConfig } from '../../../src/config/load.js';
import type { ConfigProblem } from '../../../src/config/types.js';
import { ExitCode } from '../../../src/errors.js';
import { FILE, yaml } from './helpers.js';

interface Bad {
  name: string;
  text: string;
  problems: ConfigProblem[];
}

const p = (path: string, message: string, line?: number): ConfigProblem => (line === undefined ? { path, message } : { path, message, line });

const HOSTNAME = "must be a host name label (RFC 1123: letters, digits and '-', not at either end)";

const bad: Bad[] = [
  {
    name: 'several problems in one file, in line order',
    text: yaml(
      'box: tiny', // 1
      'memroy: 2G', // 2
      'machines:', // 3
      '  web:', // 4
      '    memory: 2 gigs', // 5
      '    cpus: 0', // 6
      '    autostart: yes', // 7
      '    driver: kvmm', // 8
      '  db:', // 9
      '    hostname: -db', // 10
      '    disk_size: 1.3K', // 11
    ),
    problems: [
      p('memroy', "unknown key 'memroy'; did you mean 'memory'?", 2),
      p('machines.web.memory', "must be a number of MiB or a size such as 512M or 2G, got '2 gigs'", 5),
      p('machines.web.cpus', 'must be a whole number from 1 to 512, got 0', 6),
      p('machines.web.autostart', "must be true or false, got 'yes'", 7),
      p('machines.web.driver', "must be one of auto, kvm, qemu; got 'kvmm' (did you mean 'kvm'?)", 8),
      p('machines.db.hostname', `${HOSTNAME}, got '-db'`, 10),
      p('machines.db.disk_size', "must be at least 1 MiB, got '1.3K'", 11),
    ],
  },
  {
    name: 'unknown keys: did you mean (edit distance, case and separators, keys in the wrong place)',
    text: yaml(
      'box: tiny',
      'cpu: 2',
      'diskSize: 10G',
      'synced-folders: []',
      'forward_ports: []',
      'firmware: uefi',
      'primary: true',
      'ram: 1G',
      'colour: blue',
      'ssh: { usernme: me, key: x }',
      'boot: { firmwre: uefi }',
    ),
    problems: [
      p('cpu', "unknown key 'cpu'; did you mean 'cpus'?", 2),
      p('diskSize', "unknown key 'diskSize'; did you mean 'disk_size'?", 3),
      p('synced-folders', "unknown key 'synced-folders'; did you mean 'synced_folders'?", 4),
      p('forward_ports', "unknown key 'forward_ports'; did you mean 'forwarded_ports'?", 5),
      p('firmware', "unknown key 'firmware'; did you mean 'boot.firmware'?", 6),
      p('primary', "unknown key 'primary'; did you mean 'machines.<name>.primary'?", 7),
      p('ram', "unknown key 'ram'; did you mean 'memory'?", 8),
      p('colour', "unknown key 'colour'", 9),
      p('ssh.usernme', "unknown key 'usernme'; did you mean 'username'?", 10),
      p('ssh.key', "unknown key 'key'", 10),
      p('boot.firmwre', "unknown key 'firmwre'; did you mean 'firmware'?", 11),
    ],
  },
  {
    name: 'sizes: units, bare numbers, whole MiB',
    text: yaml('box: tiny', 'memory: 2', 'machines:', '  a: { memory: 1.3G }', '  b: { memory: 2X }', '  c: { memory: -1 }', '  d: { disk_size: 0.5K }', '  e: { disk_size: [20] }'),
    problems: [
      p('memory', "must be at least 64 MiB, got 2 (a bare number is MiB: did you mean '2G'?)", 2),
      p('machines.a.memory', "must be a whole number of MiB, got '1.3G' (1331.2 MiB)", 4),
      p('machines.b.memory', "must be a number of MiB or a size such as 512M or 2G, got '2X'", 5),
      p('machines.c.memory', 'must be a number of MiB or a size such as 512M or 2G, got -1', 6),
      p('machines.d.disk_size', "must be at least 1 MiB, got '0.5K'", 7),
      p('machines.e.disk_size', 'must be a size such as 20G or 512M (a bare number is GiB), got a list', 8),
    ],
  },
  {
    name: 'box: required, its forms, version constraints',
    text: yaml('machines:', '  a: {}', '  b: { box: { version: 1.0 } }', '  c: { box: [tiny] }', '  d: { box: { name: x, version: "one point oh" } }', '  e: { box: "" }'),
    problems: [
      p('machines.a.box', 'is required: set box at the top level or for this machine', 2),
      p('machines.b.box.name', 'is required', 3),
      p('machines.c.box', 'must be a box name, or a map with name and version, got a list', 4),
      p('machines.d.box.version', "must be a version or a constraint such as '1.2.0', '>= 1.0, < 2' or '~> 1.2', got 'one point oh'", 5),
      p('machines.e.box', 'must not be empty', 6),
    ],
  },
  {
    name: 'a single machine without a box',
    text: yaml('cpus: 2'),
    problems: [p('box', "is required: the box to build the machine from (e.g. 'tiny')")],
  },
  {
    name: 'machines: names, count, primary, host names from names',
    text: yaml('box: tiny', 'machines:', '  Web: {}', '  a_b: {}', '  ok: { primary: true }', '  ok2: { primary: true }', '  x-: {}', '  web: 3'),
    problems: [
      p('machines.Web', "machine names are lower-case letters, digits and '-', starting with a letter or digit; got 'Web'", 3),
      p('machines.a_b', "machine names are lower-case letters, digits and '-', starting with a letter or digit; got 'a_b'", 4),
      p('machines.ok2.primary', "only one machine can be primary, and 'ok' is", 6),
      p('machines.x-', "'x-' is not a valid host name (RFC 1123: at most 63 letters, digits and '-', not at either end); set hostname for this machine", 7),
      p('machines.web', 'must be a map of settings, got 3', 8),
    ],
  },
  {
    name: 'machines: a list, or empty',
    text: yaml('box: tiny', 'machines:', '  - name: web'),
    problems: [p('machines', 'must be a map, got a list', 3)],
  },
  {
    name: 'machines: an empty map',
    text: yaml('box: tiny', 'machines: {}'),
    problems: [p('machines', 'must name at least one machine (or leave machines: out for a single machine)', 2)],
  },
  {
    name: 'uri, network, ssh',
    text: yaml(
      'box: tiny',
      'uri: qemu//system',
      'network: { mode: bridge, subnet: 10.0.0.1/24 }',
      'ssh: { port: 70000, username: 5 }',
      'machines:',
      '  a: { uri: "http://example.com/" }',
      '  b: { uri: "qemu+tls://host/system" }',
      '  c: { network: { subnet: 300.1.1.0/24 } }',
      '  d: { network: { subnet: 10.0.0.0/31 } }',
    ),
    problems: [
      p('uri', 'is not a libvirt URI: it has no scheme; write it like qemu:///system or qemu+ssh://user@host/system', 2),
      p('network.mode', "must be one of nat, user; got 'bridge'", 3),
      p('network.subnet', 'has host bits set: did you mean 10.0.0.0/24?', 3),
      p('ssh.port', 'must be a port number from 1 to 65535, got 70000', 4),
      p('ssh.username', 'must be a string, got 5', 4),
      p('machines.a.uri', "must be a URI of libvirt's QEMU driver (qemu:///session, qemu:///system, qemu+ssh://user@host/system), got 'http://example.com/'", 6),
      p('machines.b.uri', 'uses TLS, which vmenv does not speak: use qemu+ssh://user@host/system (or qemu+tcp:// on a trusted network)', 7),
      p('machines.c.network.subnet', "must be an IPv4 network in CIDR notation such as 192.168.121.0/24, got '300.1.1.0/24'", 8),
      p('machines.d.network.subnet', 'must have a prefix length from /8 to /30, got /31', 9),
    ],
  },
  {
    name: 'network: a name with mode user, found after merging the levels',
    text: yaml('box: tiny', 'network:', '  mode: user', 'machines:', '  a:', '    network:', '      name: mynet', '  b: {}'),
    problems: [p('machines.a.network.name', "applies only to mode nat, not 'user'", 7)],
  },
  {
    name: 'provisioners: kinds, keys of other kinds, required keys, shell inline xor path, unique names',
    text: yaml(
      'box: tiny', // 1
      'provision:', // 2
      '  - type: shel', // 3
      '  - inline: echo', // 4
      '  - type: file', // 5
      '    inline: echo', // 6
      '    destination: rel', // 7
      '  - type: shell', // 8
      '    inline: a', // 9
      '    path: b.sh', // 10
      '  - type: shell', // 11
      '    privileged: maybe', // 12
      '  - type: ansible', // 13
      '    playbok: site.yml', // 14
      '  - { name: y, type: shell, inline: a, env: { 1A: b }, run: twice }', // 15
      '  - { name: x, type: shell, inline: b }', // 16
      '  - { name: x, type: shell, inline: c }', // 17
      '  -', // 18
    ),
    problems: [
      p('provision[0].type', "must be one of shell, file, ansible; got 'shel' (did you mean 'shell'?)", 3),
      p('provision[1].type', 'is required (shell, file, ansible)', 4),
      p('provision[2].source', 'is required', 5),
      p('provision[2].inline', "applies only to shell provisioners, not 'file'", 6),
      p('provision[2].destination', "must be an absolute path in the guest (or start with ~/), got 'rel'", 7),
      p('provision[3].path', 'cannot be given with inline: a shell provisioner runs one script', 10),
      p('provision[4].privileged', "must be true or false, got 'maybe'", 12),
      p('provision[5].playbook', 'is required', 13),
      p('provision[5].playbok', "unknown key 'playbok'; did you mean 'playbook'?", 14),
      p('provision[6].env.1A', 'is not an environment variable name', 15),
      p('provision[6].run', "must be one of once, always, never; got 'twice'", 15),
      p('provision[8].name', "'x' is already the name of the provisioner provision[7]", 17),
      p('provision[9]', 'is empty', 18),
    ],
  },
  {
    name: 'a shell provisioner with neither inline nor path; an env variable with no value',
    text: yaml('box: tiny', 'provision:', '  - type: shell', '    args: [a]', '  - type: shell', '    inline: x', '    env:', '      EMPTY:'),
    problems: [p('provision[0]', 'a shell provisioner needs inline or path', 3), p('provision[1].env.EMPTY', 'is empty', 8)],
  },
  {
    name: 'provisioner names are unique across the levels of a machine',
    text: yaml('box: tiny', 'provision: [{ name: setup, type: shell, inline: a }]', 'machines:', '  web:', '    provision: [{ name: setup, type: shell, inline: b }]'),
    problems: [p('machines.web.provision[0].name', "'setup' is already the name of the provisioner provision[0]", 5)],
  },
  {
    name: 'synced folders: guest paths, 9p-only accessmode, the same guest path twice in a list',
    text: yaml(
      'box: tiny',
      'synced_folders:',
      '  - { guest: data }',
      '  - { guest: /x, type: rsync, accessmode: mapped }',
      '  - { guest: /y, type: nfs }',
      '  - { host: a, guest: /z }',
      '  - { host: b, guest: /z/ }',
      '  - { guest: /w, exclude: .git }',
    ),
    problems: [
      p('synced_folders[0].guest', "must be an absolute path in the guest, got 'data'", 3),
      p('synced_folders[1].accessmode', "applies only to type 9p, not 'rsync'", 4),
      p('synced_folders[2].type', "must be one of rsync, 9p, virtiofs; got 'nfs'", 5),
      p('synced_folders[4].guest', '/z is already the guest path of synced_folders[3]', 7),
      p('synced_folders[5].exclude', "must be a list, got '.git'", 8),
    ],
  },
  {
    name: 'disks and forwarded ports',
    text: yaml(
      'box: tiny', // 1
      'disks:', // 2
      '  - { format: vmdk }', // 3
      '  - { size: 1G, name: data }', // 4
      '  - { size: 2G, name: data }', // 5
      '  - { size: 2G, name: Data }', // 6
      'forwarded_ports:', // 7
      '  - { guest: 80 }', // 8
      '  - { guest: 80, host: 8080, host_ip: localhost, protocol: sctp }', // 9
      '  - { guest: 81, host: 8081 }', // 10
      '  - { guest: 82, host: 8081 }', // 11
      '  - { guest: 83, host: 8081, auto_correct: true }', // 12
      'machines:', // 13
      '  web:', // 14
      '    disks:', // 15
      '      - { size: 1G, name: data }', // 16
      `      - { size: 1G, name: ${'x'.repeat(64)} }`, // 17
      '      - { size: 1G, name: a/b }', // 18
    ),
    problems: [
      p('disks[0].format', "must be one of qcow2, raw; got 'vmdk'", 3),
      p('disks[0].size', 'is required', 3),
      p('disks[2].name', "'data' is already the name of the disk disks[1]", 5),
      p('disks[3].name', "must be lower-case letters, digits, '_' and '-', got 'Data'", 6),
      p('forwarded_ports[0].host', 'is required', 8),
      p('forwarded_ports[1].host_ip', "must be an IP address such as 127.0.0.1 or 0.0.0.0, got 'localhost'", 9),
      p('forwarded_ports[1].protocol', "must be one of tcp, udp; got 'sctp'", 9),
      p('forwarded_ports[3].host', 'host port 8081/tcp is already forwarded for this machine (set auto_correct: true to pick a free one)', 11),
      p('machines.web.disks[0].name', "'data' is already the name of the disk disks[1]", 16),
      p('machines.web.disks[1].name', 'must be at most 63 characters, got 64', 17),
      p('machines.web.disks[2].name', "must be lower-case letters, digits, '_' and '-', got 'a/b'", 18),
    ],
  },
  {
    name: 'forwarded ports: the same host port for two machines (a top-level forward that every machine gets)',
    text: yaml('box: tiny', 'forwarded_ports:', '  - { guest: 80, host: 8080 }', 'machines: { a: {}, b: {} }'),
    problems: [p('forwarded_ports[0].host', "host port 8080/tcp is already forwarded for machine 'a' (set auto_correct: true to pick a free one)", 3)],
  },
  {
    name: 'wrong shapes: the file, objects, lists',
    text: yaml('box: tiny', 'ssh: vagrant', 'boot: [pc]', 'provision: { type: shell }', 'cpus: 1.5', 'pool: ""'),
    problems: [
      p('ssh', "must be a map of settings, got 'vagrant'", 2),
      p('boot', 'must be a map of settings, got a list', 3),
      p('provision', 'must be a list, got a map', 4),
      p('cpus', 'must be a whole number from 1 to 512, got 1.5', 5),
      p('pool', 'must not be empty', 6),
    ],
  },
  {
    name: 'the whole file is a list',
    text: yaml('- box: tiny'),
    problems: [p('', 'must be a map of settings, got a list', 1)],
  },
  {
    name: 'an alias to an anchor that does not exist; a merge of a non-map',
    text: yaml('box: tiny', 'memory: *nope', 'ssh:', '  <<: 3'),
    problems: [p('memory', "refers to an unknown anchor '*nope'", 2), p('ssh', "'<<' merges maps only, got 3", 4)],
  },
];

describe('bad files: every problem, with its path and line', () => {
  it.each(bad)('$name', ({ text, problems }) => {
    const r = checkConfigText(text, FILE);
    expect(r.config).toBeUndefined();
    expect(r.problems).toEqual(problems);
  });
});

describe('YAML syntax errors: file:line:column', () => {
  const syntax: Array<{ name: string; text: string; problems: ConfigProblem[] }> = [
    {
      name: 'an unclosed flow sequence',
      text: yaml('box: tiny', 'disks: [1'),
      problems: [{ path: '', message: 'Flow sequence in block collection must be sufficiently indented and end with a ]', line: 3, column: 1 }],
    },
    {
      name: 'a key twice',
      text: yaml('box: tiny', 'memory: 1G', 'memory: 2G'),
      problems: [{ path: '', message: 'Map keys must be unique', line: 3, column: 1 }],
    },
    {
      name: 'two documents',
      text: yaml('box: tiny', '---', 'box: other'),
      problems: [{ path: '', message: 'vmenv.yaml holds one YAML document; a second one starts here', line: 2, column: 1 }],
    },
    {
      name: 'a tab for indentation',
      text: 'box: tiny\nssh:\n\tport: 22\n',
      problems: [{ path: '', message: 'Tabs are not allowed as indentation', line: 3, column: 1 }],
    },
  ];
  it.each(syntax)('$name', ({ text, problems }) => {
    const r = checkConfigText(text, FILE);
    expect(r.problems.map((q) => ({ ...q, message: q.message }))).toEqual(problems);
  });

  it('formats as vmenv.yaml:line:column', () => {
    expect(formatProblem({ path: '', message: 'Map keys must be unique', line: 3, column: 1 }, FILE)).toBe('vmenv.yaml:3:1: Map keys must be unique');
  });
});

describe('ConfigError', () => {
  it('lists every problem with path and file:line, exits 2', () => {
    let err: unknown;
    try {
      parseConfig(yaml('box: tiny', 'machines:', '  web:', '    memory: 2 gigs', '    cpuz: 2'), FILE);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.exitCode).toBe(ExitCode.usage);
    expect(e.file).toBe(FILE);
    expect(e.problems).toEqual([
      p('machines.web.memory', "must be a number of MiB or a size such as 512M or 2G, got '2 gigs'", 4),
      p('machines.web.cpuz', "unknown key 'cpuz'; did you mean 'cpus'?", 5),
    ]);
    expect(e.message).toBe(
      [
        '/p/vmenv.yaml has 2 problems:',
        "  machines.web.memory: must be a number of MiB or a size such as 512M or 2G, got '2 gigs' (vmenv.yaml:4)",
        "  machines.web.cpuz: unknown key 'cpuz'; did you mean 'cpus'? (vmenv.yaml:5)",
      ].join('\n'),
    );
    expect(e.hint).toContain('vmenv config schema');
  });

  it('a problem without a line names the file only', () => {
    expect(formatProblem(p('box', 'is required'), FILE)).toBe('box: is required (vmenv.yaml)');
  });
});
