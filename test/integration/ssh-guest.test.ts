/**
 * Guest access against a real OpenSSH server: a throwaway sshd started here on
 * 127.0.0.1 (its own host key, AuthorizedKeysFile in a temporary directory, UsePAM no),
 * standing in for a guest. The machine key is made by vmenv; the host key is pinned on
 * first contact; exec, streams, env, pty, shell and SFTP uploads are checked against
 * what arrives; a restarted sshd with another host key is refused; the rendered
 * ssh_config works with the real `ssh -F` and `rsync -e`. The jump host is the
 * harness's own sshd (127.0.0.1:22022).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh, type ConnectSshOptions, type SshSession } from '../../src/ssh/client.js';
import { netnsProxyCommand, renderSshConfig, rsyncRemoteShell, type SshConfigHost } from '../../src/ssh/config.js';
import { SshError } from '../../src/ssh/errors.js';
import { fileHostKeyStore, HostKeyMismatchError, writePinnedKnownHosts, type HostKeyStore } from '../../src/ssh/host-key.js';
import { ensureMachineKey } from '../../src/ssh/keys.js';
import { waitForSsh } from '../../src/ssh/wait.js';
import { testHost } from '../support/harness.js';

let dir: string;
/** Where vmenv keeps the machine's state: a path with a space and a % in it. */
let state: string;
let keyPath: string;
let privateKey: string;
let port: number;
let sshd: ChildProcess | undefined;
let store: HostKeyStore;
let session: SshSession;

