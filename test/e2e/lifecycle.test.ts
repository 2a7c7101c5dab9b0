/**
 * The machine lifecycle as a user runs it, with the built CLI and the tiny box, on the
 * harness's libvirtd (guests inside its network namespace, reached through
 * VMENV_GUEST_NETNS): init, up, status, ssh, ssh-config with OpenSSH and rsync,
 * provisioning, halt, up again, destroy — which leaves no domain, volume or network.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLibvirt, type LibvirtClient } from '../../src/libvirt/index.js';
import { freeLoopbackPort, isPortFree } from '../../src/net/ports.js';
import { sharedSshSocket } from '../../src/access/shared-ssh.js';
import { machineResourceName } from '../../src/project/names.js';
import { builtBox } from '../support/boxes.js';
import { runVmenv, startVmenv, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';
import { fetchLoopback } from '../support/http.js';

const host = testHost();
const home = mkdtempSync(join(tmpdir(), 'vmenv-life-home-'));
const project = join(mkdtempSync(join(tmpdir(), 'vmenv-life-')), 'shop');
const env = { ...process.env, VMENV_HOME: home, VMENV_GUEST_NETNS: host.netns, VMENV_LIBVIRT_URI: host.uri };
let client: LibvirtClient;
let webPort = 0;
/** The control socket of the machine's shared OpenSSH connection. */
const sharedSocket = sharedSshSocket(join(project, '.vmenv', 'machines', 'default'));

