import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { machineIndexPath, readMachineIndex, type MachineIndexEntry } from '../../../src/project/machine-index.js';
import { DomainState, ErrorCode, LibvirtError, type DomainRef } from '../../../src/libvirt/index.js';
import {
  domainStateWord,
  globalStatus,
  localStaleReason,
  readLocalMachine,
  shortId,
  UNREACHABLE_STATE,
  type GlobalStatusLibvirt,
  type GlobalStatusOpener,
} from '../../../src/inventory/global-status.js';
import { registerMachine } from '../../../src/project/machine-index.js';
import { newMachineState, ProjectState } from '../../../src/project/state.js';

const root = mkdtempSync(join(tmpdir(), 'vmenv-global-status-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let home: string;
let n = 0;
beforeEach(() => {
  home = join(root, `home-${++n}`);
  mkdirSync(home);
});

/** A project folder with vmenv.yaml and a state for each machine. */
async function project(name: string, machines: string[]): Promise<string> {
  const dir = join(root, `p${n}-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmenv.yaml'), 'box: tiny\n');
  for (const m of machines) {
    await new ProjectState(dir).write(newMachineState({ machine: m, uri: 'x', pool: 'default', ssh: { username: 'u', privateKeyPath: '/k' } }));
  }
  return dir;
}

function entry(id: string, dir: string, machine: string, uri: string, domain = `dom-${id}`): MachineIndexEntry {
  return { id, project: dir, machine, box: { name: 'tiny', version: '1.0.0' }, uri, domain, state: 'running' };
}

function notFound(name: string): LibvirtError {
  return new LibvirtError({ code: ErrorCode.noDomain, domain: 10, level: 2, message: `Domain not found: no domain with matching name '${name}'` });
}

interface FakeDomain {
  state: number;
  managedSave?: boolean;
  /** Thrown by the lookup instead of answering. */
  error?: Error;
  /** The lookup never answers. */
  hang?: boolean;
}

/** A libvirt stand-in per URI (unit tier: the real daemon is the integration and e2e tiers' job). */
function fakeLibvirt(hosts: Record<string, Record<string, FakeDomain> | 'unreachable' | 'hang'>, onLookup?: (name: string) => Promise<void>) {
  const opened: string[] = [];
  let closed = 0;
  const opener: GlobalStatusOpener = async (uri) => {
    opened.push(uri);
    const host = hosts[uri];
    if (host === undefined || host === 'unreachable') throw new Error(`cannot connect to ${uri}`);
    if (host === 'hang') return new Promise<never>(() => undefined);
    const client: GlobalStatusLibvirt = {
      async domainLookupByName(name: string): Promise<DomainRef> {
        await onLookup?.(name);
        const d = host[name];
        if (d === undefined) throw notFound(name);
        if (d.error) throw d.error;
        if (d.hang === true) return new Promise<never>(() => undefined);
        return { name, uuid: Buffer.alloc(16), id: -1 };
      },
      async domainGetState(d: DomainRef) {
        return { state: host[d.name]!.state, reason: 0 };
      },
      async domainHasManagedSaveImage(d: DomainRef) {
        return host[d.name]!.managedSave === true;
      },
      async close() {
        closed++;
      },
    };
    return client;
  };
  return { opener, opened, closed: () => closed };
}

describe('global-status', () => {
  it('lists live states, one connection per URI, and prunes what vanished', async () => {
    const good = await project('good', ['web', 'db', 'cache', 'queue', 'old']);
    const noYaml = await project('noyaml', ['web']);
    rmSync(join(noYaml, 'vmenv.yaml'));
    const noState = await project('nostate', []);
    const entries = [
      entry('11111111-aaaa', good, 'web', 'qemu:///one'),
      entry('22222222-bbbb', join(root, 'never-was'), 'web', 'qemu:///three'),
      entry('33333333-cccc', noYaml, 'web', 'qemu:///one'),
      entry('44444444-dddd', noState, 'web', 'qemu:///one'),
      entry('55555555-eeee', good, 'old', 'qemu:///one'),
      entry('66666666-ffff', good, 'db', 'qemu:///down'),
      entry('77777777-0000', good, 'cache', 'qemu:///one'),
      entry('88888888-1111', good, 'queue', 'qemu:///one'),
    ];
    for (const e of entries) await registerMachine(e, { home });
    const libvirt = fakeLibvirt({
      'qemu:///one': {
        'dom-11111111-aaaa': { state: DomainState.running },
        'dom-77777777-0000': { state: DomainState.shutoff, managedSave: true },
        'dom-88888888-1111': { state: DomainState.running, error: new Error('permission denied') },
      },
      'qemu:///down': 'unreachable',
    });

    const result = await globalStatus({ home, openLibvirt: libvirt.opener });

    expect(result.machines.map((m) => [m.id, m.machine, m.state])).toEqual([
      ['77777777-0000', 'cache', 'suspended'],
      ['66666666-ffff', 'db', UNREACHABLE_STATE],
      ['88888888-1111', 'queue', 'unknown (permission denied)'],
      ['11111111-aaaa', 'web', 'running'],
    ]);
    expect(result.pruned.map((p) => [p.id, p.reason]).sort()).toEqual([
      ['22222222-bbbb', 'project folder is gone'],
      ['33333333-cccc', 'vmenv.yaml is gone'],
      ['44444444-dddd', 'machine state is gone'],
      ['55555555-eeee', 'domain is gone'],
    ]);
    // One connection per URI; none for a URI whose only entry was stale on disk.
    expect(libvirt.opened.sort()).toEqual(['qemu:///down', 'qemu:///one']);
    expect(libvirt.closed()).toBe(1);
    expect((await readMachineIndex({ home })).map((e) => e.id).sort()).toEqual(['11111111-aaaa', '66666666-ffff', '77777777-0000', '88888888-1111']);
  });

  it('--no-prune: lists stale entries marked, and leaves the index file as it was', async () => {
    const good = await project('good', ['web']);
    await registerMachine(entry('aaaa', good, 'web', 'qemu:///one'), { home });
    await registerMachine(entry('bbbb', join(root, 'gone-project'), 'web', 'qemu:///one'), { home });
    const before = readFileSync(machineIndexPath({ home }), 'utf8');
    const libvirt = fakeLibvirt({ 'qemu:///one': {} });

    const result = await globalStatus({ home, prune: false, openLibvirt: libvirt.opener });

    expect(result.pruned).toEqual([]);
    expect(result.machines.map((m) => [m.id, m.state, m.stale])).toEqual([
      ['bbbb', 'stale', 'project folder is gone'],
      ['aaaa', 'stale', 'domain is gone'],
    ]);
    expect(readFileSync(machineIndexPath({ home }), 'utf8')).toBe(before);
  });

  it('nothing to prune: the index is not rewritten; no index: nothing listed and no file made', async () => {
    const empty = await globalStatus({ home, openLibvirt: fakeLibvirt({}).opener });
    expect(empty).toEqual({ machines: [], pruned: [] });
    expect(existsSync(machineIndexPath({ home }))).toBe(false);

    const good = await project('good', ['web']);
    await registerMachine(entry('aaaa', good, 'web', 'qemu:///one'), { home });
    // A byte a rewrite would drop shows whether the file was written again.
    writeFileSync(machineIndexPath({ home }), `${readFileSync(machineIndexPath({ home }), 'utf8')}\n`);
    const before = readFileSync(machineIndexPath({ home }), 'utf8');
    const result = await globalStatus({ home, openLibvirt: fakeLibvirt({ 'qemu:///one': { 'dom-aaaa': { state: DomainState.paused } } }).opener });
    expect(result.machines.map((m) => m.state)).toEqual(['paused']);
    expect(readFileSync(machineIndexPath({ home }), 'utf8')).toBe(before);
  });

  it('reads the index from $VMENV_HOME when no home is given', async () => {
    const good = await project('good', ['web']);
    await registerMachine(entry('aaaa', good, 'web', 'qemu:///one'), { home });
    const saved = process.env['VMENV_HOME'];
    process.env['VMENV_HOME'] = home;
    try {
      const result = await globalStatus({ openLibvirt: fakeLibvirt({ 'qemu:///one': { 'dom-aaaa': { state: DomainState.shutoff } } }).opener });
      expect(result.machines.map((m) => [m.id, m.state])).toEqual([['aaaa', 'shutoff']]);
    } finally {
      if (saved === undefined) delete process.env['VMENV_HOME'];
      else process.env['VMENV_HOME'] = saved;
    }
  });

  it('a libvirt that does not connect or answer in time leaves its machines unknown, never pruned', async () => {
    const good = await project('good', ['web', 'db']);
    await registerMachine(entry('aaaa', good, 'web', 'qemu:///hang'), { home });
    await registerMachine(entry('bbbb', good, 'db', 'qemu:///slow'), { home });
    const libvirt = fakeLibvirt({ 'qemu:///hang': 'hang', 'qemu:///slow': { 'dom-bbbb': { state: 1, hang: true } } });
    const started = Date.now();
    const result = await globalStatus({ home, uriTimeoutMs: 300, openLibvirt: libvirt.opener });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(result.machines.map((m) => [m.id, m.state])).toEqual([
      ['bbbb', 'unknown (libvirt did not answer in time)'],
      ['aaaa', UNREACHABLE_STATE],
    ]);
    expect(result.pruned).toEqual([]);
    expect((await readMachineIndex({ home })).length).toBe(2);
  });

  it('keeps an entry that was registered again while it was being judged', async () => {
    const good = await project('good', ['web']);
    const first = entry('aaaa', good, 'web', 'qemu:///one', 'dom-old');
    await registerMachine(first, { home });
    // While libvirt is asked, `up` records the machine again with a new domain.
    const libvirt = fakeLibvirt({ 'qemu:///one': {} }, async () => {
      await registerMachine({ ...first, domain: 'dom-new' }, { home });
    });
    const result = await globalStatus({ home, openLibvirt: libvirt.opener });
    expect(result.pruned).toEqual([]);
    expect((await readMachineIndex({ home })).map((e) => e.domain)).toEqual(['dom-new']);
  });

  it('Ctrl-C (the signal) ends it with the signal reason', async () => {
    const good = await project('good', ['web']);
    await registerMachine(entry('aaaa', good, 'web', 'qemu:///hang'), { home });
    const controller = new AbortController();
    const reason = new Error('interrupted');
    setTimeout(() => controller.abort(reason), 50);
    await expect(globalStatus({ home, signal: controller.signal, openLibvirt: fakeLibvirt({ 'qemu:///hang': 'hang' }).opener })).rejects.toBe(reason);
    expect((await readMachineIndex({ home })).length).toBe(1);
  });
});

describe('domain state words', () => {
  it('match vmenv status', () => {
    expect(domainStateWord(DomainState.running, false)).toBe('running');
    expect(domainStateWord(DomainState.blocked, false)).toBe('running');
    expect(domainStateWord(DomainState.paused, false)).toBe('paused');
    expect(domainStateWord(DomainState.shutdown, false)).toBe('shutting down');
    expect(domainStateWord(DomainState.shutoff, false)).toBe('shutoff');
    expect(domainStateWord(DomainState.shutoff, true)).toBe('suspended');
    expect(domainStateWord(DomainState.crashed, false)).toBe('crashed');
    expect(domainStateWord(DomainState.pmSuspended, false)).toBe('suspended');
    expect(domainStateWord(DomainState.noState, false)).toBe('no state');
  });

  it('short ids are 7 characters, as Vagrant shows them', () => {
    expect(shortId('0f3c2a9e-1b2c-4d5e-8f90-123456789abc')).toBe('0f3c2a9');
  });
});

describe('what the file system tells of a machine', () => {
  it('gives the machine state it read, or why the machine is stale, from just a project and a machine', async () => {
    const dir = await project('local', ['web']);
    const found = await readLocalMachine({ project: dir, machine: 'web' });
    expect(found.stale).toBeUndefined();
    expect('state' in found ? found.state?.machine : undefined).toBe('web');
    expect(await readLocalMachine({ project: dir, machine: 'db' })).toEqual({ stale: 'machine state is gone' });
    expect(await localStaleReason({ project: join(dir, 'nope'), machine: 'web' })).toBe('project folder is gone');
    rmSync(join(dir, 'vmenv.yaml'));
    expect(await localStaleReason({ project: dir, machine: 'web' })).toBe('vmenv.yaml is gone');
  });
});