function fingerprintOf(pubFile: string): string {
  return execFileSync('ssh-keygen', ['-l', '-f', pubFile], { encoding: 'utf8' }).split(' ')[1]!;
}

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** Resolves once something at 127.0.0.1:port sends an SSH banner (bounded). */
async function waitForBanner(p: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(p, '127.0.0.1');
      const t = setTimeout(() => done(false), 1_000);
      function done(v: boolean): void {
        clearTimeout(t);
        s.destroy();
        resolve(v);
      }
      s.once('data', (d: Buffer) => done(d.toString('latin1').startsWith('SSH-')));
      s.once('error', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not come up on 127.0.0.1:${p}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start sshd in the foreground with the given host key; stopped by pid in stopSshd. */
async function startSshd(hostKeyFile: string): Promise<void> {
  const conf = join(dir, 'sshd_config');
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKeyFile}`,
      'PidFile none',
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'AllowUsers root',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The temporary directory's parents (/tmp) are world-writable.
      'StrictModes no',
      'AcceptEnv LANG LC_* VMENV_*',
      'AllowTcpForwarding yes',
      'PrintMotd no',
      'PrintLastLog no',
      'MaxStartups 64:30:128',
      'MaxSessions 64',
      'Subsystem sftp /usr/lib/openssh/sftp-server',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = once(child, 'exit').then(() => {
    throw new Error(`sshd exited: ${err}`);
  });
  await Promise.race([waitForBanner(port), exited]);
  exited.catch(() => undefined);
  sshd = child;
}

async function stopSshd(): Promise<void> {
  const child = sshd;
  sshd = undefined;
  if (!child || child.exitCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGTERM');
  await gone;
}

const opts = (): ConnectSshOptions => ({
  host: '127.0.0.1',
  port,
  username: 'root',
  privateKey,
  hostKey: store,
  timeoutMs: 15_000,
  label: "machine 'it'",
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-ssh-guest-'));
  state = join(dir, 'project dir', '.vmenv 100%', 'it');
  for (const n of ['host1', 'host2']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', n, '-f', join(dir, n)]);
  }
  keyPath = join(state, 'id_ed25519');
  const key = await ensureMachineKey(keyPath, 'vmenv it');
  privateKey = key.privateKey;
  writeFileSync(join(dir, 'authorized_keys'), `${key.publicKey}\n`, { mode: 0o600 });
  store = fileHostKeyStore(join(state, 'host_key.json'));
  port = await freePort();
  await startSshd(join(dir, 'host1'));
  const r = await waitForSsh({ ...opts(), timeoutMs: 30_000 });
  session = r.session;
});

afterAll(async () => {
  await session?.close();
  await stopSshd();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('first contact', () => {
  it('pinned the host key sshd really has', async () => {
    expect(session.pinnedNow).toBe(true);
    const pin = await store.get();
    expect(pin?.algorithm).toBe('ssh-ed25519');
    expect(pin?.fingerprint).toBe(fingerprintOf(join(dir, 'host1.pub')));
    expect(pin?.key).toBe(readFileSync(join(dir, 'host1.pub'), 'utf8').split(' ')[1]);
    expect(session.serverSoftware).toMatch(/^OpenSSH_/);
    // The next connection verifies instead of pinning.
    const again = await connectSsh(opts());
    expect(again.pinnedNow).toBe(false);
    await again.close();
  });
});

describe('exec', () => {
  it('returns the exit status', async () => {
    expect((await session.exec('exit 7')).code).toBe(7);
    expect((await session.exec('true')).code).toBe(0);
    expect(await session.exec('kill -9 $$')).toMatchObject({ code: null, signal: 'SIGKILL' });
  });

  it('keeps stdout and stderr apart', async () => {
    expect(await session.exec('echo out; echo err >&2')).toEqual({ code: 0, stdout: 'out\n', stderr: 'err\n' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const r = await session.exec('for i in 1 2 3; do echo o$i; echo e$i >&2; done; exit 2', {
      onStdout: (d) => out.push(d),
      onStderr: (d) => err.push(d),
    });
    expect(r).toEqual({ code: 2 });
    expect(Buffer.concat(out).toString()).toBe('o1\no2\no3\n');
    expect(Buffer.concat(err).toString()).toBe('e1\ne2\ne3\n');
  });

  it('pipes stdin', async () => {
    expect((await session.exec('cat', { stdin: 'hello from stdin\n' })).stdout).toBe('hello from stdin\n');
    const data = randomBytes(8 * 1024 * 1024);
    const r = await session.exec('sha256sum', { stdin: data });
    expect(r.stdout!.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
    // Without stdin the command sees EOF at once.
    expect(await session.exec('wc -c')).toMatchObject({ code: 0, stdout: '0\n' });
  });

  it('passes env where AcceptEnv allows it', async () => {
    const r = await session.exec('printf "%s|%s" "$VMENV_FOO" "$NOT_ACCEPTED"', { env: { VMENV_FOO: 'bar baz', NOT_ACCEPTED: 'x' } });
    expect(r.stdout).toBe('bar baz|');
  });

  it('allocates a pty when asked', async () => {
    expect(await session.exec('tty')).toMatchObject({ code: 1, stdout: 'not a tty\n' });
    const r = await session.exec('tty; stty size', { pty: { cols: 123, rows: 45 } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\n45 123\r\n$/);
  });

  it('runs many commands at once on one connection', async () => {
    const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => session.exec(`echo ${i}; exit ${i}`)));
    expect(rs.map((r) => r.code)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rs.map((r) => r.stdout)).toEqual(rs.map((_, i) => `${i}\n`));
  });
});

describe('shell', () => {
  it('without a terminal: plain streams, exit status back', async () => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    const p = session.shell({ stdin, stdout, stderr });
    stdin.write('echo hello; echo oops >&2; exit 3\n');
    expect(await p).toEqual({ code: 3 });
    expect(out).toBe('hello\n');
    expect(err).toBe('oops\n');
  });

  it('on a terminal: raw mode set and restored, window size followed', async () => {
    const raw: boolean[] = [];
    const stdin = Object.assign(new PassThrough(), {
      isTTY: true,
      isRaw: false,
      setRawMode(v: boolean) {
        raw.push(v);
        stdin.isRaw = v;
        return stdin;
      },
    });
    const stdout = Object.assign(new PassThrough(), { isTTY: true, columns: 80, rows: 24 });
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    const until = async (re: RegExp): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!re.test(out)) {
        if (Date.now() > deadline) throw new Error(`no ${re} in ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const p = session.shell({ stdin, stdout, term: 'xterm' });
    stdin.write('stty size; echo "T=$TERM"\n');
    await until(/24 80\r\n/);
    await until(/T=xterm\r\n/);
    expect(raw).toEqual([true]);
    stdout.columns = 132;
    stdout.rows = 50;
    stdout.emit('resize');
    // The pty learns the new size (SIGWINCH in the guest).
    await new Promise((r) => setTimeout(r, 100));
    stdin.write('stty size; exit 4\n');
    expect(await p).toEqual({ code: 4 });
    expect(out).toMatch(/50 132\r\n/);
    expect(raw).toEqual([true, false]);
    expect(stdin.isRaw).toBe(false);
  });
});

