/**
 * The embedded default, as a new user without root meets it: qemu:///session (a
 * per-user libvirt daemon that vmenv starts) and QEMU user-mode networking, SSH and
 * forwarded_ports on 127.0.0.1 only. Runs vmenv as the harness's normal user (root's
 * qemu:///session would be the system daemon). The whole lifecycle, a forwarded port
 * served by the guest and reached from the host, auto_correct when that port is
 * taken, and the forward still working after suspend/resume and reload.
 */
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../src/net/ports.js';
import { builtBox } from '../support/boxes.js';
import { startCommand, vmenvBin, type Run } from '../support/cli.js';
import { testHost } from '../support/harness.js';
import { fetchLoopback } from '../support/http.js';

const host = testHost();
const user = host.sessionUser;
const userHome = `/home/${user}`;
const root = mkdtempSync(join(tmpdir(), 'vmenv-session-'));
const home = join(root, 'home');
const project = join(root, 'web');
let port = 0;

function uidOf(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no user ${name}: run test/host/setup.sh`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Runs the built CLI as the session user, with a new user's environment. */
function vmenv(args: string[], timeoutMs = 300_000): Promise<Run> {
  const env = ['env', '-i', 'PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', `HOME=${userHome}`, `VMENV_HOME=${home}`, 'NO_COLOR=1'];
  const cli = [process.execPath, vmenvBin, ...args, ...(args[0] === 'box' ? [] : ['--cwd', project])];
  return startCommand('runuser', ['-u', user, '--', ...env, ...cli], { cwd: project, timeoutMs }).done;
}

function ok(r: Run): Run {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

function statusOf(r: Run): { status: string; ip?: string } {
  return (JSON.parse(r.stdout) as { machines: { status: string; ip?: string }[] }).machines[0]!;
}

beforeAll(async () => {
  const { uid, gid } = uidOf(user);
  mkdirSync(project, { recursive: true });
  port = await freeLoopbackPort();
  writeFileSync(
    join(project, 'vmenv.yaml'),
    [
      'box: tiny',
      'memory: 256',
      'uri: qemu:///session',
      'forwarded_ports:',
      `  - { guest: 80, host: ${port}, auto_correct: true }`,
      'provision:',
      '  - name: web',
      '    type: shell',
      '    run: always',
      '    inline: "mkdir -p /tmp/www && echo served-by-$(hostname) > /tmp/www/index.html && (busybox httpd -p 80 -h /tmp/www || busybox wget -q -O /dev/null http://127.0.0.1/)"',
      '',
    ].join('\n'),
  );
  for (const p of [root, project, join(project, 'vmenv.yaml')]) chownSync(p, uid, gid);
  ok(await vmenv(['box', 'add', await builtBox('tiny'), '--name', 'tiny']));
});

afterAll(async () => {
  await vmenv(['destroy', '-f']);
  // The pool vmenv made in this run's VMENV_HOME goes with it.
  await new Promise((resolve) => {
    const sh = "virsh -q -c qemu:///session pool-destroy default; virsh -q -c qemu:///session pool-undefine default";
    spawn('runuser', ['-u', user, '--', 'env', '-i', 'PATH=/usr/bin:/bin:/usr/sbin', `HOME=${userHome}`, 'sh', '-c', sh], { stdio: 'ignore' }).on('close', resolve);
  });
  // The session daemon vmenv started for this user, and the log daemon it started: end them by pid.
  for (const daemon of ['libvirtd', 'virtlogd']) {
    const pidFile = join(userHome, '.cache', 'libvirt', `${daemon}.pid`);
    if (!existsSync(pidFile)) continue;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    try {
      if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(daemon)) process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  rmSync(root, { recursive: true, force: true });
});

describe('session mode with user networking', () => {
  it('up brings the machine up on the per-user daemon; SSH and the forwarded port are on 127.0.0.1', async () => {
    ok(await vmenv(['up']));
    expect(statusOf(ok(await vmenv(['status', '--json'])))).toMatchObject({ status: 'running', ip: '127.0.0.1' });
    expect(await fetchLoopback(port)).toBe('served-by-default\n');
    const ports = JSON.parse(ok(await vmenv(['port', '--json'])).stdout) as { machines: { ports: { guest: number; host: number; source: string }[] }[] };
    expect(ports.machines[0]!.ports.map((p) => [p.guest, p.source])).toEqual([
      [22, 'ssh'],
      [80, 'forwarded_ports'],
    ]);
    expect(ports.machines[0]!.ports[1]!.host).toBe(port);
  });

  it('ssh -c keeps the exit code; provision runs again', async () => {
    expect((await vmenv(['ssh', '-c', 'exit 7'])).code).toBe(7);
    expect(ok(await vmenv(['provision'])).stdout).toContain("default: running provisioner 'web' (shell)");
  });

  it('after halt, a taken forwarded port is moved by auto_correct at the next up', async () => {
    expect(ok(await vmenv(['halt'])).stdout).toMatch(/default: (shut down|powered off)/);
    expect(statusOf(ok(await vmenv(['status', '--json']))).status).toBe('shutoff');
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    try {
      const up = ok(await vmenv(['up']));
      expect(up.stderr).toMatch(new RegExp(`default: host port ${port}/tcp is in use: forwarding 127\\.0\\.0\\.1:(\\d+) → guest 80 instead`));
      const moved = Number(new RegExp(`127\\.0\\.0\\.1:(\\d+) → guest 80`).exec(up.stderr)![1]);
      expect(moved).not.toBe(port);
      expect(await fetchLoopback(moved)).toBe('served-by-default\n');
      port = moved;
    } finally {
      await new Promise<void>((r) => squatter.close(() => r()));
    }
  });

  it('the forward still answers after suspend/resume and after reload', async () => {
    expect(ok(await vmenv(['suspend'])).stdout).toContain('default: paused');
    expect(statusOf(ok(await vmenv(['status', '--json']))).status).toBe('paused');
    ok(await vmenv(['resume']));
    expect(await fetchLoopback(port)).toBe('served-by-default\n');
    ok(await vmenv(['reload']));
    expect(await fetchLoopback(port)).toBe('served-by-default\n');
  });

  it('destroy leaves nothing', async () => {
    ok(await vmenv(['destroy', '-f']));
    expect(statusOf(ok(await vmenv(['status', '--json']))).status).toBe('not created');
    expect(existsSync(join(project, '.vmenv', 'machines', 'default'))).toBe(false);
  });
});
