/**
 * The ansible provisioner end to end: Debian's ansible-playbook against two tiny
 * machines on the harness libvirtd, reached through the guests' network namespace
 * (VMENV_GUEST_NETNS), with their pinned host keys.
 *
 * The tiny box has no Python, so the playbook sticks to what needs none: `raw` (a
 * command over SSH) and `set_fact` (which runs on the controller), with
 * `gather_facts: false`. Boxes with Python (debian-12) take any module.
 */
import { mkdtempSync, rmSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtBox } from '../support/boxes.js';
import { runVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';

const host = testHost();
const home = mkdtempSync(join(tmpdir(), 'vmenv-ansible-home-'));
const project = join(mkdtempSync(join(tmpdir(), 'vmenv-ansible-')), 'farm');
const env = { ...process.env, VMENV_HOME: home, VMENV_GUEST_NETNS: host.netns, VMENV_LIBVIRT_URI: host.uri };

function vmenv(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
  return runVmenv([...args, '--cwd', project], { env: { ...env, ...extraEnv }, timeoutMs: 400_000 });
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

function count(text: string, what: RegExp): number {
  return text.match(new RegExp(what.source, 'gm'))?.length ?? 0;
}

const PLAYBOOK = `# The tiny box has no Python: raw and set_fact only, and no fact gathering.
- hosts: all
  gather_facts: false
  tasks:
    - name: a fact
      set_fact:
        motd: "{{ greeting }} to {{ inventory_hostname }} with {{ groups['all'] | length }} hosts, n={{ n }}"
    - name: install a file
      raw: "mkdir -p /etc/vmenv && printf '%s\\\\n' {{ motd | quote }} > /etc/vmenv/motd && chmod 0644 /etc/vmenv/motd"
    - name: as whom
      raw: "id -u > /tmp/ansible-uid"
`;

beforeAll(async () => {
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'site.yml'), PLAYBOOK);
  // A syntax error: a mapping where a list of plays belongs, broken indentation.
  writeFileSync(join(project, 'broken.yml'), '- hosts: all\n  tasks:\n    - raw: true\n   bad: [\n');
  writeFileSync(
    join(project, 'vmenv.yaml'),
    [
      'box: tiny',
      'memory: 256',
      `pool: ${host.pool}`,
      `network: { mode: nat, name: vmenv-e2e-a${process.pid} }`,
      'boot: { timeout: 240 }',
      'synced_folders:',
      '  - { host: ., guest: /vagrant, disabled: true }',
      'provision:',
      '  - name: site',
      '    type: ansible',
      '    playbook: site.yml',
      '    limit: all',
      '    become: true',
      '    extra_vars: { greeting: "hello from vmenv", n: 2 }',
      '  - { name: broken, type: ansible, run: never, playbook: broken.yml }',
      '  - { name: gone, type: ansible, run: never, playbook: missing/play.yml }',
      'machines:',
      '  web:',
      '  db:',
      '',
    ].join('\n'),
  );
  ok(await runVmenv(['box', 'add', await builtBox('tiny'), '--name', 'tiny'], { env, timeoutMs: 300_000 }));
});

afterAll(async () => {
  await vmenv(['destroy', '-f']);
  await runVmenv(['box', 'remove', 'tiny', '--all'], { env });
  rmSync(home, { recursive: true, force: true });
  rmSync(dirname(project), { recursive: true, force: true });
});

describe('the ansible provisioner with two tiny machines', () => {
  it('up runs a limit: all playbook once, with both machines in its inventory', async () => {
    const up = ok(await vmenv(['up']));
    expect(up.stdout).toContain("web: provisioner 'site' (ansible, limit: all) runs once for all machines");
    expect(up.stdout).toContain("db: provisioner 'site' (ansible, limit: all) runs once for all machines");
    expect(up.stdout).toContain("web,db: running provisioner 'site' (ansible, limit: all) once for machines 'web', 'db'");
    expect(count(up.stdout, /^web,db: PLAY \[all\]/)).toBe(1);
    expect(count(up.stdout, /^web,db: PLAY RECAP/)).toBe(1);
    expect(up.stdout).toMatch(/^web,db: web +: ok=3 +changed=2 .*failed=0/m);
    expect(up.stdout).toMatch(/^web,db: db +: ok=3 +changed=2 .*failed=0/m);
    for (const m of ['web', 'db']) {
      // The file the playbook installed, from the fact it set and the extra vars; as root (become).
      expect(ok(await vmenv(['ssh', m, '-c', 'cat /etc/vmenv/motd; ls -l /etc/vmenv/motd | cut -c1-10; cat /tmp/ansible-uid'])).stdout).toBe(
        `hello from vmenv to ${m} with 2 hosts, n=2\n-rw-r--r--\n0\n`,
      );
    }
  });

  it('provision runs it once again for both; up of running machines does not (run: once)', async () => {
    ok(await vmenv(['ssh', 'web', '-c', 'sudo rm /etc/vmenv/motd']));
    const again = ok(await vmenv(['provision']));
    expect(count(again.stdout, /^web,db: PLAY \[all\]/)).toBe(1);
    expect(ok(await vmenv(['ssh', 'web', '-c', 'cat /etc/vmenv/motd'])).stdout).toBe('hello from vmenv to web with 2 hosts, n=2\n');
    const up = ok(await vmenv(['up']));
    expect(up.stdout).not.toContain('PLAY');
  });

  it("a playbook with a syntax error: ansible's message is shown and its exit code named", async () => {
    const r = await vmenv(['provision', 'web', '--provision-with', 'broken']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("web: running provisioner 'broken' (ansible)");
    expect(r.stdout).toMatch(/^web: ERROR! /m);
    expect(r.stderr).toContain("provisioner 'broken' (ansible) failed on machine 'web': ansible-playbook exited with code 4");
    expect(r.stderr).toMatch(/ERROR! .*(YAML|syntax)/);
    expect(r.stderr).toContain(`at ${join(project, 'broken.yml')} line 4, column 4`);
    expect(r.stderr).toContain('Fix the playbook');
  });

  it('a playbook that does not exist is named before anything runs', async () => {
    const r = await vmenv(['provision', 'db', '--provision-with', 'gone']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the playbook of provisioner 'gone' does not exist: ${join(project, 'missing', 'play.yml')}`);
    expect(r.stdout).not.toContain('PLAY');
  });

  it('without ansible-playbook on the host, the error says so and how to install it', async () => {
    // Everything provision needs but ansible: sh, ssh and nc, and ip from /usr/sbin.
    const bin = mkdtempSync(join(tmpdir(), 'vmenv-no-ansible-'));
    try {
      for (const tool of ['sh', 'ssh', 'nc', 'rsync']) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
      const r = await vmenv(['provision', '--provision-with', 'site'], { PATH: `${bin}:/usr/sbin` });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('ansible-playbook is not installed on this host');
      expect(r.stderr).toContain('sudo apt-get install ansible');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
