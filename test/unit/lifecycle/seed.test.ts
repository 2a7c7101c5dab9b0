import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseUserData } from '../../../src/config/cloud-init.js';
import { mergeUserData, renderSeed, type SeedSpec, writeSeedIso } from '../../../src/lifecycle/seed.js';
import { UserError } from '../../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vmenv-seed-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('NoCloud seed', () => {
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv3 vmenv@web';

  it('renders meta-data and #cloud-config user-data with the standard keys', () => {
    const files = renderSeed({
      instanceId: 'i-1234',
      hostname: 'web',
      sshAuthorizedKeys: [key],
      users: [{ name: 'deploy', sshAuthorizedKeys: [key], shell: '/bin/sh' }],
    });
    expect(parse(files['meta-data'])).toEqual({ 'instance-id': 'i-1234', 'local-hostname': 'web' });
    expect(files['user-data'].startsWith('#cloud-config\n')).toBe(true);
    expect(parse(files['user-data'])).toEqual({
      hostname: 'web',
      ssh_authorized_keys: [key],
      users: [
        'default',
        { name: 'deploy', ssh_authorized_keys: [key], sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/sh', lock_passwd: true },
      ],
    });
    expect(files['network-config']).toBeUndefined();
  });

  it('carries a network-config when given', () => {
    const net = { version: 2, ethernets: { eth0: { dhcp4: false, addresses: ['10.0.0.5/24'] } } };
    expect(parse(renderSeed({ instanceId: 'i', hostname: 'h', networkConfig: net })['network-config']!)).toEqual(net);
  });

  it('rejects a hostname that would break the guest', () => {
    expect(() => renderSeed({ instanceId: 'i', hostname: 'bad name\n' })).toThrow(UserError);
    expect(() => renderSeed({ instanceId: 'i', hostname: '-x' })).toThrow(/not a valid hostname/);
  });

  it('writes an ISO labelled cidata holding the documents', async () => {
    const out = join(dir, 'seed.iso');
    const files = renderSeed({ instanceId: 'i-42', hostname: 'db', sshAuthorizedKeys: [key] });
    await writeSeedIso(out, files);
    const info = execFileSync('isoinfo', ['-d', '-i', out], { encoding: 'utf8' });
    expect(info).toMatch(/Volume id: cidata/);
    const userData = execFileSync('isoinfo', ['-J', '-i', out, '-x', '/user-data'], { encoding: 'utf8' });
    expect(userData).toBe(files['user-data']);
    const metaData = execFileSync('isoinfo', ['-R', '-i', out, '-x', '/meta-data'], { encoding: 'utf8' });
    expect(parse(metaData)).toEqual({ 'instance-id': 'i-42', 'local-hostname': 'db' });
    expect(readdirSync(dir)).toEqual(['seed.iso']);
  });

  it('leaves nothing behind when the ISO cannot be written', async () => {
    await expect(writeSeedIso(join(dir, 'missing-dir', 'seed.iso'), renderSeed({ instanceId: 'i', hostname: 'h' }))).rejects.toThrow(
      UserError,
    );
    expect(readdirSync(dir)).toEqual(['seed.iso']);
  });
});

