/** Reading a machine's cloud_init files at up: the documents, the problems with file and line, the DHCP warning. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CloudInitConfig } from '../../../src/config/types.js';
import { machineCloudInit } from '../../../src/lifecycle/cloud-init.js';
import { UserError } from '../../../src/errors.js';
import { machine } from '../config/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vmenv-cloud-init-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MAC = '52:54:00:12:34:56';

function files(entries: Record<string, string>): void {
  for (const [name, body] of Object.entries(entries)) writeFileSync(join(dir, name), body);
}
const read = (cloud_init: Partial<CloudInitConfig>) =>
  machineCloudInit(machine({ cloud_init: { user_data: undefined, network_config: undefined, ...cloud_init } }), dir, MAC);

describe('machineCloudInit', () => {
  files({
    'user-data.yaml': '#cloud-config\nhostname: shop\nwrite_files:\n  - { path: /etc/x, permissions: 0644 }\n',
    'plain.yaml': 'users: [default, bob]\n',
    'script.sh': '#!/bin/sh\necho hi\n',
    'broken.yaml': '#cloud-config\nusers:\n  - name: a\n   - b\n',
    'bad-users.yaml': '#cloud-config\nusers: { a: b }\n',
    'net-static.yaml': 'network:\n  version: 2\n  ethernets:\n    eth0: { addresses: [10.0.0.5/24] }\n',
    'net-dhcp.yaml': 'version: 1\nconfig:\n  - { type: physical, name: eth0, subnets: [{ type: dhcp }] }\n',
    'net-bad.yaml': 'ethernets: {}\n',
  });
  mkdirSync(join(dir, 'folder.yaml'), { recursive: true });

  it('reads files (YAML 1.1) and takes inline documents as they are', async () => {
    expect(await read({ user_data: { file: 'user-data.yaml' } })).toEqual({
      userData: { hostname: 'shop', write_files: [{ path: '/etc/x', permissions: 0o644 }] },
      warnings: [],
    });
    expect(await read({ user_data: { file: join(dir, 'plain.yaml') }, network_config: { file: 'net-dhcp.yaml' } })).toEqual({
      userData: { users: ['default', 'bob'] },
      networkConfig: { version: 1, config: [{ type: 'physical', name: 'eth0', subnets: [{ type: 'dhcp' }] }] },
      warnings: [],
    });
    expect(await read({ user_data: { inline: { a: 1 } } })).toEqual({ userData: { a: 1 }, warnings: [] });
    expect(await read({})).toEqual({ warnings: [] });
  });

  it('warns when the network-config gives the management NIC no DHCP', async () => {
    const r = await read({ network_config: { file: 'net-static.yaml' } });
    expect(r.warnings).toEqual([expect.stringMatching(/^cloud_init\.network_config gives the management NIC \(the first one, MAC 52:54:00:12:34:56\) no DHCPv4/)]);
  });

  it.each([
    ['missing.yaml', 'user_data', /^cloud_init\.user_data: .*missing\.yaml does not exist$/],
    ['folder.yaml', 'user_data', /^cloud_init\.user_data: .*folder\.yaml is a folder, not a file$/],
    ['script.sh', 'user_data', /^cloud_init\.user_data: .*script\.sh is a script \(#!\), not #cloud-config: vmenv merges/],
    ['broken.yaml', 'user_data', /^cloud_init\.user_data: .*broken\.yaml:4 is not YAML: /],
    ['bad-users.yaml', 'user_data', /^cloud_init\.user_data: .*bad-users\.yaml has a problem: users must be a list \(or a comma-separated string\), got a mapping$/],
    ['net-bad.yaml', 'network_config', /^cloud_init\.network_config: .*net-bad\.yaml has a problem: needs version: 1 or version: 2/],
  ])('%s as %s: %s', async (file, key, message) => {
    const err = await read({ [key]: { file } }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(message);
  });
});
