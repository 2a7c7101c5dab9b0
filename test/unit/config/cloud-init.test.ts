/**
 * cloud_init in vmenv.yaml: its forms (file, mapping, #cloud-config text), merging over
 * machines, and every problem with its path and line; the pure readers of
 * config/cloud-init.ts (user-data kinds, YAML 1.1, network-config checks).
 */
import { describe, expect, it } from 'vitest';
import {
  managementNicHasDhcp,
  networkConfigProblems,
  otherUserDataKind,
  parseCloudYaml,
  parseUserData,
  userDataProblems,
} from '../../../src/config/cloud-init.js';
import { checkConfigText } from '../../../src/config/load.js';
import type { CloudInitConfig, ConfigProblem } from '../../../src/config/types.js';
import { FILE, yaml } from './helpers.js';

const p = (path: string, message: string, line?: number): ConfigProblem => (line === undefined ? { path, message } : { path, message, line });

function cloudInits(text: string): Record<string, CloudInitConfig> {
  const r = checkConfigText(text, FILE);
  expect(r.problems).toEqual([]);
  return Object.fromEntries(r.config!.machines.map((m) => [m.name, m.cloud_init]));
}

describe('cloud_init: the forms', () => {
  it('is unset by default', () => {
    expect(cloudInits(yaml('box: tiny'))).toEqual({ default: { user_data: undefined, network_config: undefined } });
  });

  it('a file name, a mapping, #cloud-config text', () => {
    const got = cloudInits(
      yaml(
        'box: tiny',
        'machines:',
        '  a: { cloud_init: { user_data: cloud/user-data.yaml, network_config: ~/net.yaml } }',
        '  b:',
        '    cloud_init:',
        '      user_data: { hostname: bee, packages: [nginx], write_files: [{ path: /etc/x, content: "y" }] }',
        '      network_config: { version: 2, ethernets: { eth0: { dhcp4: true } } }',
        '  c:',
        '    cloud_init:',
        '      user_data: |',
        '        #cloud-config',
        '        write_files:',
        '          - { path: /etc/x, permissions: 0644 }',
        '        package_upgrade: yes',
      ),
    );
    expect(got['a']).toEqual({ user_data: { file: 'cloud/user-data.yaml' }, network_config: { file: '~/net.yaml' } });
    expect(got['b']).toEqual({
      user_data: { inline: { hostname: 'bee', packages: ['nginx'], write_files: [{ path: '/etc/x', content: 'y' }] } },
      network_config: { inline: { version: 2, ethernets: { eth0: { dhcp4: true } } } },
    });
    // #cloud-config text is read as cloud-init reads it: YAML 1.1
    expect(got['c']).toEqual({ user_data: { inline: { write_files: [{ path: '/etc/x', permissions: 0o644 }], package_upgrade: true } }, network_config: undefined });
  });

  it("a machine's keys replace the top level's key by key", () => {
    const got = cloudInits(
      yaml(
        'box: tiny',
        'cloud_init: { user_data: top.yaml, network_config: net.yaml }',
        'machines:',
        '  a: {}',
        '  b: { cloud_init: { user_data: { hostname: b } } }',
      ),
    );
    expect(got['a']).toEqual({ user_data: { file: 'top.yaml' }, network_config: { file: 'net.yaml' } });
    expect(got['b']).toEqual({ user_data: { inline: { hostname: 'b' } }, network_config: { file: 'net.yaml' } });
  });
});