describe("the user's own #cloud-config merged with vmenv's", () => {
  const key = 'ssh-ed25519 AAAAvmenv vmenv@web';
  const mine = 'ssh-ed25519 AAAAmine me@laptop';
  const base: SeedSpec = { instanceId: 'i', hostname: 'web', sshAuthorizedKeys: [key], loginUser: 'vagrant' };
  const cases: Array<{ name: string; userData: Record<string, unknown>; spec?: Partial<SeedSpec>; want: Record<string, unknown> }> = [
    { name: 'nothing of the user: vmenv alone', userData: {}, want: { hostname: 'web', ssh_authorized_keys: [key] } },
    {
      name: 'other keys pass through as written, in their order',
      userData: { packages: ['nginx'], runcmd: [['echo', 'hi'], 'ls'], write_files: [{ path: '/etc/x', content: 'y', permissions: '0644' }] },
      want: { hostname: 'web', packages: ['nginx'], runcmd: [['echo', 'hi'], 'ls'], write_files: [{ path: '/etc/x', content: 'y', permissions: '0644' }], ssh_authorized_keys: [key] },
    },
    { name: "the user's hostname wins", userData: { hostname: 'shop' }, want: { hostname: 'shop', ssh_authorized_keys: [key] } },
    { name: 'so does an fqdn', userData: { fqdn: 'shop.example.com' }, want: { fqdn: 'shop.example.com', ssh_authorized_keys: [key] } },
    { name: 'preserve_hostname keeps the image\'s', userData: { preserve_hostname: true }, want: { preserve_hostname: true, ssh_authorized_keys: [key] } },
    {
      name: 'ssh_authorized_keys: appended to vmenv\'s, once each',
      userData: { ssh_authorized_keys: [mine, key] },
      want: { hostname: 'web', ssh_authorized_keys: [key, mine] },
    },
    { name: 'one key as a string', userData: { ssh_authorized_keys: mine }, want: { hostname: 'web', ssh_authorized_keys: [key, mine] } },
    {
      name: 'users without default or the login user: default first',
      userData: { users: [{ name: 'deploy', ssh_authorized_keys: [mine] }] },
      want: { hostname: 'web', users: ['default', { name: 'deploy', ssh_authorized_keys: [mine] }], ssh_authorized_keys: [key] },
    },
    {
      name: 'users with default: as written',
      userData: { users: [{ name: 'deploy' }, 'default'] },
      want: { hostname: 'web', users: [{ name: 'deploy' }, 'default'], ssh_authorized_keys: [key] },
    },
    {
      name: 'users as a comma-separated string',
      userData: { users: 'bob, default' },
      want: { hostname: 'web', users: ['bob', 'default'], ssh_authorized_keys: [key] },
    },
    {
      name: 'users naming the login user: the key goes to it too, default not added',
      userData: { users: [{ name: 'vagrant', groups: ['docker'], ssh_authorized_keys: [mine] }, 'bob'] },
      want: { hostname: 'web', users: [{ name: 'vagrant', groups: ['docker'], ssh_authorized_keys: [mine, key] }, 'bob'], ssh_authorized_keys: [key] },
    },
    {
      name: 'the login user by name only, ssh-authorized-keys spelling kept',
      userData: { users: ['vagrant', { name: 'ops', 'ssh-authorized-keys': mine }] },
      spec: { loginUser: 'vagrant' },
      want: { hostname: 'web', users: [{ name: 'vagrant', ssh_authorized_keys: [key] }, { name: 'ops', 'ssh-authorized-keys': mine }], ssh_authorized_keys: [key] },
    },
    {
      name: 'another login user (ssh.username: debian)',
      userData: { users: [{ name: 'debian', 'ssh-authorized-keys': [mine] }] },
      spec: { loginUser: 'debian' },
      want: { hostname: 'web', users: [{ name: 'debian', 'ssh-authorized-keys': [mine, key] }], ssh_authorized_keys: [key] },
    },
    {
      name: 'an empty users list still gets default',
      userData: { users: [] },
      want: { hostname: 'web', users: ['default'], ssh_authorized_keys: [key] },
    },
    {
      name: "vmenv's own extra users come after the user's",
      userData: { users: ['default', 'bob'] },
      spec: { users: [{ name: 'ci', sshAuthorizedKeys: [key], sudo: false }] },
      want: { hostname: 'web', users: ['default', 'bob', { name: 'ci', ssh_authorized_keys: [key], sudo: false, lock_passwd: true }], ssh_authorized_keys: [key] },
    },
  ];
  it.each(cases)('$name', ({ userData, spec, want }) => {
    const merged = mergeUserData({ ...base, ...spec, userData });
    expect(merged).toEqual(want);
    expect(Object.keys(merged)).toEqual(Object.keys(want));
    // and the rendered user-data reads back as the same document
    expect(parse(renderSeed({ ...base, ...spec, userData })['user-data'])).toEqual(want);
  });

  it('writes YAML 1.1, so cloud-init (PyYAML) reads strings back as strings', () => {
    const text = renderSeed({ ...base, userData: { a: 'yes', b: '0644', c: 'on', d: 420, e: '2024-01-02', f: true } })['user-data'];
    expect(text).toContain('a: "yes"\n');
    expect(text).toContain('b: "0644"\n');
    expect(text).toContain('c: "on"\n');
    expect(text).toContain('d: 420\n');
    expect(text).toContain('e: 2024-01-02\n');
    expect(text).toContain('f: true\n');
    expect(parse(text, { version: '1.1' })).toMatchObject({ a: 'yes', b: '0644', c: 'on', d: 420, f: true });
  });

  // JSON of what PyYAML reads; infinities and NaN as text (JSON has none, and NaN is not NaN).
  const PYYAML_TO_JSON = [
    'import sys, json, math, yaml',
    'def f(v):',
    '    if isinstance(v, dict): return {str(k): f(x) for k, x in v.items()}',
    '    if isinstance(v, list): return [f(x) for x in v]',
    "    if isinstance(v, float) and not math.isfinite(v): return 'float ' + repr(v)",
    '    return v',
    'print(json.dumps(f(yaml.safe_load(sys.stdin.read())), default=str))',
  ].join('\n');

  it("cloud-init's own YAML reader (PyYAML, as Ansible brings it) reads the merged user-data as the user's document", () => {
    const text = [
      '#cloud-config',
      'write_files:',
      '  - { path: /etc/x, permissions: 0644, content: "a: b" }',
      "upgrade: yes",
      'quoted: "yes"',
      "mode: '0644'",
      'when: 2024-01-02',
      'sexagesimal: 12:30',
      'runcmd:',
      '  - [sh, -c, "echo \\"hi\\" # not a comment"]',
      '  - echo on',
      `long: ${'word '.repeat(30).trim()}`,
      'short_bools: [y, n, Y, N]', // strings to PyYAML, booleans to the yaml package's 1.1
      'numbers: [1e5, 1.5e+3, 1.0e5, 09, 0:30, 1:30, 0x1F, 0o17, 010, .5, -.5, .inf, -.Inf, .nan, 1_000, 3.]',
      'nulls: [~, null, Null, ""]',
      '',
    ].join('\n');
    const parsed = parseUserData(text);
    if (!('doc' in parsed)) throw new Error(parsed.problem);
    const pyyaml = (t: string): Record<string, unknown> =>
      JSON.parse(
        execFileSync('python3', ['-c', PYYAML_TO_JSON], {
          input: t,
          encoding: 'utf8',
        }),
      ) as Record<string, unknown>;
    const { hostname, ssh_authorized_keys, ...rest } = pyyaml(renderSeed({ ...base, userData: parsed.doc })['user-data']);
    expect({ hostname, ssh_authorized_keys }).toEqual({ hostname: 'web', ssh_authorized_keys: [key] });
    expect(rest).toEqual(pyyaml(text));
  });

  it("the user's network-config replaces the default, without its network: wrapper", () => {
    const net = { version: 1, config: [{ type: 'physical', name: 'eth0', subnets: [{ type: 'dhcp' }] }] };
    expect(parse(renderSeed({ ...base, networkConfig: { network: net } })['network-config']!)).toEqual(net);
    expect(parse(renderSeed({ ...base, networkConfig: net })['network-config']!)).toEqual(net);
  });
});
