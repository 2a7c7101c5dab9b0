import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLibvirtUri, sshHelperUri } from '../../../src/libvirt/uri.js';
import { explainHelperFailure, proxyForUri, remoteHelperCommand } from '../../../src/libvirt/transport/ssh.js';
import { preferredHostKeyAlgorithms } from '../../../src/ssh/host-key-algorithms.js';
import {
  checkHostKey,
  entryMatchesHost,
  keyFingerprint,
  keyTypeOfBlob,
  knownHostName,
  knownHostsLine,
  parseKnownHosts,
  shQuote,
} from '../../../src/ssh/known-hosts.js';
import { generateMachineKey } from '../../../src/ssh/keys.js';

/** An ed25519 pair in ssh2's shape, from vmenv's generator (ssh2's drops a leading zero byte now and then). */
function ed25519Pair(): { public: string; private: string } {
  const k = generateMachineKey('test');
  return { public: k.publicKey, private: k.privateKey };
}


const { utils } = ssh2;

function pubBlob(publicKeyText: string): Buffer {
  const k = utils.parseKey(publicKeyText);
  if (k instanceof Error) throw k;
  return (Array.isArray(k) ? k[0]! : k).getPublicSSH();
}

const ed1 = pubBlob(ed25519Pair().public);
const ed2 = pubBlob(ed25519Pair().public);
const ec1 = pubBlob(utils.generateKeyPairSync('ecdsa', { bits: 256 }).public);
const b64 = (b: Buffer): string => b.toString('base64');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv-kh-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('known_hosts', () => {
  it('parses plain, [host]:port, hashed and marked lines, skipping junk', () => {
    const text = [
      '# comment',
      '',
      `host1,192.0.2.1 ssh-ed25519 ${b64(ed1)} me@there`,
      `[127.0.0.1]:22022 ssh-ed25519 ${b64(ed1)}`,
      `|1|${b64(Buffer.alloc(20, 1))}|${b64(Buffer.alloc(20, 2))} ecdsa-sha2-nistp256 ${b64(ec1)}`,
      `@revoked bad ssh-ed25519 ${b64(ed2)}`,
      `@cert-authority *.example.com ssh-ed25519 ${b64(ed1)}`,
      '@bogus-marker h ssh-ed25519 AAAA',
      'only-two fields',
      'h ssh-ed25519 !!!notbase64',
    ].join('\n');
    const e = parseKnownHosts(text);
    expect(e).toHaveLength(5);
    expect(e[0]).toMatchObject({ line: 3, patterns: ['host1', '192.0.2.1'], keyType: 'ssh-ed25519' });
    expect(e[0]!.key.equals(ed1)).toBe(true);
    expect(e[1]!.patterns).toEqual(['[127.0.0.1]:22022']);
    expect(e[2]!.hashed?.salt.length).toBe(20);
    expect(e[3]!.marker).toBe('revoked');
    expect(e[4]!.marker).toBe('cert-authority');
  });

  it('names hosts as OpenSSH does', () => {
    expect(knownHostName('Host.Example', 22)).toBe('host.example');
    expect(knownHostName('127.0.0.1', 22022)).toBe('[127.0.0.1]:22022');
    expect(knownHostsLine('127.0.0.1', 22022, ed1)).toBe(`[127.0.0.1]:22022 ssh-ed25519 ${b64(ed1)}`);
  });

  it('matches plain, [host]:port, negated and wildcard patterns', () => {
    const [plain, bracket, neg, wild] = parseKnownHosts(
      [
        `a.example,b.example ssh-ed25519 ${b64(ed1)}`,
        `[127.0.0.1]:22022 ssh-ed25519 ${b64(ed1)}`,
        `*.example,!c.example ssh-ed25519 ${b64(ed1)}`,
        `[10.0.0.?]:* ssh-ed25519 ${b64(ed1)}`,
      ].join('\n'),
    );
    expect(entryMatchesHost(plain!, 'a.example')).toBe(true);
    expect(entryMatchesHost(plain!, 'B.EXAMPLE')).toBe(true);
    expect(entryMatchesHost(plain!, 'a.example', 2222)).toBe(false); // port 22 only
    expect(entryMatchesHost(bracket!, '127.0.0.1', 22022)).toBe(true);
    expect(entryMatchesHost(bracket!, '127.0.0.1', 22)).toBe(false);
    expect(entryMatchesHost(bracket!, '127.0.0.1', 2202)).toBe(false);
    expect(entryMatchesHost(neg!, 'x.example')).toBe(true);
    expect(entryMatchesHost(neg!, 'c.example')).toBe(false);
    expect(entryMatchesHost(wild!, '10.0.0.7', 2222)).toBe(true);
    expect(entryMatchesHost(wild!, '10.0.0.77', 2222)).toBe(false);
  });

  it('matches hashed entries (|1|salt|hash)', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[127.0.0.1]:22022').digest();
    const [e] = parseKnownHosts(`|1|${b64(salt)}|${b64(hash)} ssh-ed25519 ${b64(ed1)}`);
    expect(entryMatchesHost(e!, '127.0.0.1', 22022)).toBe(true);
    expect(entryMatchesHost(e!, '127.0.0.1', 22)).toBe(false);
    expect(entryMatchesHost(e!, '127.0.0.2', 22022)).toBe(false);
  });

  it('reads files hashed by OpenSSH\'s own ssh-keygen -H', () => {
    const have = spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
    if (have.error) return; // ssh-keygen not installed
    const f = join(dir, 'kh-hashed');
    writeFileSync(
      f,
      `[127.0.0.1]:22022 ssh-ed25519 ${b64(ed1)}\nplainhost ecdsa-sha2-nistp256 ${b64(ec1)}\n`,
    );
    execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' });
    const text = readFileSync(f, 'utf8');
    expect(text).not.toContain('127.0.0.1');
    const entries = parseKnownHosts(text);
    expect(entries.every((e) => e.hashed !== undefined)).toBe(true);
    expect(checkHostKey(entries, '127.0.0.1', 22022, ed1).status).toBe('match');
    expect(checkHostKey(entries, 'plainhost', 22, ec1).status).toBe('match');
    expect(checkHostKey(entries, 'otherhost', 22, ec1).status).toBe('unknown');
    // And ssh-keygen -F finds what we write.
    const ours = join(dir, 'kh-ours');
    writeFileSync(ours, `${knownHostsLine('127.0.0.1', 22022, ed1)}\n`);
    const found = spawnSync('ssh-keygen', ['-F', '[127.0.0.1]:22022', '-f', ours], { encoding: 'utf8' });
    expect(found.status).toBe(0);
    expect(found.stdout).toContain(b64(ed1));
  });

  it('checks a host key: match, mismatch, unknown, revoked', () => {
    const entries = parseKnownHosts(
      [
        `[127.0.0.1]:22022 ssh-ed25519 ${b64(ed1)}`,
        `other ecdsa-sha2-nistp256 ${b64(ec1)}`,
        `@revoked revokedhost ssh-ed25519 ${b64(ed2)}`,
        `revokedhost ssh-ed25519 ${b64(ed2)}`,
      ].join('\n'),
    );
    expect(checkHostKey(entries, '127.0.0.1', 22022, ed1).status).toBe('match');
    const mm = checkHostKey(entries, '127.0.0.1', 22022, ed2);
    expect(mm).toMatchObject({ status: 'mismatch' });
    expect(mm.status === 'mismatch' && mm.entries[0]!.line).toBe(1);
    expect(checkHostKey(entries, '127.0.0.1', 22022, ec1)).toEqual({ status: 'unknown', otherTypes: ['ssh-ed25519'] });
    expect(checkHostKey(entries, 'nobody', 22, ed1)).toEqual({ status: 'unknown', otherTypes: [] });
    expect(checkHostKey(entries, 'revokedhost', 22, ed2).status).toBe('revoked');
  });

  it('reads key types and fingerprints like OpenSSH', () => {
    expect(keyTypeOfBlob(ed1)).toBe('ssh-ed25519');
    expect(keyTypeOfBlob(ec1)).toBe('ecdsa-sha2-nistp256');
    const fp = keyFingerprint(ed1);
    expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const have = spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
    if (have.error) return;
    const f = join(dir, 'k.pub');
    writeFileSync(f, `ssh-ed25519 ${b64(ed1)} x\n`);
    expect(execFileSync('ssh-keygen', ['-l', '-f', f], { encoding: 'utf8' })).toContain(fp);
  });

  it('offers the host key algorithms known_hosts holds first', () => {
    expect(preferredHostKeyAlgorithms([])[0]).toBe('ssh-ed25519');
    const rsaFirst = preferredHostKeyAlgorithms(['ssh-rsa']);
    expect(rsaFirst.slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(new Set(rsaFirst).size).toBe(rsaFirst.length);
    expect(preferredHostKeyAlgorithms(['ecdsa-sha2-nistp256'])[0]).toBe('ecdsa-sha2-nistp256');
  });
});

