/**
 * The keys `up` offers and the authorized_keys edits of Vagrant's key flow. The guest
 * commands run here in a real `sh` and in `busybox sh` (the tiny box's shell), with HOME
 * pointing at a scratch folder.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { authorizedKeysCommand, fallbackLoginKeys, keyFileFor, loginKeys } from '../../../src/access/login.js';
import { newMachineState } from '../../../src/project/state.js';
import { SshError } from '../../../src/ssh/errors.js';
import { generateMachineKey } from '../../../src/ssh/keys.js';
import { vagrantInsecureKeys } from '../../../src/ssh/vagrant-keys.js';
import { machine } from '../config/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'vmenv-login-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const own = generateMachineKey('vmenv default');
const other = generateMachineKey('someone else');

const shells: Array<[string, string[]]> = [['sh', ['sh']]];
if (spawnSync('busybox', ['true']).status === 0) shells.push(['busybox sh', ['busybox', 'sh']]);

function runIn(shell: string[], home: string, command: string): number {
  const r = spawnSync(shell[0]!, [...shell.slice(1), '-c', command], { env: { HOME: home, PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return r.status;
}

describe.each(shells)('authorizedKeysCommand in %s', (_name, shell) => {
  const home = (): string => {
    const h = join(root, `home-${++n}`);
    mkdirSync(h);
    return h;
  };
  const file = (h: string): string => join(h, '.ssh', 'authorized_keys');

  it('adds a key to a home without ~/.ssh, with OpenSSH modes, once', async () => {
    const h = home();
    runIn(shell, h, authorizedKeysCommand({ add: own.publicKey }));
    runIn(shell, h, authorizedKeysCommand({ add: own.publicKey }));
    expect(readFileSync(file(h), 'utf8')).toBe(`${own.publicKey}\n`);
    expect(statSync(file(h)).mode & 0o777).toBe(0o600);
    expect(statSync(join(h, '.ssh')).mode & 0o777).toBe(0o700);
  });

  it("removes Vagrant's insecure keys (also with options and comments) and keeps every other line", async () => {
    const h = home();
    const [ed, rsa] = await vagrantInsecureKeys();
    mkdirSync(join(h, '.ssh'), { mode: 0o700 });
    writeFileSync(file(h), ['# keys', ed!.publicKey, `no-pty,from="10.0.0.0/8" ${rsa!.publicKey.split(' ').slice(0, 2).join(' ')} other comment`, other.publicKey, own.publicKey, ''].join('\n'), { mode: 0o600 });
    runIn(shell, h, authorizedKeysCommand({ remove: [ed!.publicKey, rsa!.publicKey] }));
    expect(readFileSync(file(h), 'utf8')).toBe(['# keys', other.publicKey, own.publicKey, ''].join('\n'));
  });

  it('leaves an empty file when the insecure keys were all it held, and keeps a symbolic link a link', async () => {
    const h = home();
    const [ed] = await vagrantInsecureKeys();
    mkdirSync(join(h, '.ssh'), { mode: 0o700 });
    writeFileSync(join(h, 'real_keys'), `${ed!.publicKey}\n`, { mode: 0o600 });
    symlinkSync(join(h, 'real_keys'), file(h));
    runIn(shell, h, authorizedKeysCommand({ remove: [ed!.publicKey] }));
    expect(lstatSync(file(h)).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(h, 'real_keys'), 'utf8')).toBe('');
  });
});

describe('fallbackLoginKeys', () => {
  it("is Vagrant's insecure pair, ed25519 first, when ssh.private_key_path is not set", async () => {
    const keys = await fallbackLoginKeys(machine());
    expect(keys.map((k) => [k.insecure, k.label])).toEqual([
      ['ed25519', "Vagrant's insecure ed25519 key"],
      ['rsa', "Vagrant's insecure RSA key"],
    ]);
    // The shipped files are the pairs they claim to be.
    for (const k of keys) {
      const path = join(root, `insecure-${k.insecure}`);
      writeFileSync(path, k.privateKey, { mode: 0o600 });
      expect(execFileSync('ssh-keygen', ['-y', '-f', path], { encoding: 'utf8' }).trim().split(' ').slice(0, 2)).toEqual(k.publicKey.split(' ').slice(0, 2));
    }
  });

  it('is only the given key when ssh.private_key_path is set, marked insecure when it is one of Vagrant’s', async () => {
    const mine = join(root, 'mine');
    writeFileSync(mine, other.privateKey, { mode: 0o600 });
    const keys = await fallbackLoginKeys(machine({ ssh: { username: 'vagrant', port: 22, private_key_path: mine, insert_key: true } }));
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ path: mine, label: `ssh.private_key_path ${mine}`, fingerprint: other.fingerprint });
    expect(keys[0]!.insecure).toBeUndefined();
    const copy = join(root, 'vagrant-copy');
    writeFileSync(copy, (await vagrantInsecureKeys())[1]!.privateKey, { mode: 0o600 });
    const [k] = await fallbackLoginKeys(machine({ ssh: { username: 'vagrant', port: 22, private_key_path: copy, insert_key: true } }));
    expect(k!.insecure).toBe('rsa');
  });

  it('fails on a key file that does not exist, or is encrypted, naming the setting and what to do', async () => {
    const missing = join(root, 'nope');
    const err = await fallbackLoginKeys(machine({ ssh: { username: 'vagrant', port: 22, private_key_path: missing, insert_key: true } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).message).toBe(`ssh.private_key_path of machine 'default': cannot read the SSH key ${missing}: no such file`);
    expect((err as SshError).hint).toMatch(/Correct the path in vmenv.yaml/);
    const locked = join(root, 'locked');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', locked]);
    const err2 = await fallbackLoginKeys(machine({ ssh: { username: 'vagrant', port: 22, private_key_path: locked, insert_key: true } })).catch((e: unknown) => e);
    expect((err2 as SshError).message).toMatch(/^ssh.private_key_path of machine 'default': cannot use .* it is protected by a passphrase$/);
    expect((err2 as SshError).hint).toMatch(/never prompts for a passphrase/);
  });
});

describe('loginKeys', () => {
  const machineKeyPath = join(root, 'id_ed25519');
  const record = (privateKeyPath: string) => newMachineState({ machine: 'default', uri: 'qemu:///system', pool: 'default', ssh: { username: 'vagrant', privateKeyPath } });

  it("offers the machine's key, then the fallbacks", async () => {
    const fallbacks = await fallbackLoginKeys(machine());
    const keys = await loginKeys({ ...own, path: machineKeyPath }, record(machineKeyPath), fallbacks);
    expect(keys.map((k) => k.label)).toEqual(["the machine's key", "Vagrant's insecure ed25519 key", "Vagrant's insecure RSA key"]);
    expect(keys[0]!.machine).toBe(true);
  });

  it('offers the key the machine was last reached with first, once (insert_key: false)', async () => {
    const fallbacks = await fallbackLoginKeys(machine());
    const copy = await keyFileFor(fallbacks[1]!, root);
    expect(copy).toBe(join(root, 'vagrant-insecure-rsa'));
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    const keys = await loginKeys({ ...own, path: machineKeyPath }, record(copy), fallbacks);
    expect(keys.map((k) => k.label)).toEqual(["Vagrant's insecure RSA key", "the machine's key", "Vagrant's insecure ed25519 key"]);
    expect(keys[0]!.path).toBe(copy);
    // A recorded key that is gone is skipped.
    const gone = await loginKeys({ ...own, path: machineKeyPath }, record(join(root, 'gone')), fallbacks);
    expect(gone).toHaveLength(3);
  });
});