describe('cloud_init: problems, with path and line', () => {
  const bad: Array<{ name: string; text: string; problems: ConfigProblem[] }> = [
    {
      name: 'not a mapping, unknown keys, wrong kinds',
      text: yaml('box: tiny', 'cloud_init: [a]', 'machines:', '  a: { cloud_init: { userdata: x } }', '  b: { cloud_init: { user_data: [x], network_config: 3 } }'),
      problems: [
        p('cloud_init', 'must be a map of settings, got a list', 2),
        p('machines.a.cloud_init.userdata', "unknown key 'userdata'; did you mean 'user_data'?", 4),
        p('machines.b.cloud_init.user_data', 'must be a file name, a mapping or text starting with #cloud-config, got a list', 5),
        p('machines.b.cloud_init.network_config', 'must be a string, got 3', 5),
      ],
    },
    {
      name: 'scripts, MIME, templates and text that is not #cloud-config',
      text: yaml(
        'box: tiny',
        'machines:',
        '  a: { cloud_init: { user_data: "#!/bin/sh\\necho hi\\n" } }',
        '  b: { cloud_init: { user_data: "Content-Type: multipart/mixed; boundary=x\\n" } }',
        '  c: { cloud_init: { user_data: "## template: jinja\\n#cloud-config\\n" } }',
        '  d: { cloud_init: { user_data: "users:\\n  - default\\n" } }',
        '  e: { cloud_init: { network_config: "version: 2\\nethernets: {}\\n" } }',
      ),
      problems: [
        p('machines.a.cloud_init.user_data', expect.stringMatching(/^is a script \(#!\), not #cloud-config: vmenv merges its own user and key .* use a shell provisioner$/) as unknown as string, 3),
        p('machines.b.cloud_init.user_data', expect.stringMatching(/^is MIME multipart, not #cloud-config/) as unknown as string, 4),
        p('machines.c.cloud_init.user_data', expect.stringMatching(/^is a Jinja template \(## template:\), not #cloud-config/) as unknown as string, 5),
        p('machines.d.cloud_init.user_data', 'must be a file name, a mapping or text starting with #cloud-config, got text over several lines', 6),
        p('machines.e.cloud_init.network_config', 'must be a file name or a mapping, got text over several lines (write the mapping itself, without |)', 7),
      ],
    },
    {
      name: '#cloud-config text that is not YAML, or not a mapping',
      text: yaml(
        'box: tiny',
        'machines:',
        '  a:',
        '    cloud_init:',
        '      user_data: |',
        '        #cloud-config',
        '        users: [a',
        '  b: { cloud_init: { user_data: "#cloud-config\\n- a\\n" } }',
      ),
      problems: [
        p('machines.a.cloud_init.user_data', expect.stringMatching(/^the #cloud-config text is not YAML: .* \(its line \d\)$/) as unknown as string, 5),
        p('machines.b.cloud_init.user_data', 'the #cloud-config text must be a YAML mapping (keys such as users: and packages:), got a list', 8),
      ],
    },
    {
      name: 'the keys vmenv merges: users, ssh_authorized_keys, hostname',
      text: yaml(
        'box: tiny',
        'cloud_init:',
        '  user_data:',
        '    hostname: -bad',
        '    ssh_authorized_keys: { a: b }',
        '    users: [default, { groups: wheel }, 3, { name: x, ssh_authorized_keys: [1] }]',
        'machines:',
        '  a: {}',
        '  b: {}',
      ),
      problems: [
        p('cloud_init.user_data', 'ssh_authorized_keys must be a list of public keys (or one key), got a mapping', 4),
        p('cloud_init.user_data', "hostname must be a host name (RFC 1123 labels of letters, digits and '-', joined with dots), got '-bad'", 4),
        p('cloud_init.user_data', 'users[1].name is required (a user name)', 4),
        p('cloud_init.user_data', 'users[2] must be a user name or a mapping with name:, got 3', 4),
        p('cloud_init.user_data', 'users[3].ssh_authorized_keys must be a list of public keys (or one key), got a list', 4),
      ],
    },
    {
      name: 'network_config: version, entries',
      text: yaml(
        'box: tiny',
        'machines:',
        '  a: { cloud_init: { network_config: { ethernets: {} } } }',
        '  b: { cloud_init: { network_config: { version: 1, config: { eth0: x } } } }',
        '  c: { cloud_init: { network_config: { network: { version: 2, ethernets: [eth0] } } } }',
        '  d: { cloud_init: { network_config: { version: 1, config: [{ name: eth0 }] } } }',
      ),
      problems: [
        p('machines.a.cloud_init.network_config', 'needs version: 1 or version: 2 (or config: disabled), got no version', 3),
        p('machines.b.cloud_init.network_config', 'config must be a list of entries (version 1), got a mapping', 4),
        p('machines.c.cloud_init.network_config', 'ethernets must be a mapping of interface names, got a list', 5),
        p('machines.d.cloud_init.network_config', 'config[0] must be a mapping with type: (physical, nameserver, route, …), got a mapping', 6),
      ],
    },
  ];
  it.each(bad)('$name', ({ text, problems }) => {
    expect(checkConfigText(text, FILE).problems).toEqual(problems);
  });
});

describe('user-data text', () => {
  it.each([
    ['#cloud-config\nusers: [default]\n', undefined],
    ['\uFEFF#cloud-config\n', undefined],
    ['#!/bin/bash\necho', 'a script (#!)'],
    ['MIME-Version: 1.0\n', 'MIME multipart'],
    ['#include\nhttp://x\n', 'an include list (#include)'],
    ['#cloud-config-archive\n- a\n', 'a cloud-config archive'],
    ['#cloud-boothook\n', 'a boothook (#cloud-boothook)'],
    ['users: [default]\n', undefined],
  ])('%j is %s', (text, kind) => {
    expect(otherUserDataKind(text)).toBe(kind);
  });

  it('reads YAML 1.1 as cloud-init does, timestamps kept as text', () => {
    expect(parseUserData('#cloud-config\nmode: 0755\nupgrade: on\nwhen: 2024-01-02\n')).toEqual({ doc: { mode: 0o755, upgrade: true, when: '2024-01-02' } });
    expect(parseUserData('')).toEqual({ doc: {} });
    expect(parseUserData('#!/bin/sh\n')).toEqual({ problem: expect.stringMatching(/^is a script/) });
    expect(parseCloudYaml('a: [b\n')).toEqual({ problem: expect.stringMatching(/^is not YAML: /), line: expect.any(Number) });
    expect(parseCloudYaml('just text\n')).toEqual({ problem: 'must be a YAML mapping (keys such as users: and packages:), got a single value' });
  });

  it('refuses an explicit YAML tag, which the merged seed could not carry (write_files content: !!binary)', () => {
    expect(parseUserData('#cloud-config\nwrite_files:\n  - path: /x\n    content: !!binary |\n      aGVsbG8=\n')).toEqual({
      problem: expect.stringMatching(/^has an explicit YAML tag \(!!binary\), .*'encoding: b64'/),
      line: 4,
    });
    expect(parseCloudYaml('when: !!timestamp 2024-01-02\n')).toEqual({ problem: expect.stringMatching(/\(!!timestamp\)/), line: 1 });
  });

  it('lets every other key pass unchecked, and users as a comma-separated string', () => {
    expect(userDataProblems({ users: 'default, bob', runcmd: [['ls', '-l'], 'echo'], packages: 'x', fqdn: 'a.example.com' })).toEqual([]);
    expect(userDataProblems({ users: 3, fqdn: 'a..b' })).toEqual([
      "fqdn must be a host name (RFC 1123 labels of letters, digits and '-', joined with dots), got 'a..b'",
      'users must be a list (or a comma-separated string), got 3',
    ]);
  });
});

describe('network-config', () => {
  const mac = '52:54:00:aa:bb:cc';
  it.each([
    ['v2 dhcp4 by name', { version: 2, ethernets: { eth0: { dhcp4: true } } }, true],
    ['v2 dhcp4 by glob', { version: 2, ethernets: { all: { match: { name: 'e*' }, dhcp4: true } } }, true],
    ['v2 dhcp4 on another MAC', { version: 2, ethernets: { x: { match: { macaddress: '52:54:00:00:00:01' }, dhcp4: true } } }, false],
    ['v2 static only', { version: 2, ethernets: { eth0: { addresses: ['10.0.0.5/24'] } } }, false],
    ['v2 under network:', { network: { version: 2, ethernets: { eth0: { dhcp4: true } } } }, true],
    ['v1 dhcp on our MAC', { version: 1, config: [{ type: 'physical', name: 'eth0', mac_address: mac.toUpperCase(), subnets: [{ type: 'dhcp' }] }] }, true],
    ['v1 static', { version: 1, config: [{ type: 'physical', name: 'eth0', subnets: [{ type: 'static', address: '10.0.0.5/24' }] }] }, false],
    ['disabled', { config: 'disabled' }, true],
  ])('%s: the management NIC has DHCP: %s', (_name, doc, dhcp) => {
    expect(networkConfigProblems(doc)).toEqual([]);
    expect(managementNicHasDhcp(doc, mac)).toBe(dhcp);
  });
});