describe('the command run on the far side', () => {
  it('quotes for sh', () => {
    expect(shQuote('/run/libvirt/libvirt-sock')).toBe('/run/libvirt/libvirt-sock');
    expect(shQuote("a b'c")).toBe(`'a b'\\''c'`);
    expect(shQuote('')).toBe("''");
    expect(shQuote('$(reboot)')).toBe("'$(reboot)'");
  });

  it('chooses the proxy as libvirt does', () => {
    expect(proxyForUri(parseLibvirtUri('qemu+ssh://h/system'))).toBe('auto');
    expect(proxyForUri(parseLibvirtUri('qemu+ssh://h/session'))).toBe('native');
    expect(proxyForUri(parseLibvirtUri('qemu+ssh://h/system?socket=/s'))).toBe('netcat');
    expect(proxyForUri(parseLibvirtUri('qemu+ssh://h/system?netcat=/bin/nc'))).toBe('netcat');
    expect(proxyForUri(parseLibvirtUri('qemu+ssh://h/system?proxy=native'))).toBe('native');
    expect(proxyForUri(parseLibvirtUri('qemu+ssh://h/system?proxy=auto&netcat=nc'))).toBe('netcat');
  });

  it('builds the same shapes as libvirt', () => {
    const helperUri = sshHelperUri(parseLibvirtUri('qemu+ssh://h/system?keyfile=k'));
    expect(remoteHelperCommand({ proxy: 'native', helperUri, socket: '/s' })).toBe(
      "sh -c 'exec virt-ssh-helper qemu:///system'",
    );
    expect(remoteHelperCommand({ proxy: 'netcat', helperUri, socket: '/var/run/libvirt/libvirt-sock' })).toBe(
      `sh -c 'if nc -q 2>&1 | grep "requires an argument" >/dev/null 2>&1; then ARG=-q0; else ARG=; fi; ` +
        `exec nc $ARG -U /var/run/libvirt/libvirt-sock'`,
    );
    expect(remoteHelperCommand({ proxy: 'auto', helperUri, socket: '/s', readonly: true })).toMatch(
      /^sh -c 'if command -v virt-ssh-helper >\/dev\/null 2>&1; then exec virt-ssh-helper -r qemu:\/\/\/system; else .* -U \/s; fi'$/,
    );
  });

  /** Run the command through a real sh with fake virt-ssh-helper / nc that print their arguments. */
  function runWithFakes(command: string, fakes: Record<string, string>): string {
    const bin = mkdtempSync(join(dir, 'bin-'));
    for (const [name, script] of Object.entries(fakes)) {
      writeFileSync(join(bin, name), `#!/bin/sh\n${script}\n`);
      chmodSync(join(bin, name), 0o755);
    }
    // PATH: our fakes and the two tools the script needs (sh, grep); never the real helper.
    for (const tool of ['sh', 'grep']) {
      const real = execFileSync('/bin/sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
      symlinkSync(real, join(bin, tool));
    }
    const r = spawnSync('/bin/sh', ['-c', command], {
      env: { PATH: bin },
      encoding: 'utf8',
    });
    return r.stdout + r.stderr;
  }
  const printArgs = 'for a in "$@"; do printf "[%s]" "$a"; done; echo';

  it('passes awkward socket paths and URIs through both shells intact', () => {
    const socket = "/tmp/it's a dir/$HOME/libvirt-sock";
    const out = runWithFakes(remoteHelperCommand({ proxy: 'netcat', helperUri: 'x', socket, netcat: 'fake nc' }), {
      'fake nc': `case "$1" in -q) [ $# -eq 1 ] && { echo "nc: option requires an argument -- 'q'" >&2; exit 1; };; esac; ${printArgs}`,
    });
    expect(out.trim()).toBe(`[-q0][-U][${socket}]`);
  });

  it('omits -q0 for an nc without -q', () => {
    const out = runWithFakes(remoteHelperCommand({ proxy: 'netcat', helperUri: 'x', socket: '/s', netcat: 'fake-nc' }), {
      'fake-nc': `case "$1" in -q) echo "nc: invalid option -- 'q'" >&2; exit 1;; esac; ${printArgs}`,
    });
    expect(out).toMatch(/\[-U\]\[\/s\]/);
    expect(out).not.toContain('-q0');
  });

  it('auto: virt-ssh-helper when present, else netcat', () => {
    const uri = "qemu:///system?socket=/a b&mode=direct";
    const cmd = remoteHelperCommand({ proxy: 'auto', helperUri: uri, socket: '/s', netcat: 'fake-nc' });
    const withHelper = runWithFakes(cmd, { 'virt-ssh-helper': printArgs, 'fake-nc': 'echo NC' });
    expect(withHelper).toMatch(new RegExp(`\\[${uri.replace(/[?/]/g, '\\$&')}\\]`));
    expect(withHelper).not.toContain('NC');
    const withoutHelper = runWithFakes(cmd, { 'fake-nc': 'echo NC "$@"' });
    expect(withoutHelper).toContain('NC -U /s');
  });

  it('explains failures of the far side', () => {
    expect(explainHelperFailure('sh: 1: exec: virt-ssh-helper: not found\n', 127, undefined, 'root@h', undefined)).toMatch(
      /virt-ssh-helper is not installed on root@h.*proxy=netcat/,
    );
    expect(explainHelperFailure('sh: 1: exec: nc: not found\n', 127, undefined, 'root@h', '/s')).toMatch(/netcat \(nc\) is not installed/);
    expect(explainHelperFailure('nc: unix connect failed: No such file or directory\n', 1, undefined, 'root@h', '/s')).toMatch(
      /no libvirt socket at \/s on root@h/,
    );
    expect(explainHelperFailure('nc: unix connect failed: Connection refused', 1, undefined, 'h', '/s')).toMatch(/refuses/);
    expect(explainHelperFailure('nc: unix connect failed: Permission denied', 1, undefined, 'h', '/s')).toMatch(/libvirt" group/);
    expect(explainHelperFailure('', null, 'KILL', 'h', '/s')).toMatch(/killed by KILL/);
  });
});
