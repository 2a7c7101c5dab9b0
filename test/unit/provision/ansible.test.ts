/**
 * The ansible provisioner's pure parts: the inventory (read back by Ansible's own
 * parser, `ansible-inventory --list`, which runs no play and connects nowhere), the SSH
 * arguments (split as Ansible splits them, then resolved by `ssh -G`, which connects
 * nowhere either) and the command line; and how a batch groups `limit: all`
 * provisioners of several machines.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { AnsibleProvisioner, MachineConfig, ProjectConfig } from '../../../src/config/types.js';
import type { LibvirtClient } from '../../../src/libvirt/client.js';
import { AnsibleBatch, ansibleHostOf, withAnsibleBatch } from '../../../src/provision/ansible.js';
import {
  ansibleErrorLines,
  limitsToAll,
  playbookArgs,
  renderInventory,
  sshCommonArgs,
  yamlString,
  type AnsibleHost,
} from '../../../src/provision/ansible-inventory.js';
import type { MachineHandle } from '../../../src/hosts/handle.js';
import { LibvirtHost } from '../../../src/hosts/libvirt-host.js';
import { ProjectState } from '../../../src/project/state.js';
import { fileHostKeyStore, type PinnedKey } from '../../../src/ssh/index.js';

const hostKey: PinnedKey = {
  algorithm: 'ssh-ed25519',
  key: 'AAAAC3NzaC1lZDI1NTE5AAAAIICZVrHNxR6f57QfnCG7dgovke1WWxa9YTlUbK41ZGjk',
  fingerprint: 'SHA256:hM7M+LsYOx+UoesJwGxV34oHTGHOt98Z12PhgwP8Lag',
};

const web: AnsibleHost = {
  name: 'web',
  address: '192.168.121.10',
  port: 22,
  user: 'vagrant',
  privateKeyFile: '/p/.vmenv/machines/web/id_ed25519',
  hostKey,
};

const ansible = (over: Partial<AnsibleProvisioner> = {}): AnsibleProvisioner => ({
  type: 'ansible',
  name: undefined,
  run: 'once',
  playbook: '/p/site.yml',
  extra_vars: {},
  limit: undefined,
  tags: [],
  become: false,
  ...over,
});

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv ansible unit '));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The host variables Ansible itself reads from an inventory text. */
function ansibleReads(inventory: string): Record<string, Record<string, unknown>> {
  const file = join(dir, `inv-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(file, inventory);
  const r = spawnSync('ansible-inventory', ['-i', file, '--list'], { encoding: 'utf8', env: { ...process.env, ANSIBLE_INVENTORY_UNPARSED_FAILED: 'True' } });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { _meta: { hostvars: Record<string, Record<string, unknown>> } })._meta.hostvars;
}

/** A value Ansible marked as never to be templated (`!unsafe`), as `ansible-inventory` shows it. */
function unsafeValue(v: unknown): string {
  expect(v).toEqual({ __ansible_unsafe: expect.any(String) });
  return (v as { __ansible_unsafe: string }).__ansible_unsafe;
}

/** Words as Python's shlex.split makes them (what Ansible does to ansible_ssh_common_args). */
function shlexSplit(text: string): string[] {
  const r = spawnSync('python3', ['-c', 'import json,shlex,sys; print(json.dumps(shlex.split(sys.stdin.read())))'], { input: text, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[];
}

describe('yamlString', () => {
  it('is a double-quoted scalar that YAML reads back as the same string', () => {
    for (const s of ['plain', '', 'a b', "it's", 'say "hi"', 'back\\slash', '# not a comment', 'x: y', '- item', '{{ var }}', '50%', 'tab\there', 'line\nbreak', 'wörld', '日本', '😀 emoji', '\u2028sep', 'nul\0']) {
      const y = yamlString(s);
      expect(y).toMatch(/^"[\x20-\x7e]*"$/);
      expect(parse(y)).toBe(s);
    }
  });
});

describe('renderInventory', () => {
  it('lists each host with how to reach it', () => {
    const text = renderInventory([web, { ...web, name: 'db', address: '127.0.0.1', port: 2201 }], (h) => `/run/known_hosts-${h.name}`);
    expect(text).toContain(`    "web":
      ansible_connection: ssh
      ansible_host: !unsafe "192.168.121.10"
      ansible_port: 22
      ansible_user: !unsafe "vagrant"
      ansible_ssh_private_key_file: !unsafe "/p/.vmenv/machines/web/id_ed25519"
      ansible_ssh_common_args: !unsafe "-o UserKnownHostsFile=/run/known_hosts-web -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o IdentitiesOnly=yes"
`);
    const vars = ansibleReads(text);
    expect(Object.keys(vars).sort()).toEqual(['db', 'web']);
    expect(vars['db']).toMatchObject({ ansible_port: 2201, ansible_connection: 'ssh' });
    expect(unsafeValue(vars['db']!['ansible_host'])).toBe('127.0.0.1');
    expect(unsafeValue(vars['db']!['ansible_user'])).toBe('vagrant');
  });

  it('Ansible reads awkward paths and names back exactly, untemplated', () => {
    const odd: AnsibleHost = {
      ...web,
      user: 'o\'neil "x"',
      privateKeyFile: "/home/me/my project #1/{{ not_a_var }}/50% it's/.vmenv/machines/web/id_ed25519",
      proxyCommand: "ip netns exec 'vmenv-test' nc %h %p",
    };
    const knownHosts = '/home/me/my project #1/{{ not_a_var }}/known "hosts"';
    const vars = ansibleReads(renderInventory([odd], () => knownHosts))['web']!;
    expect(unsafeValue(vars['ansible_user'])).toBe(odd.user);
    expect(unsafeValue(vars['ansible_ssh_private_key_file'])).toBe(odd.privateKeyFile);
    expect(unsafeValue(vars['ansible_ssh_common_args'])).toBe(sshCommonArgs(odd, knownHosts));
  });
});

describe('sshCommonArgs', () => {
  it('splits, as Ansible splits it, into -o options that ssh reads back as given', () => {
    const knownHosts = join(dir, "known hosts 50% it's #1");
    const args = shlexSplit(sshCommonArgs({ ...web, proxyCommand: "ip netns exec 'vmenv-test' 'nc' %h %p" }, knownHosts));
    expect(args).toEqual([
      '-o',
      `UserKnownHostsFile="${knownHosts.replace('%', '%%')}"`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'UpdateHostKeys=no',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      "ProxyCommand=ip netns exec 'vmenv-test' 'nc' %h %p",
    ]);
    const r = spawnSync('ssh', ['-G', '-F', '/dev/null', ...args, '-p', '2201', '127.0.0.1'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContain(`userknownhostsfile ${knownHosts}`);
    expect(lines).toContain('stricthostkeychecking true');
    expect(lines).toContain('identitiesonly yes');
    expect(lines).toContain("proxycommand ip netns exec 'vmenv-test' 'nc' %h %p");
  });

  it('refuses a proxy command that would break the line', () => {
    expect(() => sshCommonArgs({ ...web, proxyCommand: 'nc %h %p\nLocalCommand x' }, '/k')).toThrow(/line break/);
  });
});

describe('playbookArgs', () => {
  it('passes the inventory and the playbook, nothing else by default', () => {
    expect(playbookArgs(ansible(), { inventory: '/t/inventory.yml' })).toEqual(['--inventory', '/t/inventory.yml', '--', '/p/site.yml']);
  });

  it('extra vars from a file, limit, tags and become', () => {
    expect(
      playbookArgs(ansible({ limit: 'web,db', tags: ['setup', 'web'], become: true, playbook: '/p/-odd.yml' }), { inventory: '/t/i.yml', extraVars: '/t/my vars.json' }),
    ).toEqual(['--inventory', '/t/i.yml', '--extra-vars', '@/t/my vars.json', '--limit', 'web,db', '--tags', 'setup,web', '--become', '--', '/p/-odd.yml']);
  });

  it('limit: all is the one-run-for-all-machines case', () => {
    expect(limitsToAll(ansible({ limit: 'all' }))).toBe(true);
    expect(limitsToAll(ansible({ limit: 'web' }))).toBe(false);
    expect(limitsToAll(ansible())).toBe(false);
  });
});

describe('ansibleErrorLines', () => {
  it("keeps ansible's ERROR! lines", () => {
    const stderr = [
      '[WARNING]: something',
      'ERROR! We were unable to read either as JSON nor YAML, these are the errors we got from each:',
      'JSON: Expecting value: line 1 column 1 (char 0)',
      '',
      "The error appears to be in '/p/my app/broken.yml': line 4, column 4, but may",
      'be elsewhere in the file depending on the exact syntax problem.',
    ].join('\n');
    expect(ansibleErrorLines(stderr)).toEqual([
      'ERROR! We were unable to read either as JSON nor YAML, these are the errors we got from each:',
      'at /p/my app/broken.yml line 4, column 4',
    ]);
    expect(ansibleErrorLines('fatal: [web]: FAILED!')).toEqual([]);
  });
});

describe('AnsibleBatch', () => {
  const project = (): ProjectConfig => ({ dir: join(dir, 'project') }) as unknown as ProjectConfig;

  async function handle(name: string, ip: string): Promise<MachineHandle> {
    const p = project();
    const state = new ProjectState(p.dir);
    await state.write({
      version: 1,
      machine: name,
      uri: 'qemu:///system',
      pool: 'default',
      domain: { name: `project_${name}`, uuid: '00000000-0000-0000-0000-000000000000' },
      volumes: [],
      networks: [],
      ssh: { username: 'vagrant', privateKeyPath: join(state.machineDir(name), 'id_ed25519') },
      ip,
      provisioned: false,
      createdAt: '',
      updatedAt: '',
    });
    await fileHostKeyStore(join(state.machineDir(name), 'host-key.json')).set(hostKey);
    const machine = { name, ssh: { port: 22 }, provision: [] } as unknown as MachineConfig;
    return { project: p, machine, state, client: {} as LibvirtClient, host: LibvirtHost.of('qemu:///system') };
  }

  it("a machine as Ansible reaches it: NAT on port 22, user mode on its forwarded port; the guests' netns through a proxy", async () => {
    const nat = await handle('web', '10.1.0.2');
    const before = process.env['VMENV_GUEST_NETNS'];
    delete process.env['VMENV_GUEST_NETNS'];
    try {
      expect(await ansibleHostOf(nat)).toEqual({
        name: 'web',
        address: '10.1.0.2',
        port: 22,
        user: 'vagrant',
        privateKeyFile: join(nat.state.machineDir('web'), 'id_ed25519'),
        hostKey,
      });
      const user = await handle('db', '127.0.0.1');
      await user.state.update('db', (r) => {
        r.nics = [{ mode: 'user', mac: '52:54:00:00:00:01', sshHostPort: 2201 }];
      });
      process.env['VMENV_GUEST_NETNS'] = 'vmenv-test';
      expect(await ansibleHostOf(user)).toMatchObject({ address: '127.0.0.1', port: 2201, proxyCommand: 'ip netns exec vmenv-test nc %h %p' });
    } finally {
      if (before === undefined) delete process.env['VMENV_GUEST_NETNS'];
      else process.env['VMENV_GUEST_NETNS'] = before;
    }
  });

  it('groups equal provisioners of several machines, whatever their keys order', async () => {
    const playbook = join(dir, 'site.yml');
    writeFileSync(playbook, '- hosts: all\n');
    const batch = new AnsibleBatch(project());
    const a = ansible({ playbook, limit: 'all', extra_vars: { a: 1, b: { c: 2, d: 3 } } });
    const b: AnsibleProvisioner = { ...ansible({ playbook, limit: 'all' }), extra_vars: { b: { d: 3, c: 2 }, a: 1 } };
    await batch.add(await handle('web', '10.1.0.2'), a, 'site');
    await batch.add(await handle('db', '10.1.0.3'), b, 'site');
    await batch.add(await handle('db', '10.1.0.3'), ansible({ playbook, limit: 'all', tags: ['x'] }), 'other');
    expect(batch.pending()).toEqual([
      { label: 'site', machines: ['web', 'db'] },
      { label: 'other', machines: ['db'] },
    ]);
  });

  it('refuses a playbook that does not exist when it is handed over', async () => {
    const batch = new AnsibleBatch(project());
    await expect(batch.add(await handle('web', '10.1.0.2'), ansible({ playbook: join(dir, 'nope.yml'), limit: 'all' }), 'site')).rejects.toThrow(
      /the playbook of provisioner 'site' does not exist: .*nope\.yml/,
    );
  });

  it('a machine that was never reached over SSH is named', async () => {
    const h = await handle('web', '10.1.0.2');
    await h.state.update('web', (r) => {
      delete r.ip;
    });
    const playbook = join(dir, 'site.yml');
    writeFileSync(playbook, '- hosts: all\n');
    await expect(new AnsibleBatch(project()).add(h, ansible({ playbook, limit: 'all' }), 'site')).rejects.toThrow(/machine 'web' has not been reached over SSH yet/);
  });

  it('when the per-machine work fails, the batch does not run and says what was left out', async () => {
    const playbook = join(dir, 'site.yml');
    writeFileSync(playbook, '- hosts: all\n');
    const written: string[] = [];
    const out = { write: (s: string) => written.push(s) } as unknown as NodeJS.WritableStream;
    const h = await handle('web', '10.1.0.2');
    await expect(
      withAnsibleBatch(project(), { out }, async (batch) => {
        await batch.add(h, ansible({ playbook, limit: 'all' }), 'site');
        throw new Error('machine db failed');
      }),
    ).rejects.toThrow('machine db failed');
    expect(written.join('')).toBe("web: provisioner 'site' (ansible, limit: all) was not run, as a machine failed first; run 'vmenv provision' once it is fixed\n");
  });
});
