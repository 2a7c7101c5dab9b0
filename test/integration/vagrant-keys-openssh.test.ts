/**
 * Vagrant's insecure keys against a real OpenSSH 9 server: an sshd of this test's own on
 * 127.0.0.1 that takes public keys with SHA-2 signatures only (what OpenSSH 8.8 and
 * later accept by default: `ssh-rsa` SHA-1 signatures are refused), with the insecure
 * keys authorized. vmenv's ssh2 client gets in with the RSA key as a fallback behind a
 * refused key, on one connection; OpenSSH's client with the same key file, as
 * `vmenv ssh` runs it, gets in too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../src/net/ports.js';
import { connectSsh } from '../../src/ssh/client.js';
import { memoryHostKeyStore } from '../../src/ssh/host-key.js';
import { generateMachineKey } from '../../src/ssh/keys.js';
import { vagrantInsecureKeys, vagrantKeysDir } from '../../src/ssh/vagrant-keys.js';
import { sleep } from '../../src/util/sleep.js';
import { testHost } from '../support/harness.js';

testHost(); // the integration tier runs with the harness's packages (openssh-server) installed
const dir = mkdtempSync(join(tmpdir(), 'vmenv-vagrant-sshd-'));
let port = 0;
let sshd: ChildProcess | undefined;
const rsaKeyFile = join(dir, 'vagrant-rsa');

beforeAll(async () => {
  port = await freeLoopbackPort();
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_ed25519')]);
  const keys = await vagrantInsecureKeys();
  writeFileSync(join(dir, 'authorized_keys'), keys.map((k) => k.publicKey).join('\n') + '\n', { mode: 0o600 });
  writeFileSync(rsaKeyFile, readFileSync(join(vagrantKeysDir(), 'vagrant.key.rsa')), { mode: 0o600 });
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, 'host_ed25519')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      // SHA-2 RSA signatures only, spelled out: the default of OpenSSH 8.8+, made explicit.
      'PubkeyAcceptedAlgorithms ssh-ed25519,rsa-sha2-512,rsa-sha2-256',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  spawnSync('install', ['-d', '-m', '0755', '/run/sshd']);
  sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  sshd.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  for (let i = 0; i < 100 && !/Server listening/.test(log); i++) await sleep(50);
  if (!/Server listening/.test(log)) throw new Error(`sshd did not start: ${log}`);
});

afterAll(() => {
  sshd?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe("Vagrant's insecure RSA key against OpenSSH 9 (rsa-sha2 only)", () => {
  it('gets vmenv in through ssh2, as the fallback after a refused key, on one connection', async () => {
    const [, rsa] = await vagrantInsecureKeys();
    const s = await connectSsh({
      host: '127.0.0.1',
      port,
      username: 'root',
      privateKey: generateMachineKey().privateKey,
      privateKeyLabel: "the machine's key",
      fallbackKeys: [{ privateKey: rsa!.privateKey, label: rsa!.label }],
      hostKey: memoryHostKeyStore(),
      timeoutMs: 15_000,
    });
    try {
      expect(s.serverSoftware).toMatch(/^OpenSSH_9/);
      expect(s.acceptedKey).toMatchObject({ index: 1, label: "Vagrant's insecure RSA key", fingerprint: rsa!.fingerprint });
      expect((await s.exec('echo in')).stdout).toBe('in\n');
    } finally {
      await s.close();
    }
  });

  it("gets OpenSSH's client in with the same key file", () => {
    const r = spawnSync(
      'ssh',
      ['-i', rsaKeyFile, '-p', String(port), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, 'root@127.0.0.1', 'echo in'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(r.stderr).not.toMatch(/denied/);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('in\n');
  });
});
