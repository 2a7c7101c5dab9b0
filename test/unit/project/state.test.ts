import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extraDiskVolumeNames, machineResourceName, machineVolumeNames } from '../../../src/project/names.js';
import { newMachineState, ProjectState } from '../../../src/project/state.js';
import { pruneMachineIndex, registerMachine, unregisterMachine } from '../../../src/project/machine-index.js';
import { readMachineIndex } from '../../../src/project/machine-index.js';
import { UserError } from '../../../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'vmenv-state-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('machine names', () => {
  it('are unique per project path, even for the same directory name', () => {
    const a = machineResourceName('/home/ann/work/shop', 'web');
    const b = machineResourceName('/home/bob/src/shop', 'web');
    expect(a).toMatch(/^shop_web_[0-9a-f]{8}$/);
    expect(b).toMatch(/^shop_web_[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    expect(machineResourceName('/home/ann/work/shop/', 'web')).toBe(a);
  });

  it('are safe for libvirt whatever the directory is called', () => {
    expect(machineResourceName('/tmp/my project & "more"', 'db')).toMatch(/^my-project-more-_db_[0-9a-f]{8}$/);
    expect(machineResourceName('/', 'x')).toMatch(/^project_x_/);
    expect(machineVolumeNames('p_web_12345678')).toMatchObject({ root: 'p_web_12345678.qcow2', seed: 'p_web_12345678-seed.iso' });
  });

  it('name extra disks by their name, else by their position, never alike', () => {
    const disks = [{ name: undefined }, { name: 'data' }, { name: undefined }, { name: '0' }];
    expect(extraDiskVolumeNames('p_web_12345678', disks)).toEqual([
      'p_web_12345678-disk0.qcow2',
      'p_web_12345678-disk-data.qcow2',
      'p_web_12345678-disk2.qcow2',
      'p_web_12345678-disk-0.qcow2',
    ]);
    // Another machine of the project (or another project) has another resource name.
    expect(extraDiskVolumeNames(machineResourceName('/srv/shop', 'db'), [{ name: 'data' }])[0]).toMatch(/^shop_db_[0-9a-f]{8}-disk-data\.qcow2$/);
  });

  it('keep the positional volume a named disk was recorded with before names counted', () => {
    const disks = [{ name: 'data' }, { name: 'logs' }];
    // Made by an older vmenv: disk 0 as -disk0; disk 1 is new.
    expect(extraDiskVolumeNames('p_web_12345678', disks, ['p_web_12345678.qcow2', 'p_web_12345678-disk0.qcow2'])).toEqual([
      'p_web_12345678-disk0.qcow2',
      'p_web_12345678-disk-logs.qcow2',
    ]);
    // Once the named volume is recorded, it is the one.
    expect(extraDiskVolumeNames('p_web_12345678', disks, ['p_web_12345678-disk0.qcow2', 'p_web_12345678-disk-data.qcow2'])[0]).toBe('p_web_12345678-disk-data.qcow2');
  });
});

describe('project state', () => {
  const project = join(root, 'proj');
  const ps = new ProjectState(project);

  it('reads nothing for a machine never created, then round-trips its state', async () => {
    expect(await ps.read('web')).toBeUndefined();
    expect(await ps.machines()).toEqual([]);
    const s = newMachineState({ machine: 'web', uri: 'qemu:///system', pool: 'default', ssh: { username: 'vagrant', privateKeyPath: '/k' } });
    await ps.write(s);
    await ps.update('web', (st) => {
      st.volumes.push({ pool: 'default', name: 'x.qcow2', role: 'root' });
      st.domain = { name: 'proj_web_1', uuid: 'u' };
    });
    const back = await ps.read('web');
    expect(back?.volumes).toEqual([{ pool: 'default', name: 'x.qcow2', role: 'root' }]);
    expect(back?.domain?.name).toBe('proj_web_1');
    expect(await ps.machines()).toEqual(['web']);
    // Atomic writes leave no temporary files behind.
    expect(readdirSync(ps.machineDir('web'))).toEqual(['state.json']);
    await ps.remove('web');
    expect(await ps.read('web')).toBeUndefined();
  });

  it("reads a state written with one NIC (`nic`) as a list of NICs", async () => {
    const state = new ProjectState(join(root, 'one-nic'));
    const old = { ...newMachineState({ machine: 'web', uri: 'qemu:///system', pool: 'default', ssh: { username: 'u', privateKeyPath: '/k' } }), nic: { mode: 'user', mac: '52:54:00:00:00:01', sshHostPort: 2222 } };
    mkdirSync(state.machineDir('web'), { recursive: true });
    writeFileSync(join(state.machineDir('web'), 'state.json'), JSON.stringify(old));
    const read = await state.read('web');
    expect(read?.nics).toEqual([{ mode: 'user', mac: '52:54:00:00:00:01', sshHostPort: 2222 }]);
    expect(read).not.toHaveProperty('nic');
  });

  it('explains a corrupt or foreign state file', async () => {
    mkdirSync(ps.machineDir('db'), { recursive: true });
    writeFileSync(join(ps.machineDir('db'), 'state.json'), '{ nope');
    await expect(ps.read('db')).rejects.toThrow(/not valid JSON/);
    writeFileSync(join(ps.machineDir('db'), 'state.json'), '{"version": 9}');
    await expect(ps.read('db')).rejects.toBeInstanceOf(UserError);
    await ps.remove('db');
  });

  it('serializes commands with the project lock', async () => {
    const first = await ps.lock('up');
    const waits: string[] = [];
    const second = ps.lock('halt', { timeoutMs: 300, onWait: (h) => waits.push(h) });
    await expect(second).rejects.toThrow();
    expect(waits[0]).toMatch(new RegExp(`pid ${process.pid} \\(up\\)`));
    await first.release();
    const third = await ps.lock('halt', { timeoutMs: 1000 });
    await third.release();
  });
});

describe('machine index', () => {
  const home = join(root, 'home');
  const entry = (id: string, project: string) => ({
    id,
    project,
    machine: 'default',
    box: { name: 'tiny', version: '1.0.0' },
    uri: 'qemu:///system',
    domain: `${id}-dom`,
  });

  it('registers, replaces, unregisters and prunes machines', async () => {
    await registerMachine(entry('a', '/p1'), { home });
    await registerMachine(entry('b', '/p2'), { home });
    await registerMachine({ ...entry('a', '/p1'), state: 'running' }, { home });
    expect((await readMachineIndex({ home })).map((e) => [e.id, e.state])).toEqual([
      ['b', undefined],
      ['a', 'running'],
    ]);
    const dropped = await pruneMachineIndex(async (e) => e.project === '/p2', { home });
    expect(dropped.map((e) => e.id)).toEqual(['b']);
    await unregisterMachine('a', { home });
    expect(await readMachineIndex({ home })).toEqual([]);
  });

  it('loses no entry when many processes-worth of registrations race', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => registerMachine(entry(`m${i}`, `/p${i}`), { home })));
    expect((await readMachineIndex({ home })).length).toBe(20);
  });
});