describe('sftp upload', () => {
  function tree(root: string): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (p: string, rel: string): void => {
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[rel] = `link -> ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[rel] = `dir ${mode} ${Math.floor(st.mtimeMs / 1000)}`;
        for (const n of readdirSync(p).sort()) walk(join(p, n), `${rel}/${n}`);
      } else out[rel] = `file ${mode} ${Math.floor(st.mtimeMs / 1000)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    };
    walk(root, '.');
    return out;
  }

  it('a folder arrives intact: contents, modes, mtimes, symlinks, empty files', async () => {
    const src = join(dir, 'upload src');
    mkdirSync(join(src, 'bin'), { recursive: true });
    mkdirSync(join(src, 'deep', 'er', 'still'), { recursive: true });
    mkdirSync(join(src, 'empty dir'));
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    writeFileSync(join(src, 'bin', 'run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
    writeFileSync(join(src, 'secret'), 's3cret', { mode: 0o600 });
    writeFileSync(join(src, 'empty'), '');
    writeFileSync(join(src, 'big.bin'), randomBytes(5 * 1024 * 1024 + 17));
    writeFileSync(join(src, 'deep', 'er', 'still', 'x'), 'x');
    symlinkSync('a.txt', join(src, 'link'));
    symlinkSync('/nonexistent/target', join(src, 'dangling'));
    mkdirSync(join(src, 'ro'));
    writeFileSync(join(src, 'ro', 'inside'), 'in a read-only directory');
    chmodSync(join(src, 'ro'), 0o555);
    chmodSync(join(src, 'deep'), 0o750);
    utimesSync(join(src, 'a.txt'), 1_000_000_000, 1_000_000_000);
    const dest = join(dir, 'remote side', 'made', 'by upload');
    const progress: number[] = [];
    const r = await session.upload(src, dest, { onProgress: (done) => progress.push(done) });
    expect(r).toEqual({ files: 7, directories: 7, symlinks: 2, bytes: 6 + 19 + 6 + 0 + 5 * 1024 * 1024 + 17 + 1 + 24 });
    expect(progress.at(-1)).toBe(r.bytes);
    expect(tree(dest)).toEqual(tree(src));
    // Uploading again over the top works and changes nothing.
    await session.upload(src, dest);
    expect(tree(dest)).toEqual(tree(src));
    chmodSync(join(src, 'ro'), 0o755);
    chmodSync(join(dest, 'ro'), 0o755);
  });

  it('a single file, to a new path or over an old file', async () => {
    const f = join(dir, 'one file.conf');
    writeFileSync(f, 'key = value\n', { mode: 0o640 });
    const dest = join(dir, 'remote single', 'etc', 'app.conf');
    expect(await session.upload(f, dest)).toEqual({ files: 1, directories: 0, symlinks: 0, bytes: 12 });
    expect(readFileSync(dest, 'utf8')).toBe('key = value\n');
    expect(lstatSync(dest).mode & 0o777).toBe(0o640);
    writeFileSync(f, 'new\n');
    await session.upload(f, dest);
    expect(readFileSync(dest, 'utf8')).toBe('new\n');
  });

  it('names the path when the upload cannot happen', async () => {
    await expect(session.upload(join(dir, 'nope'), '/tmp/x')).rejects.toThrow(/no such file/);
    const f = join(dir, 'blocker');
    writeFileSync(f, 'x');
    await expect(session.upload(join(dir, 'one file.conf'), join(f, 'under', 'a', 'file'))).rejects.toBeInstanceOf(Error);
  });
});

describe('ssh_config with the real OpenSSH client', () => {
  /** The config in the machine's state directory: a path with a space and a % in it. */
  async function writeConfig(extra: Partial<SshConfigHost> = {}, alias?: string): Promise<string> {
    const pin = (await store.get())!;
    const known = join(state, alias ? 'known_hosts alias' : 'known_hosts');
    await writePinnedKnownHosts(known, pin, '127.0.0.1', port, alias);
    const file = join(state, `ssh config${alias ? ' alias' : ''}`);
    writeFileSync(
      file,
      renderSshConfig({
        name: 'it',
        hostName: '127.0.0.1',
        port,
        user: 'root',
        identityFile: keyPath,
        knownHostsFile: known,
        ...(alias ? { hostKeyAlias: alias } : {}),
        ...extra,
      }),
    );
    return file;
  }

  const ssh = (file: string, ...args: string[]) =>
    spawnSync('ssh', ['-F', file, ...args], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });

  it('ssh -F <file> <name> logs in with the machine key and the pinned host key', async () => {
    const file = await writeConfig();
    const r = ssh(file, 'it', 'echo $((6*7)); exit 3');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('42\n');
    expect(r.status).toBe(3);
    // With a HostKeyAlias the pin is filed under the alias.
    const aliased = await writeConfig({}, 'vmenv-it-0001');
    expect(ssh(aliased, 'it', 'true').status).toBe(0);
  });

  it('refuses when the pinned line holds another key (StrictHostKeyChecking yes)', async () => {
    const file = await writeConfig();
    const known = join(state, 'known_hosts');
    const other = readFileSync(join(dir, 'host2.pub'), 'utf8').split(' ');
    writeFileSync(known, `[127.0.0.1]:${port} ${other[0]} ${other[1]}\n`);
    const r = ssh(file, 'it', 'true');
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
  });

  it('rsync -e copies a folder', async () => {
    const file = await writeConfig();
    const src = join(dir, 'rsync src');
    mkdirSync(join(src, 'sub dir'), { recursive: true });
    writeFileSync(join(src, 'a'), 'A');
    writeFileSync(join(src, 'sub dir', 'b c'), randomBytes(100_000));
    const dest = join(dir, 'rsync dest');
    const r = spawnSync('rsync', ['-a', '-e', rsyncRemoteShell(file), `${src}/`, `it:${dest}/`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(join(dest, 'a'), 'utf8')).toBe('A');
    expect(readFileSync(join(dest, 'sub dir', 'b c')).equals(readFileSync(join(src, 'sub dir', 'b c')))).toBe(true);
  });

  it('ProxyCommand: the same string works for ssh -F and for connectSsh', async () => {
    const proxyCommand = 'nc %h %p';
    const file = await writeConfig({ proxyCommand });
    expect(ssh(file, 'it', 'echo via proxy').stdout).toBe('via proxy\n');
    const s = await connectSsh({ ...opts(), proxyCommand });
    expect((await s.exec('exit 6')).code).toBe(6);
    await s.close();
    // The namespace form is what vmenv writes for guests inside a network namespace.
    expect(netnsProxyCommand('vmenv-test')).toBe('ip netns exec vmenv-test nc %h %p');
  });

  it('a jump host (the harness sshd): ssh -F and connectSsh', async () => {
    const h = testHost();
    const jumpKnown = join(h.state, 'ssh', 'known_hosts');
    const file = await writeConfig({
      jump: { host: '127.0.0.1', port: h.ssh.port, user: h.ssh.user, identityFile: h.ssh.keyPath, knownHostsFile: jumpKnown },
    });
    const r = ssh(file, 'it', 'echo jumped');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('jumped\n');
    const s = await connectSsh({
      ...opts(),
      jump: { host: '127.0.0.1', port: h.ssh.port, username: h.ssh.user, privateKey: readFileSync(h.ssh.keyPath), hostKey: { knownHostsFile: jumpKnown } },
    });
    expect((await s.exec('echo through the jump host')).stdout).toBe('through the jump host\n');
    await s.close();
    // Nothing listening behind the jump host: 'refused', which waitForSsh retries.
    const closedPort = await freePort();
    const refused = await connectSsh({
      ...opts(),
      port: closedPort,
      jump: { host: '127.0.0.1', port: h.ssh.port, username: h.ssh.user, privateKey: readFileSync(h.ssh.keyPath), hostKey: { knownHostsFile: jumpKnown } },
    }).catch((e: unknown) => e);
    expect((refused as SshError).kind).toBe('refused');
    // A jump host whose key is not known is refused.
    const err = await connectSsh({
      ...opts(),
      jump: { host: '127.0.0.1', port: h.ssh.port, username: h.ssh.user, privateKey: readFileSync(h.ssh.keyPath), hostKey: { knownHostsFile: join(dir, 'empty known') } },
    }).catch((e: unknown) => e);
    expect((err as SshError).kind).toBe('host-key');
    expect((err as SshError).message).toMatch(/jump host .* not known/);
  });
});

describe('a changed host key', () => {
  it('is refused with both fingerprints, and waitForSsh does not retry it', async () => {
    await session.close();
    await stopSshd();
    await startSshd(join(dir, 'host2'));
    try {
      const err = await connectSsh(opts()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostKeyMismatchError);
      const e = err as HostKeyMismatchError;
      expect(e.message).toContain(fingerprintOf(join(dir, 'host1.pub')));
      expect(e.message).toContain(fingerprintOf(join(dir, 'host2.pub')));
      expect(e.message).toContain("machine 'it'");
      expect(e.hint).toContain('vmenv destroy');
      expect(e.hint).toContain(join(state, 'host_key.json'));
      expect(e.exitCode).toBe(1);
      const t0 = Date.now();
      await expect(waitForSsh({ ...opts(), timeoutMs: 20_000 })).rejects.toBeInstanceOf(HostKeyMismatchError);
      expect(Date.now() - t0).toBeLessThan(5_000);
      // The pin is untouched.
      expect((await store.get())?.fingerprint).toBe(fingerprintOf(join(dir, 'host1.pub')));
    } finally {
      await stopSshd();
      await startSshd(join(dir, 'host1'));
      session = (await waitForSsh({ ...opts(), timeoutMs: 30_000 })).session;
    }
  });

  it('a refused key fails fast against real sshd too', async () => {
    const stranger = await ensureMachineKey(join(dir, 'stranger', 'id_ed25519'));
    const t0 = Date.now();
    const err = await waitForSsh({ ...opts(), privateKey: stranger.privateKey, timeoutMs: 30_000, authGraceMs: 500 }).catch((e: unknown) => e);
    expect((err as SshError).kind).toBe('auth');
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