function vmenv(args: string[]): Promise<Run> {
  return runVmenv([...args, '--cwd', project], { env, timeoutMs: 300_000 });
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

async function ours(): Promise<{ domains: string[]; volumes: string[]; networks: string[] }> {
  const stem = machineResourceName(project, 'default');
  const pool = await client.storagePoolLookupByName(host.pool);
  await client.storagePoolRefresh(pool);
  return {
    domains: (await client.connectListAllDomains()).map((d) => d.name).filter((n) => n.startsWith(stem)),
    volumes: (await client.storagePoolListAllVolumes(pool)).map((v) => v.name).filter((n) => n.startsWith(stem)),
    networks: (await client.connectListAllNetworks()).map((n) => n.name).filter((n) => n === `vmenv-e2e-${process.pid}`),
  };
}

function machineStatusOf(r: Run): string {
  return (JSON.parse(r.stdout) as { machines: { status: string }[] }).machines[0]!.status;
}

beforeAll(async () => {
  client = await openLibvirt(host.uri);
  webPort = await freeLoopbackPort();
  mkdirSync(join(project, 'src'), { recursive: true });
  writeFileSync(join(project, 'src', 'app.txt'), 'hello from the host\n');
  writeFileSync(join(project, 'skip.log'), 'not synced\n');
  mkdirSync(join(project, 'owned', 'a', 'b'), { recursive: true });
  writeFileSync(join(project, 'owned', 'a', 'b', 'deep.txt'), 'deep\n');
  writeFileSync(join(project, 'owned', 'top.txt'), 'top\n');
  const box = await builtBox('tiny');
  ok(await runVmenv(['box', 'add', box, '--name', 'tiny'], { env, timeoutMs: 300_000 }));
});

afterAll(async () => {
  await vmenv(['destroy', '-f']);
  await runVmenv(['box', 'remove', 'tiny', '--all'], { env });
  await client?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(dirname(project), { recursive: true, force: true });
});

describe('vmenv lifecycle with the tiny box', () => {
  it('init writes a vmenv.yaml that up brings to life', async () => {
    ok(await vmenv(['init', 'tiny', '--no-interactive']));
    writeFileSync(
      join(project, 'vmenv.yaml'),
      [
        'box: tiny',
        'memory: 256',
        `pool: ${host.pool}`,
        `network: { mode: nat, name: vmenv-e2e-${process.pid} }`,
        'boot: { timeout: 180 }',
        'shutdown: { timeout: 30 }',
        'forwarded_ports:',
        `  - { guest: 80, host: ${webPort} }`,
        'synced_folders:',
        '  - { host: ., guest: /vagrant, exclude: ["*.log", "/owned/"] }',
        '  - { host: owned, guest: /srv/owned, owner: nobody }',
        'disks:',
        '  - { size: 64M }',
        '  - { size: 32M, name: scratch }',
        'provision:',
        '  - { name: marker, type: shell, inline: "echo provisioned > /root/marker; echo ran-as-$(id -un)" }',
        '  - { type: file, source: src/app.txt, destination: /tmp/app.txt }',
        '  - { name: fails, type: shell, run: never, inline: "echo about to fail; exit 3" }',
        '  - { name: web, type: shell, run: always, inline: "mkdir -p /tmp/www && echo web-of-$(hostname) > /tmp/www/index.html && (busybox httpd -p 80 -h /tmp/www || busybox wget -q -O /dev/null http://127.0.0.1/)" }',
        '',
      ].join('\n'),
    );
    const up = ok(await vmenv(['up']));
    expect(up.stdout).toContain('default: ran-as-root');
    // The forwarded port: a forwarder of vmenv's own on the host's loopback, relaying into the guests' namespace.
    expect(await fetchLoopback(webPort)).toBe('web-of-default\n');
    const status = JSON.parse(ok(await vmenv(['status', '--json'])).stdout) as { machines: { status: string; ip?: string }[] };
    expect(status.machines[0]!.status).toBe('running');
    expect(status.machines[0]!.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it('makes the extra disks, a named one under its name, and attaches them', async () => {
    const stem = machineResourceName(project, 'default');
    expect((await ours()).volumes.sort()).toEqual([`${stem}-disk-scratch.qcow2`, `${stem}-disk0.qcow2`, `${stem}-seed.iso`, `${stem}.qcow2`].sort());
    const xml = await client.domainGetXmlDesc(await client.domainLookupByName(stem));
    expect(xml).toMatch(new RegExp(`<source pool=['"]${host.pool}['"] volume=['"]${stem}-disk-scratch\\.qcow2['"]`));
    // In the guest: vdb (64 MiB) and vdc (32 MiB), in 512-byte sectors.
    expect(ok(await vmenv(['ssh', '-c', 'cat /sys/block/vdb/size /sys/block/vdc/size'])).stdout).toBe(`${(64 * 2 ** 20) / 512}\n${(32 * 2 ** 20) / 512}\n`);
  });

  it("gives every file of a folder with an owner to that owner and the owner's login group", async () => {
    // nobody:nogroup is 65534:65534 in the tiny box.
    const owners = 'cd /srv/owned && ls -lnd . a a/b a/b/deep.txt top.txt | awk \'{ print $3 ":" $4 " " $9 }\'';
    expect(ok(await vmenv(['ssh', '-c', owners])).stdout).toBe(
      ['65534:65534 .', '65534:65534 a', '65534:65534 a/b', '65534:65534 a/b/deep.txt', '65534:65534 top.txt', ''].join('\n'),
    );
  });

  it('ssh -c runs a command with its exit code, stdout and stderr apart', async () => {
    const r = await vmenv(['ssh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(ok(await vmenv(['ssh', '-c', 'cat /vagrant/src/app.txt; ls /vagrant; sudo cat /root/marker; cat /tmp/app.txt'])).stdout).toBe(
      'hello from the host\nsrc\nvmenv.yaml\nprovisioned\nhello from the host\n',
    );
    // stdin reaches the guest's command, all of it.
    const piped = await runVmenv(['ssh', '-c', 'wc -c', '--cwd', project], { env, input: 'x'.repeat(100_000) });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout.trim()).toBe('100000');
    // Later runs share the first one's connection: its master listens on the machine's socket.
    expect(existsSync(sharedSocket)).toBe(true);
  });

  it("ssh falls back to vmenv's own client where OpenSSH is not installed", async () => {
    // A PATH with what the namespace proxy needs (sh, ip, nc) and no ssh.
    const bin = mkdtempSync(join(tmpdir(), 'vmenv-no-ssh-'));
    for (const tool of ['sh', 'ip', 'nc']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
    try {
      const r = await runVmenv(['ssh', '-c', 'echo out; echo err >&2; exit 7', '--cwd', project], { env: { ...env, PATH: bin } });
      expect(r.code, r.stderr).toBe(7);
      expect(r.stdout).toBe('out\n');
      expect(r.stderr).toBe('err\n');
      const extra = await runVmenv(['ssh', 'default', '--cwd', project, '--', '-v'], { env: { ...env, PATH: bin } });
      expect(extra.code).toBe(1);
      expect(extra.stderr).toMatch(/OpenSSH's ssh is not on PATH/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('ssh-config works with OpenSSH and rsync', async () => {
    const cfg = join(dirname(project), 'ssh_config');
    writeFileSync(cfg, ok(await vmenv(['ssh-config'])).stdout);
    const ssh = spawnSync('ssh', ['-F', cfg, 'default', 'hostname'], { encoding: 'utf8', timeout: 60_000 });
    expect(ssh.stderr).toBe('');
    expect(ssh.stdout.trim()).toBe('default');
    const rs = spawnSync('rsync', ['-a', '-e', `ssh -F ${cfg}`, join(project, 'src') + '/', 'default:/tmp/copied/'], { encoding: 'utf8', timeout: 60_000 });
    expect(rs.status, rs.stderr).toBe(0);
    expect(ok(await vmenv(['ssh', '-c', 'cat /tmp/copied/app.txt'])).stdout).toBe('hello from the host\n');
  });

  it('halt shuts it down, and up starts it again without provisioning twice', async () => {
    expect(ok(await vmenv(['halt'])).stdout).toMatch(/default: (shut down|powered off)/);
    // halt ended the shared connection; ssh to the halted machine says why it cannot connect.
    expect(existsSync(sharedSocket)).toBe(false);
    const refused = await vmenv(['ssh', '-c', 'true']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/machine 'default' is shutoff/);
    const status = JSON.parse(ok(await vmenv(['status', '--json'])).stdout) as { machines: { status: string }[] };
    expect(status.machines[0]!.status).toBe('shutoff');
    expect(await isPortFree('127.0.0.1', webPort, 'tcp')).toBe(true);
    const up = ok(await vmenv(['up']));
    expect(up.stdout).not.toContain('ran-as-root');
    expect(await fetchLoopback(webPort)).toBe('web-of-default\n');
    expect(ok(await vmenv(['ssh', '-c', 'sudo cat /root/marker'])).stdout).toBe('provisioned\n');
  });

  it('provision runs the provisioners again; --provision-with picks one; a failure names it and its exit code', async () => {
    ok(await vmenv(['ssh', '-c', 'sudo rm /root/marker /tmp/app.txt']));
    const all = ok(await vmenv(['provision']));
    expect(all.stdout).toContain('default: ran-as-root');
    expect(all.stdout).not.toContain('about to fail');
    expect(ok(await vmenv(['ssh', '-c', 'sudo cat /root/marker; cat /tmp/app.txt'])).stdout).toBe('provisioned\nhello from the host\n');

    const one = ok(await vmenv(['provision', '--provision-with', 'file']));
    expect(one.stdout).not.toContain('ran-as-root');
    expect(one.stdout).toContain("running provisioner 'file #2' (file)");

    const failed = await vmenv(['provision', '--provision-with', 'fails']);
    expect(failed.code).not.toBe(0);
    expect(failed.stdout).toContain('default: about to fail');
    expect(failed.stderr).toMatch(/provisioner 'fails' failed in machine 'default' with exit code 3/);
  });

  it('rsync copies host changes into the guest, deletions included', async () => {
    writeFileSync(join(project, 'src', 'new.txt'), 'new file\n');
    rmSync(join(project, 'src', 'app.txt'));
    mkdirSync(join(project, 'owned', 'a', 'c'), { recursive: true });
    writeFileSync(join(project, 'owned', 'a', 'c', 'later.txt'), 'later\n');
    try {
      expect(ok(await vmenv(['rsync'])).stdout).toContain('default: synced 2 folders');
      expect(ok(await vmenv(['ssh', '-c', 'ls /vagrant/src'])).stdout).toBe('new.txt\n');
      // What rsync copied now, and what it had copied before, belong to the folder's owner.
      const owners = 'cd /srv/owned && ls -lnd a/c a/c/later.txt top.txt | awk \'{ print $3 ":" $4 " " $9 }\'';
      expect(ok(await vmenv(['ssh', '-c', owners])).stdout).toBe(['65534:65534 a/c', '65534:65534 a/c/later.txt', '65534:65534 top.txt', ''].join('\n'));
    } finally {
      writeFileSync(join(project, 'src', 'app.txt'), 'hello from the host\n');
      rmSync(join(project, 'src', 'new.txt'));
    }
  });

  it('suspend pauses and resume continues; managedsave saves to disk and resume restores', async () => {
    ok(await vmenv(['ssh', '-c', 'echo still-here > /dev/shm/memory-kept']));
    expect(ok(await vmenv(['suspend'])).stdout).toContain('default: paused');
    expect(machineStatusOf(ok(await vmenv(['status', '--json'])))).toBe('paused');
    expect(ok(await vmenv(['resume'])).stdout).toContain('default: resumed');
    expect(ok(await vmenv(['ssh', '-c', 'cat /dev/shm/memory-kept'])).stdout).toBe('still-here\n');
    expect(await fetchLoopback(webPort)).toBe('web-of-default\n');

    expect(ok(await vmenv(['suspend', '--mode', 'managedsave'])).stdout).toContain('default: saved to disk');
    expect(machineStatusOf(ok(await vmenv(['status', '--json'])))).toBe('suspended');
    expect(ok(await vmenv(['resume'])).stdout).toContain('default: resumed');
    // /dev/shm is a tmpfs: the file survives only if memory was restored, not rebooted.
    expect(ok(await vmenv(['ssh', '-c', 'cat /dev/shm/memory-kept'])).stdout).toBe('still-here\n');
  });

  it('reload applies more memory, seen in the guest', async () => {
    const memTotalKiB = async (): Promise<number> => Number(/MemTotal:\s+(\d+)/.exec(ok(await vmenv(['ssh', '-c', 'cat /proc/meminfo'])).stdout)?.[1]);
    const before = await memTotalKiB();
    writeFileSync(join(project, 'vmenv.yaml'), readFileSync(join(project, 'vmenv.yaml'), 'utf8').replace('memory: 256', 'memory: 384'));
    const r = ok(await vmenv(['reload']));
    expect(r.stdout).toContain('default: memory 256 → 384 MiB');
    expect(r.stdout).not.toContain('ran-as-root');
    const after = await memTotalKiB();
    expect(after - before).toBeGreaterThan(100 * 1024);
    expect(await fetchLoopback(webPort)).toBe('web-of-default\n');
  });

  it('destroy -f leaves no domain, volume or network behind', async () => {
    expect((await ours()).domains).toHaveLength(1);
    ok(await vmenv(['destroy', '-f']));
    expect(await ours()).toEqual({ domains: [], volumes: [], networks: [] });
    const status = JSON.parse(ok(await vmenv(['status', '--json'])).stdout) as { machines: { status: string }[] };
    expect(status.machines[0]!.status).toBe('not created');
  });
});

describe('a first up that fails', () => {
  it('times out naming what it waited for, shows the console and the lease sources, and leaves nothing', async () => {
    const other = join(dirname(project), 'slow');
    mkdirSync(other, { recursive: true });
    writeFileSync(
      join(other, 'vmenv.yaml'),
      [
        'box: tiny',
        'memory: 256',
        `pool: ${host.pool}`,
        // The harness's libvirtd keeps its dnsmasq files here (its /var/lib/libvirt is a bind mount).
        `network: { mode: nat, name: vmenv-e2e-${process.pid}, lease_file: ${host.state}/lib/dnsmasq }`,
        'boot: { timeout: 2 }',
        '',
      ].join('\n'),
    );
    const r = await runVmenv(['up', '--cwd', other], { env, timeoutMs: 300_000 });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/Timed out after 2\.0 s waiting for an IP address/);
    expect(r.stderr).toContain('lease API:');
    expect(r.stderr).toMatch(/(status|lease) file \/var\/lib\/vmenv-test-host\/lib\/dnsmasq\/vmenv-[0-9a-f]{8}\.(status|leases): /);
    expect(r.stderr).toMatch(/serial console|console log/);
    const stem = machineResourceName(other, 'default');
    const pool = await client.storagePoolLookupByName(host.pool);
    await client.storagePoolRefresh(pool);
    expect((await client.connectListAllDomains()).map((d) => d.name).filter((n) => n.startsWith(stem))).toEqual([]);
    expect((await client.storagePoolListAllVolumes(pool)).map((v) => v.name).filter((n) => n.startsWith(stem))).toEqual([]);
    const status = JSON.parse((await runVmenv(['status', '--json', '--cwd', other], { env })).stdout) as { machines: { status: string }[] };
    expect(status.machines[0]!.status).toBe('not created');
  });

  it('Ctrl-C during up leaves nothing behind, and the next up succeeds', async () => {
    const other = join(dirname(project), 'interrupted');
    mkdirSync(other, { recursive: true });
    writeFileSync(
      join(other, 'vmenv.yaml'),
      ['box: tiny', 'memory: 256', `pool: ${host.pool}`, `network: { mode: nat, name: vmenv-e2e-${process.pid} }`, 'boot: { timeout: 180 }', ''].join('\n'),
    );
    const stem = machineResourceName(other, 'default');
    const pool = await client.storagePoolLookupByName(host.pool);
    const leftovers = async (): Promise<string[]> => {
      await client.storagePoolRefresh(pool);
      return [
        ...(await client.connectListAllDomains()).map((d) => d.name),
        ...(await client.storagePoolListAllVolumes(pool)).map((v) => v.name),
      ].filter((n) => n.startsWith(stem));
    };
    const run = startVmenv(['up', '--cwd', other], { env });
    // Interrupt once the domain is defined: every step before it has made something.
    const deadline = Date.now() + 120_000;
    while (!(await client.connectListAllDomains()).some((d) => d.name.startsWith(stem)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(Date.now()).toBeLessThan(deadline);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    expect(await leftovers()).toEqual([]);
    expect((await client.connectListAllNetworks()).map((n) => n.name)).not.toContain(`vmenv-e2e-${process.pid}`);
    expect(machineStatusOf(await runVmenv(['status', '--json', '--cwd', other], { env }))).toBe('not created');

    ok(await runVmenv(['up', '--cwd', other], { env, timeoutMs: 300_000 }));
    ok(await runVmenv(['destroy', '-f', '--cwd', other], { env }));
    expect(await leftovers()).toEqual([]);
  });
});
