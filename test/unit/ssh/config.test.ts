/**
 * ssh_config rendering, read back by OpenSSH's own parser (`ssh -G`, which resolves a
 * configuration without connecting): paths with spaces, quotes, `#` and backslashes
 * come back as they went in.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  escapeSshTokens,
  jumpProxyCommand,
  netnsProxyCommand,
  quoteSshConfigArg,
  renderSshConfig,
  rsyncRemoteShell,
  type SshConfigHost,
} from '../../../src/ssh/config.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmenv ssh config '));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What `ssh -G` makes of a config for `name`: keyword (lower case) → values. */
function resolved(config: string, name: string): Map<string, string[]> {
  const file = join(dir, `cfg-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, config);
  const r = spawnSync('ssh', ['-G', '-F', file, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  expect(r.status, r.stderr).toBe(0);
  const out = new Map<string, string[]>();
  for (const l of r.stdout.split('\n')) {
    const i = l.indexOf(' ');
    if (i < 0) continue;
    const k = l.slice(0, i).toLowerCase();
    out.set(k, [...(out.get(k) ?? []), l.slice(i + 1)]);
  }
  return out;
}

const base: SshConfigHost = {
  name: 'web',
  hostName: '127.0.0.1',
  port: 2222,
  user: 'vagrant',
  identityFile: '/p/.vmenv/machines/web/id_ed25519',
  knownHostsFile: '/p/.vmenv/machines/web/known_hosts',
};

describe('renderSshConfig', () => {
  it('writes the block', () => {
    expect(renderSshConfig({ ...base, comment: 'vmenv machine web' })).toBe(
      [
        '# vmenv machine web',
        'Host web',
        '  HostName 127.0.0.1',
        '  Port 2222',
        '  User vagrant',
        '  IdentityFile /p/.vmenv/machines/web/id_ed25519',
        '  IdentitiesOnly yes',
        '  PasswordAuthentication no',
        '  UserKnownHostsFile /p/.vmenv/machines/web/known_hosts',
        '  StrictHostKeyChecking yes',
        '  UpdateHostKeys no',
        '  LogLevel ERROR',
        '',
      ].join('\n'),
    );
  });

  it('is read back by ssh -G', () => {
    const m = resolved(renderSshConfig({ ...base, hostKeyAlias: 'vmenv-web-1a2b', forwardAgent: false }), 'web');
    expect(m.get('hostname')).toEqual(['127.0.0.1']);
    expect(m.get('port')).toEqual(['2222']);
    expect(m.get('user')).toEqual(['vagrant']);
    expect(m.get('identityfile')).toEqual([base.identityFile]);
    expect(m.get('identitiesonly')).toEqual(['yes']);
    expect(m.get('userknownhostsfile')).toEqual([base.knownHostsFile]);
    expect(m.get('stricthostkeychecking')).toEqual(['true']);
    expect(m.get('hostkeyalias')).toEqual(['vmenv-web-1a2b']);
    expect(m.get('loglevel')).toEqual(['ERROR']);
    expect(m.get('updatehostkeys')).toEqual(['false']);
  });

  it('quotes paths with spaces, quotes, # and backslashes', () => {
    const weird = join(dir, `it's a "key" #1 \\ here`);
    const known = join(dir, 'known hosts');
    const m = resolved(renderSshConfig({ ...base, identityFile: weird, knownHostsFile: known }), 'web');
    expect(m.get('identityfile')).toEqual([weird]);
    // One file, not two: the space did not split it.
    expect(m.get('userknownhostsfile')).toEqual([known]);
  });

  it('ProxyCommand for a network namespace, passed to ssh as written', () => {
    const cmd = netnsProxyCommand('vmenv test');
    expect(cmd).toBe("ip netns exec 'vmenv test' nc %h %p");
    const m = resolved(renderSshConfig({ ...base, proxyCommand: cmd }), 'web');
    expect(m.get('proxycommand')).toEqual([cmd]);
  });

  it('a jump host becomes a quoted ProxyCommand (ssh -W), whatever the paths hold', () => {
    const plain = resolved(renderSshConfig({ ...base, jump: { host: 'kvm1.example', user: 'ops', port: 2200 } }), 'web');
    expect(plain.get('proxycommand')).toEqual(["ssh -l ops -p 2200 -o LogLevel=ERROR -W '[%h]:%p' kvm1.example"]);
    expect(plain.get('proxyjump')).toBeUndefined();
    const key = join(dir, "ops's key 100%");
    const known = join(dir, 'ops known');
    const m = resolved(renderSshConfig({ ...base, jump: { host: 'kvm1.example', user: 'ops', identityFile: key, knownHostsFile: known } }), 'web');
    const cmd = m.get('proxycommand')![0]!;
    // What ssh -G prints is before %-expansion: one level of doubling still shows.
    expect(cmd).toContain(`-i '${join(dir, "ops'\\''s key 100%%%%")}'`);
    expect(cmd).toContain(`-o 'UserKnownHostsFile=${known}'`);
    expect(cmd).toContain('-o StrictHostKeyChecking=yes');
    expect(cmd).toMatch(/-W '\[%h\]:%p' kvm1\.example$/);
  });

  it('the jump command, run by a shell after expansion, gives ssh the right arguments', () => {
    const key = join(dir, "it's 100% key");
    const known = join(dir, 'known hosts');
    const cmd = jumpProxyCommand({ host: 'jump.example', user: 'ops', port: 2200, identityFile: key, knownHostsFile: known }, join(dir, 'fake ssh'));
    // The outer ssh's expansion: %h, %p, and %% to %.
    const expanded = cmd.replace(/%([hp%])/g, (_m, c: string) => (c === 'h' ? '10.0.0.5' : c === 'p' ? '22' : '%'));
    const argvFile = join(dir, 'jump-argv');
    writeFileSync(join(dir, 'fake ssh'), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${argvFile}'\n`, { mode: 0o755 });
    expect(spawnSync('/bin/sh', ['-c', `exec ${expanded}`]).status).toBe(0);
    const argv = spawnSync('cat', [argvFile], { encoding: 'utf8' }).stdout.trimEnd().split('\n');
    // The inner ssh expands % in -i and UserKnownHostsFile once more: %% is one %.
    expect(argv).toEqual([
      '-l', 'ops', '-p', '2200',
      '-i', key.replace(/%/g, '%%'), '-o', 'IdentitiesOnly=yes',
      '-o', `UserKnownHostsFile=${known}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR',
      '-W', '[10.0.0.5]:22', 'jump.example',
    ]);
  });

  it('several machines', () => {
    const text = renderSshConfig([base, { ...base, name: 'db', port: 2223 }]);
    expect(resolved(text, 'db').get('port')).toEqual(['2223']);
    expect(resolved(text, 'web').get('port')).toEqual(['2222']);
    expect(text).toContain('\n\nHost db\n');
  });

  it('refuses what ssh would misread', () => {
    expect(() => renderSshConfig({ ...base, name: 'my web' })).toThrow(TypeError);
    expect(() => renderSshConfig({ ...base, name: 'web*' })).toThrow(TypeError);
    expect(() => renderSshConfig({ ...base, identityFile: '/a\nHost *' })).toThrow(TypeError);
    expect(() => renderSshConfig({ ...base, proxyCommand: 'nc %h %p\nHost x' })).toThrow(TypeError);
    expect(() => renderSshConfig({ ...base, proxyCommand: 'nc %h %p', jump: { host: 'j' } })).toThrow(/exclude/);
    expect(() => renderSshConfig({ ...base, extra: [['Bad Key', 'x']] })).toThrow(TypeError);
  });
});

describe('quoting helpers', () => {
  it('quoteSshConfigArg', () => {
    expect(quoteSshConfigArg('/plain/path-1.2')).toBe('/plain/path-1.2');
    expect(quoteSshConfigArg('a b')).toBe('"a b"');
    expect(quoteSshConfigArg('say "hi"\\')).toBe('"say \\"hi\\"\\\\"');
    expect(quoteSshConfigArg('')).toBe('""');
  });

  it('escapeSshTokens doubles %', () => {
    expect(escapeSshTokens('/keys/100%/id')).toBe('/keys/100%%/id');
  });

  it('rsyncRemoteShell quotes for rsync -e', () => {
    expect(rsyncRemoteShell('/tmp/ssh_config')).toBe('ssh -F /tmp/ssh_config');
    expect(rsyncRemoteShell("/tmp/my dir/it's")).toBe("ssh -F '/tmp/my dir/it''s'");
    expect(rsyncRemoteShell('/tmp/c', 'ssh', ['-o', 'ControlPath=/tmp/s dir/m0', '-o', 'BatchMode=yes'])).toBe(
      "ssh -F /tmp/c -o 'ControlPath=/tmp/s dir/m0' -o BatchMode=yes",
    );
  });

  it('rsync splits rsyncRemoteShell back into ssh and the path', () => {
    // rsync runs the -e command itself: a fake "ssh" records its argv.
    const fake = join(dir, 'fake ssh');
    mkdirSync(join(dir, 'out'), { recursive: true });
    const argvFile = join(dir, 'out', 'argv');
    writeFileSync(fake, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${argvFile}'\nexit 1\n`, { mode: 0o755 });
    const cfg = join(dir, "conf dir/it's");
    spawnSync('rsync', ['-e', rsyncRemoteShell(cfg, fake), 'web:/x', join(dir, 'out', 'y')], { stdio: 'ignore' });
    const argv = spawnSync('cat', [argvFile], { encoding: 'utf8' }).stdout.split('\n');
    expect(argv.slice(0, 3)).toEqual(['-F', cfg, 'web']);
    const socket = join(dir, "sock dir/it's");
    spawnSync('rsync', ['-e', rsyncRemoteShell(cfg, fake, ['-o', `ControlPath=${socket}`]), 'web:/x', join(dir, 'out', 'y')], { stdio: 'ignore' });
    const withArgs = spawnSync('cat', [argvFile], { encoding: 'utf8' }).stdout.split('\n');
    expect(withArgs.slice(0, 5)).toEqual(['-F', cfg, '-o', `ControlPath=${socket}`, 'web']);
  });
});
