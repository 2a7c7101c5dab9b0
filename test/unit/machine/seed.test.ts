import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderSeed, writeSeedIso } from '../../../src/machine/seed.js';
import { UserError } from '../../../src/ui/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vmenv-seed-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('NoCloud seed', () => {
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv3 vmenv@web';

  it('renders meta-data and #cloud-config user-data with the standard keys', () => {
    const files = renderSeed({
      instanceId: 'i-1234',
      hostname: 'web',
      sshAuthorizedKeys: [key],
      users: [{ name: 'deploy', sshAuthorizedKeys: [key], shell: '/bin/sh' }],
    });
    expect(parse(files['meta-data'])).toEqual({ 'instance-id': 'i-1234', 'local-hostname': 'web' });
    expect(files['user-data'].startsWith('#cloud-config\n')).toBe(true);
    expect(parse(files['user-data'])).toEqual({
      hostname: 'web',
      ssh_authorized_keys: [key],
      users: [
        'default',
        { name: 'deploy', ssh_authorized_keys: [key], sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/sh', lock_passwd: true },
      ],
    });
    expect(files['network-config']).toBeUndefined();
  });

  it('carries a network-config when given', () => {
    const net = { version: 2, ethernets: { eth0: { dhcp4: false, addresses: ['10.0.0.5/24'] } } };
    expect(parse(renderSeed({ instanceId: 'i', hostname: 'h', networkConfig: net })['network-config']!)).toEqual(net);
  });

  it('rejects a hostname that would break the guest', () => {
    expect(() => renderSeed({ instanceId: 'i', hostname: 'bad name\n' })).toThrow(UserError);
    expect(() => renderSeed({ instanceId: 'i', hostname: '-x' })).toThrow(/not a valid hostname/);
  });

  it('writes an ISO labelled cidata holding the documents', async () => {
    const out = join(dir, 'seed.iso');
    const files = renderSeed({ instanceId: 'i-42', hostname: 'db', sshAuthorizedKeys: [key] });
    await writeSeedIso(out, files);
    const info = execFileSync('isoinfo', ['-d', '-i', out], { encoding: 'utf8' });
    expect(info).toMatch(/Volume id: cidata/);
    const userData = execFileSync('isoinfo', ['-J', '-i', out, '-x', '/user-data'], { encoding: 'utf8' });
    expect(userData).toBe(files['user-data']);
    const metaData = execFileSync('isoinfo', ['-R', '-i', out, '-x', '/meta-data'], { encoding: 'utf8' });
    expect(parse(metaData)).toEqual({ 'instance-id': 'i-42', 'local-hostname': 'db' });
    expect(readdirSync(dir)).toEqual(['seed.iso']);
  });

  it('leaves nothing behind when the ISO cannot be written', async () => {
    await expect(writeSeedIso(join(dir, 'missing-dir', 'seed.iso'), renderSeed({ instanceId: 'i', hostname: 'h' }))).rejects.toThrow(
      UserError,
    );
    expect(readdirSync(dir)).toEqual(['seed.iso']);
  });
});
