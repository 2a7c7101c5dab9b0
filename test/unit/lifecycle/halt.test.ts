/**
 * haltMachine with `shutdown.mode: agent`, against a scripted libvirt daemon on an
 * in-memory transport: the guest agent's request first, the ACPI power button when
 * libvirt refuses it or the guest is still running after half of shutdown.timeout, and
 * forced off after the timeout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LibvirtClient } from '../../../src/libvirt/client.js';
import { DomainShutdownFlags, DomainState } from '../../../src/libvirt/constants.js';
import { Proc } from '../../../src/libvirt/protocol/procedures.js';
import { readDomain, writeDomain, type DomainRef } from '../../../src/libvirt/protocol/types.js';
import { RpcConnection } from '../../../src/libvirt/rpc.js';
import { duplexPair } from '../../../src/libvirt/transport/memory.js';
import { haltMachine } from '../../../src/lifecycle/halt.js';
import { LibvirtHost } from '../../../src/hosts/libvirt-host.js';
import { newMachineState, ProjectState } from '../../../src/project/state.js';
import { machine } from '../config/helpers.js';
import { FakeLibvirtd, type Reply } from '../support/fake-libvirtd.js';

const root = mkdtempSync(join(tmpdir(), 'vmenv-halt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

const dom: DomainRef = { name: 'p_default_01234567', uuid: Buffer.alloc(16, 7), id: 1 };

/** A daemon with one running domain; `onShutdown` answers each virDomainShutdownFlags by its flags. */
function setup(onShutdown: (flags: number, guest: { stop: () => void }) => Reply) {
  const [a, b] = duplexPair();
  const rpc = new RpcConnection(a);
  const daemon = new FakeLibvirtd(b);
  cleanups.push(() => rpc.destroy());
  let state: number = DomainState.running;
  const guest = { stop: () => void (state = DomainState.shutoff) };
  const calls: string[] = [];
  daemon.on(Proc.DomainLookupByName, () => ({ ok: (w) => writeDomain(w, dom) }));
  daemon.on(Proc.DomainGetState, () => ({ ok: (w) => (w.int(state), w.int(0)) }));
  // No lifecycle events here: halt polls the state instead.
  daemon.on(Proc.ConnectDomainEventCallbackRegisterAny, () => ({ error: { code: 3, domain: 0, message: 'no events' } }));
  daemon.on(Proc.DomainShutdownFlags, (args) => {
    readDomain(args);
    const flags = args.uint();
    calls.push(flags === DomainShutdownFlags.guestAgent ? 'agent' : flags === DomainShutdownFlags.acpiPowerButton ? 'acpi' : `shutdown ${flags}`);
    return onShutdown(flags, guest);
  });
  daemon.on(Proc.DomainDestroyFlags, () => {
    calls.push('destroy');
    guest.stop();
    return { ok: () => undefined };
  });
  const project = join(root, `p${cleanups.length}-${Math.random().toString(36).slice(2)}`);
  const h = {
    project: { path: join(project, 'vmenv.yaml'), dir: project, machines: [], primary: undefined },
    machine: machine({ shutdown: { mode: 'agent', timeout: 2 } }),
    state: new ProjectState(project),
    client: new LibvirtClient(rpc),
    host: LibvirtHost.of('qemu:///system', {}),
  };
  const record = newMachineState({ machine: 'default', uri: 'qemu:///system', pool: 'default', ssh: { username: 'vagrant', privateKeyPath: '/k' } });
  record.domain = { name: dom.name, uuid: '07070707-0707-0707-0707-070707070707' };
  const notes: string[] = [];
  return { run: () => haltMachine(h, { record, onNote: (n) => notes.push(n) }), calls, notes };
}

const ok: Reply = { ok: () => undefined };

describe('haltMachine with shutdown.mode agent', () => {
  it('is done when the guest agent shuts the guest down (libvirt holds the call until it is off)', async () => {
    const { run, calls, notes } = setup((flags, guest) => {
      if (flags !== DomainShutdownFlags.guestAgent) return ok;
      setTimeout(guest.stop, 200);
      return 'none';
    });
    expect(await run()).toBe('graceful');
    expect(calls).toEqual(['agent']);
    expect(notes).toEqual(['the guest agent shut it down']);
  });

  it('presses the ACPI power button at once when libvirt says there is no agent', async () => {
    const { run, calls, notes } = setup((flags, guest) => {
      if (flags === DomainShutdownFlags.guestAgent) {
        return { error: { code: 86, domain: 10, message: 'Guest agent is not responding: QEMU guest agent is not connected' } };
      }
      setTimeout(guest.stop, 100);
      return ok;
    });
    const t0 = Date.now();
    expect(await run()).toBe('graceful');
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(calls).toEqual(['agent', 'acpi']);
    expect(notes).toEqual(['the guest agent cannot shut it down (Guest agent is not responding: QEMU guest agent is not connected): pressing the ACPI power button']);
  });

  it('presses the button after half the timeout when the agent does not answer, and forces it off after the rest', async () => {
    const { run, calls, notes } = setup((flags) => (flags === DomainShutdownFlags.guestAgent ? 'none' : ok));
    const t0 = Date.now();
    expect(await run()).toBe('forced');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(calls).toEqual(['agent', 'acpi', 'destroy']);
    expect(notes).toEqual(['still running 1 s after asking the guest agent: pressing the ACPI power button']);
  });
});
