import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatLeaseFileAnswer, leaseFileKind, lookupLeaseFiles } from '../../../src/net/lease-files.js';

const fixtures = join(import.meta.dirname, 'fixtures');
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmenv-leasefiles-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = async (paths: string[], q: Parameters<typeof lookupLeaseFiles>[1]): Promise<string[]> =>
  (await lookupLeaseFiles(paths, q)).map(formatLeaseFileAnswer);

describe('lookupLeaseFiles', () => {
  it("reads the bridge's status file in a directory, and its .leases file only when there is one", async () => {
    await copyFile(join(fixtures, 'libvirt-virbr.status'), join(dir, 'virbr1.status'));
    await writeFile(join(dir, 'virbr9.status'), '[]');
    const found = await lookupLeaseFiles([dir], { mac: '52:54:00:77:00:06', bridge: 'virbr1', nowSeconds: 1_700_000_000 });
    expect(found).toEqual([
      {
        path: join(dir, 'virbr1.status'),
        kind: 'status',
        lease: expect.objectContaining({ ip: '192.168.177.15', hostname: 'web-1' }),
        answer: 'lease 192.168.177.15 (expires 2026-11-22T05:53:39.000Z)',
      },
    ]);
    await copyFile(join(fixtures, 'dnsmasq-v4v6.leases'), join(dir, 'virbr1.leases'));
    expect(await lines([dir], { mac: '52:54:00:77:00:03', bridge: 'virbr1', nowSeconds: 1_700_000_000 })).toEqual([
      `status file ${join(dir, 'virbr1.status')}: no lease for 52:54:00:77:00:03 (2 other leases)`,
      `lease file ${join(dir, 'virbr1.leases')}: lease 10.199.0.23 (expires 2026-11-22T05:52:59.000Z)`,
    ]);
    expect(await lines([dir], { mac: '52:54:00:77:00:03', bridge: 'virbr3' })).toEqual([
      `status file ${join(dir, 'virbr3.status')}: not found`,
      `lease file ${join(dir, 'virbr3.leases')}: not found`,
    ]);
  });

  it('reads every status and lease file of a directory when the bridge is unknown', async () => {
    await writeFile(join(dir, 'virbr1.status'), '');
    const cutShort = '[\n  {\n    "ip-address": "192.168.1';
    await writeFile(join(dir, 'virbr2.status'), cutShort);
    await writeFile(join(dir, 'net.leases'), '0 52:54:00:aa:00:01 10.0.0.5 * *\n1700000000 52:54:00:aa:00:01 10.0.0.4 * *\n');
    await writeFile(join(dir, 'other.conf'), 'ignored');
    expect(await lines([dir], { mac: '52:54:00:AA:00:01', nowSeconds: 1_800_000_000 })).toEqual([
      `lease file ${join(dir, 'net.leases')}: lease 10.0.0.5 (never expires)`,
      `status file ${join(dir, 'virbr1.status')}: empty`,
      `status file ${join(dir, 'virbr2.status')}: no answer yet: not valid JSON (${jsonError(cutShort)}; ${cutShort.length} characters): cut short or being rewritten`,
    ]);
    const empty = join(dir, 'empty');
    await mkdir(empty);
    expect(await lines([empty], { mac: '52:54:00:aa:00:01' })).toEqual([`lease directory ${empty}: no *.status or *.leases file in it`]);
  });

  it('reads files named directly, by name or by content, and says what is wrong with them', async () => {
    const status = join(dir, 'custom-status');
    await writeFile(status, JSON.stringify([{ 'ip-address': '10.1.0.9', 'mac-address': '52:54:00:aa:00:02', 'expiry-time': 1_700_000_000 }]));
    const leases = join(dir, 'custom-leases');
    await writeFile(leases, '1700000000 52:54:00:aa:00:02 10.1.0.8 * *\ngarbage\n1700000000 52:54:00:aa:00:03 10.1.0.7 * *');
    expect(await lines([status, leases, join(dir, 'missing.status')], { mac: '52:54:00:aa:00:02', nowSeconds: 1_800_000_000 })).toEqual([
      `status file ${status}: the lease of 52:54:00:aa:00:02 (10.1.0.9) expired at 2023-11-14T22:13:20.000Z`,
      `lease file ${leases}: the lease of 52:54:00:aa:00:02 (10.1.0.8) expired at 2023-11-14T22:13:20.000Z; the last line was cut short (being rewritten)`,
      `lease file ${join(dir, 'missing.status')}: not found`,
    ]);
    await writeFile(status, '{"not": "a list"}');
    expect(await lines([status], { mac: '52:54:00:aa:00:02' })).toEqual([`status file ${status}: not a status file: a JSON object where an array of leases belongs`]);
  });

  it('tells the kind of a file', () => {
    expect(leaseFileKind('/x/virbr0.status')).toBe('status');
    expect(leaseFileKind('/x/virbr0.leases')).toBe('leases');
    expect(leaseFileKind('/x/custom', ' [')).toBe('status');
    expect(leaseFileKind('/x/custom', '{')).toBe('status');
    expect(leaseFileKind('/x/custom', '0 52:54')).toBe('leases');
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}
