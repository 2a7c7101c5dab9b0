/**
 * The SSH dialer against an in-process ssh2 server on 127.0.0.1: host key checks,
 * authentication, the exec channel as a stream, and failures of the far side.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { ParsedKey, ServerChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtConnectError } from '../../../src/libvirt/errors.js';
import { sshDialer, sshDialerForUri } from '../../../src/libvirt/transport/ssh.js';
import { knownHostsLine } from '../../../src/ssh/known-hosts.js';
import { parseLibvirtUri } from '../../../src/libvirt/uri.js';
import { generateMachineKey } from '../../../src/ssh/keys.js';

/** An ed25519 pair in ssh2's shape, from vmenv's generator (ssh2's drops a leading zero byte now and then). */
function ed25519Pair(): { public: string; private: string } {
  const k = generateMachineKey('test');
  return { public: k.publicKey, private: k.privateKey };
}


const { Server, utils } = ssh2;

function parsed(text: string): ParsedKey {
  const k = utils.parseKey(text);
  if (k instanceof Error) throw k;
  return Array.isArray(k) ? k[0]! : k;
}

const hostKey = ed25519Pair();
const hostPub = parsed(hostKey.public).getPublicSSH();
const userKey = ed25519Pair();
const userPub = parsed(userKey.public);
const otherKey = ed25519Pair();

type Behaviour = (ch: ServerChannel, command: string) => void;
const echo: Behaviour = (ch) => {
  ch.on('data', (d: Buffer) => ch.write(d));
  ch.on('end', () => {
    ch.exit(0);
    ch.end();
  });
};

let server: InstanceType<typeof Server>;
let port: number;
let behaviour: Behaviour = echo;
const commands: string[] = [];
const users: string[] = [];
let dir: string;
let keyFile: string;
let home: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-ssh-'));
  keyFile = join(dir, 'id_ed25519');
  writeFileSync(keyFile, userKey.private, { mode: 0o600 });
  home = join(dir, 'home');
  server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const data = userPub.getPublicSSH();
      const ok =
        ctx.key.algo === userPub.type &&
        ctx.key.data.length === data.length &&
        timingSafeEqual(ctx.key.data, data) &&
        (!ctx.signature || userPub.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true);
      if (ok) {
        users.push(ctx.username);
        ctx.accept();
      } else ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec, _reject, info) => {
          commands.push(info.command);
          behaviour(acceptExec(), info.command);
        });
      });
    });
    client.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

const base = () => ({ host: '127.0.0.1', port, user: 'tester', command: 'the-proxy', env: {}, home });

function knownHosts(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

async function roundTrip(s: Duplex, data: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  const got = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      parts.push(d);
      n += d.length;
      if (n >= data.length) resolve();
    });
    s.once('error', reject);
  });
  s.write(data);
  await got;
  return Buffer.concat(parts);
}

