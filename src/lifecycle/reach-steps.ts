/** Finding a running machine's address, logging in, forwarding its ports: after a create and after a start. */
import { join } from 'node:path';
import { discoverIp, IpDiscoveryTimeoutError } from '../net/ip-discovery.js';
import { startNatForwarder, stopNatForwarder } from '../net/forwarding.js';
import { formatUuid } from '../libvirt/protocol/types.js';
import { registerMachine } from '../project/machine-index.js';
import { ensureMachineKey, fileHostKeyStore, waitForSsh, type SshSession } from '../ssh/index.js';
import { chain, type Chain, type Step } from '../pipeline/run.js';
import { loginKeys, MACHINE_KEY_FILE, settleLogin, type LoginKey } from '../access/login.js';
import { sshPort } from '../access/machine-ssh-config.js';
import { save, type Defined, type Reached } from './up-context.js';

const waitForIp: Step<Defined, { ip: string }> = {
  title: 'Wait for an IP address',
  async run(ctx, signal, report) {
    const nic = ctx.nics[0];
    if (nic.mode === 'user') {
      await save(ctx, (r) => {
        r.ip = '127.0.0.1';
      });
      report.title(`Address 127.0.0.1:${nic.sshHostPort} (forwarded)`);
      return { ip: '127.0.0.1' };
    }
    const leaseFiles = ctx.machine.network.lease_file ?? ctx.host.leaseDir;
    const found = await discoverIp({
      client: ctx.client,
      domain: ctx.domain,
      mac: nic.mac,
      ...(ctx.network ? { network: ctx.network } : {}),
      ...(leaseFiles === undefined ? {} : { leaseFiles }),
      timeoutMs: ctx.machine.boot.timeout * 1000,
      signal,
      what: `an IP address for machine '${ctx.machine.name}'`,
      onAttempt: (a) => report.status(`round ${a.round}`),
    }).catch(async (err: unknown) => {
      // Say what the guest was doing: the last lines of its serial console.
      if (!(err instanceof IpDiscoveryTimeoutError)) throw err;
      throw err.withConsoleTail(await ctx.host.consoleTail(ctx.resourceName));
    });
    await save(ctx, (r) => {
      r.ip = found.ip;
    });
    report.title(`Address ${found.ip} (from the ${found.label})`);
    return { ip: found.ip };
  },
};

const waitForSshStep: Step<Defined & { ip: string }, { session: SshSession }> = {
  title: 'Wait for SSH',
  async run(ctx, signal, report) {
    const dir = ctx.state.machineDir(ctx.machine.name);
    const keyPath = join(dir, MACHINE_KEY_FILE);
    const machineKey = { ...(await ensureMachineKey(keyPath)), path: keyPath };
    const keys = await loginKeys(machineKey, ctx.record, ctx.fallbackKeys);
    const proxyCommand = ctx.host.sshProxyCommand;
    const connect = (offer: LoginKey[], timeoutMs: number): ReturnType<typeof waitForSsh> =>
      waitForSsh({
        host: ctx.ip,
        port: sshPort(ctx.nics[0], ctx.machine),
        username: ctx.machine.ssh.username,
        privateKey: offer[0]!.privateKey,
        privateKeyLabel: offer[0]!.label,
        fallbackKeys: offer.slice(1),
        hostKey: fileHostKeyStore(join(dir, 'host-key.json')),
        ...(proxyCommand ? { proxyCommand } : {}),
        timeoutMs,
        signal,
        label: `machine '${ctx.machine.name}'`,
        onAttempt: (a) => report.status(`attempt ${a.attempt}: ${a.outcome}`),
      });
    const { session, elapsedMs } = await connect(keys, ctx.machine.boot.timeout * 1000);
    // Set at once: closed by the caller even if settling the login fails.
    ctx.session = session;
    const settled = await settleLogin(session, keys, {
      insertKey: ctx.machine.ssh.insert_key,
      machineDir: dir,
      reconnect: async (own) => (await connect([own], 60_000)).session,
      onStatus: (s) => report.note(s),
      signal,
    });
    ctx.session = settled.session;
    const { note, privateKeyPath, keyInserted } = settled;
    if (privateKeyPath !== ctx.record.ssh.privateKeyPath || keyInserted) {
      await save(ctx, (r) => {
        r.ssh.privateKeyPath = privateKeyPath;
        if (keyInserted) r.ssh.keyInserted = keyInserted;
      });
    }
    report.title(`SSH ready (${(elapsedMs / 1000).toFixed(1)} s${note})`);
    return { session: settled.session };
  },
};

const forwardPorts: Step<Defined & { ip: string }> = {
  title: 'Forward ports',
  skip: (ctx) => ctx.nics[0].mode !== 'nat' || (ctx.record.ports ?? []).length === 0,
  async run(ctx, signal, report) {
    const n = await startNatForwarder(ctx.state, ctx.record, ctx.ip, { guestNetns: ctx.host.guestNetns, signal });
    report.title(`Forwarded ${n} port${n === 1 ? '' : 's'} (${(ctx.record.ports ?? []).map((p) => `${p.host}→${p.guest}`).join(', ')})`);
  },
  async rollback(ctx) {
    await stopNatForwarder(ctx.state, ctx.record);
  },
};

const recordMachine: Step<Defined> = {
  title: 'Record the machine',
  async run(ctx) {
    await registerMachine({
      id: formatUuid(ctx.domain.uuid),
      project: ctx.project.dir,
      machine: ctx.machine.name,
      box: ctx.record.box ?? { name: ctx.machine.box.name, version: '' },
      uri: ctx.client.uri,
      domain: ctx.domain.name,
      state: 'running',
    });
  },
};

/** From a running domain to a machine that is up: its address, SSH, forwarded ports, the index entry. */
export function reachSteps(): Chain<Defined, Reached> {
  return chain<Defined>().then(waitForIp).then(waitForSshStep).then(forwardPorts).then(recordMachine);
}