describe('sshDialer', () => {
  it('logs in with a key file, runs the command, and carries bytes both ways', async () => {
    behaviour = echo;
    const d = sshDialer({ ...base(), keyFile, verify: 'ignore' });
    expect(d.describe()).toBe(`ssh tester@127.0.0.1:${port}`);
    const s = await d.dial();
    expect(commands.at(-1)).toBe('the-proxy');
    expect(users.at(-1)).toBe('tester');
    const data = randomBytes(3 * 1024 * 1024); // beyond the SSH window: flow control works
    expect((await roundTrip(s, data)).equals(data)).toBe(true);
    const closed = once(s, 'close');
    s.end();
    await closed;
  });

  it('accepts a host key listed in known_hosts as [host]:port', async () => {
    const kh = knownHosts('kh-ok', `${knownHostsLine('127.0.0.1', port, hostPub)}\n`);
    const s = await sshDialer({ ...base(), keyFile, knownHostsFile: kh }).dial();
    s.destroy();
  });

  it('accepts a hashed known_hosts entry made by ssh-keygen -H', async () => {
    if (spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error) return;
    const kh = knownHosts('kh-hashed', `${knownHostsLine('127.0.0.1', port, hostPub)}\n`);
    spawnSync('ssh-keygen', ['-H', '-f', kh], { stdio: 'ignore' });
    expect(readFileSync(kh, 'utf8')).toMatch(/^\|1\|/);
    const s = await sshDialer({ ...base(), keyFile, knownHostsFile: kh }).dial();
    s.destroy();
  });

  it('refuses an unknown host key, showing its fingerprint and the ways forward', async () => {
    const kh = knownHosts('kh-empty', '');
    const err = await sshDialer({ ...base(), keyFile, knownHostsFile: kh }).dial().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toMatch(
      new RegExp(`host key of \\[127\\.0\\.0\\.1\\]:${port} is not known.*SHA256:.*known_hosts_verify=auto.*no_verify=1`),
    );
  });

  it('refuses a changed host key loudly', async () => {
    const kh = knownHosts('kh-changed', `${knownHostsLine('127.0.0.1', port, parsed(otherKey.public).getPublicSSH())}\n`);
    const err = await sshDialer({ ...base(), keyFile, knownHostsFile: kh }).dial().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toMatch(/has CHANGED.*line 1.*ssh-keygen -R/);
  });

  it('known_hosts_verify=auto adds an unknown key, which then verifies', async () => {
    const kh = join(dir, 'sub', 'kh-auto');
    const s = await sshDialer({ ...base(), keyFile, knownHostsFile: kh, verify: 'auto' }).dial();
    s.destroy();
    expect(readFileSync(kh, 'utf8')).toBe(`${knownHostsLine('127.0.0.1', port, hostPub)}\n`);
    const again = await sshDialer({ ...base(), keyFile, knownHostsFile: kh }).dial();
    again.destroy();
  });

  it('reports failed authentication with what was tried', async () => {
    const wrong = join(dir, 'wrong_key');
    writeFileSync(wrong, otherKey.private, { mode: 0o600 });
    const err = await sshDialer({ ...base(), keyFile: wrong, verify: 'ignore' }).dial().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect((err as Error).message).toMatch(new RegExp(`SSH authentication failed for tester@127.0.0.1:${port} \\(tried: key ${wrong}\\)`));
  });

  it('says when a key file needs a passphrase', async () => {
    const enc = utils.generateKeyPairSync('ed25519', { passphrase: 'secret', cipher: 'aes256-ctr', rounds: 16 });
    const f = join(dir, 'enc_key');
    writeFileSync(f, enc.private, { mode: 0o600 });
    const err = await sshDialer({ ...base(), keyFile: f, verify: 'ignore' }).dial().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/protected by a passphrase.*ssh-add/);
  });

  it('falls back to ~/.ssh/id_ed25519 when no key file is given', async () => {
    const { mkdirSync } = await import('node:fs');
    const h = join(dir, 'home-with-key');
    mkdirSync(join(h, '.ssh'), { recursive: true });
    writeFileSync(join(h, '.ssh', 'id_ed25519'), userKey.private, { mode: 0o600 });
    const s = await sshDialer({ ...base(), home: h, verify: 'ignore' }).dial();
    s.destroy();
  });

  it('says there is no way to log in', async () => {
    const err = await sshDialer({ ...base(), home: join(dir, 'empty-home'), verify: 'ignore' }).dial().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/no way to log in.*SSH_AUTH_SOCK/);
  });

  it('logs in through a real ssh-agent', async () => {
    if (spawnSync('ssh-agent', ['-h'], { stdio: 'ignore' }).error) return;
    const sock = join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50; i++) {
        if (spawnSync('test', ['-S', sock]).status === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const add = spawnSync('ssh-add', [keyFile], { env: { SSH_AUTH_SOCK: sock }, encoding: 'utf8' });
      expect(add.status, add.stderr).toBe(0);
      const s = await sshDialer({ ...base(), home: join(dir, 'empty-home'), env: { SSH_AUTH_SOCK: sock }, verify: 'ignore' }).dial();
      s.destroy();
    } finally {
      agent.kill();
    }
  });

  it('refuses a closed port', async () => {
    const net = await import('node:net');
    const tmp = net.createServer().listen(0, '127.0.0.1');
    await once(tmp, 'listening');
    const closedPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    const err = await sshDialer({ ...base(), port: closedPort, keyFile, verify: 'ignore' }).dial().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/nothing accepts SSH connections at 127\.0\.0\.1:\d+/);
  });

  it('honours an AbortSignal', async () => {
    const ac = new AbortController();
    const p = sshDialer({ ...base(), keyFile, verify: 'ignore' }).dial(ac.signal);
    ac.abort(new Error('cancelled'));
    await expect(p).rejects.toThrow('cancelled');
  });

  it('turns a missing helper on the far side into a clear error on the stream', async () => {
    behaviour = (ch) => {
      ch.stderr.write('sh: 1: exec: virt-ssh-helper: not found\n');
      ch.exit(127);
      ch.end();
    };
    const s = await sshDialer({ ...base(), keyFile, verify: 'ignore' }).dial();
    const [err] = (await once(s, 'error')) as [Error];
    expect(err).toBeInstanceOf(LibvirtConnectError);
    expect(err.message).toMatch(/virt-ssh-helper is not installed on tester@127\.0\.0\.1/);
    behaviour = echo;
  });

  it('ends the stream when the far side closes normally', async () => {
    behaviour = (ch) => {
      ch.on('data', () => {
        ch.exit(0);
        ch.end();
      });
    };
    const s = await sshDialer({ ...base(), keyFile, verify: 'ignore' }).dial();
    s.resume();
    s.write('bye');
    await once(s, 'end');
    behaviour = echo;
  });
});

describe('sshDialerForUri', () => {
  it('reads user, port, keyfile, no_verify and socket from the URI and runs netcat on that socket', async () => {
    behaviour = echo;
    const u = parseLibvirtUri(
      `qemu+ssh://root@127.0.0.1:${port}/system?keyfile=${keyFile}&no_verify=1&socket=/run/vmenv-test/libvirt/libvirt-sock`,
    );
    const s = await sshDialerForUri(u, { env: {}, home }).dial();
    expect(users.at(-1)).toBe('root');
    expect(commands.at(-1)).toMatch(/^sh -c 'if nc -q .* -U \/run\/vmenv-test\/libvirt\/libvirt-sock'$/);
    expect((await roundTrip(s, Buffer.from('x'))).toString()).toBe('x');
    s.destroy();
  });

  it('uses the helper-or-netcat command for a plain system URI', async () => {
    const u = parseLibvirtUri(`qemu+ssh://root@127.0.0.1:${port}/system?keyfile=${keyFile}&no_verify=1`);
    const s = await sshDialerForUri(u, { env: {}, home }).dial();
    expect(commands.at(-1)).toMatch(/command -v virt-ssh-helper.*exec virt-ssh-helper qemu:\/\/\/system;.*-U \/var\/run\/libvirt\/libvirt-sock/);
    s.destroy();
  });
});
