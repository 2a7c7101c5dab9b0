import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { machineBox } from '../box/source.js';
import type { StoredBox } from '../box/stored-boxes.js';
import { recordUpload, toUploadBox, uploadLock } from '../box/upload-records.js';
import { ensureBoxVolumes } from '../box/upload.js';
import type { MachineConfig, ProjectConfig } from '../config/types.js';
import { detectVirtualization } from '../hosts/virtualization.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { DomainUndefineFlags } from '../libvirt/constants.js';
import { isLocalUri, isSessionUri } from '../libvirt/uri.js';
import { isNotFound } from '../libvirt/errors.js';
import { formatUuid, type DomainRef, type NetworkRef, type StoragePoolRef, type StorageVolRef } from '../libvirt/protocol/types.js';
import { domainXml, poolXml, volumeXml } from '../libvirt/xml/index.js';
import { discoverIp, IpDiscoveryTimeoutError } from '../net/ip-discovery.js';
import { registerMachine } from '../project/machine-index.js';
import { extraDiskVolumeNames, machineVolumeNames } from '../project/names.js';
import { newMachineState, type MachineState, type ProjectState } from '../project/state.js';
import { ensureMachineKey, fileHostKeyStore, netnsProxyCommand, waitForSsh, type SshSession } from '../ssh/index.js';
import { UserError } from '../errors.js';
import { boxOverlayVolumes, machineDomainSpec, machineMac, type BoxDiskVolume, type ManagementNic } from './domain-plan.js';
import type { Step } from './pipeline.js';
import { startNatForwarder, stopNatForwarder } from '../net/forwarding.js';
import { DEFAULT_NETWORK, ensureNatNetwork, removeNetworkIfUnused } from '../net/network.js';
import { newPoolPath } from '../hosts/pool-path.js';
import { choosePorts, freeLoopbackPort, isPortFree } from '../net/ports.js';
import { renderSeed, writeSeedIso } from './seed.js';
import { machineCloudInit, type MachineCloudInit } from './cloud-init.js';
import { runtimeDirPath } from '../util/runtime-dir.js';
import { loginKeys, MACHINE_KEY_FILE, settleLogin, type LoginKey } from '../access/login.js';

/** The libvirt network vmenv creates for NAT machines unless vmenv.yaml names another. */

/** What `up` of one machine works with, filled in step by step. */
export interface UpContext {
  project: ProjectConfig;
  machine: MachineConfig;
  state: ProjectState;
  client: LibvirtClient;
  /** Reach guests from inside this network namespace (`ip netns exec`), e.g. a sandboxed libvirtd's. */
  guestNetns: string | undefined;
  resourceName: string;
  record: MachineState;
  box?: StoredBox;
  pool?: StoragePoolRef;
  /** Every disk of the box in the pool, in the box's order (the first backs the root overlay). */
  boxVolumes?: StorageVolRef[];
  nic?: ManagementNic;
  network?: NetworkRef;
  domain?: DomainRef;
  ip?: string;
  sshPort?: number;
  session?: SshSession;
  /** The keys tried after the machine's own (ssh.private_key_path, or Vagrant's insecure pair), read before anything is made. */
  fallbackKeys: LoginKey[];
  /** The machine's own cloud_init, read before anything is made. */
  cloudInit?: MachineCloudInit;
}

const GiB = 1024 ** 3;

/** Where the guest's serial console is written on a local libvirt host, for error reports. */
export function serialLogPath(uri: string, name: string): string | undefined {
  if (!isLocalUri(uri)) return undefined; // a remote host's file is not ours to read
  if (isSessionUri(uri)) return join(process.env.HOME ?? '/root', '.cache', 'libvirt', 'qemu', 'log', `${name}-serial.log`);
  return `/var/log/libvirt/qemu/${name}-serial.log`;
}

/** The folder of libvirt's dnsmasq lease and status files, when libvirt runs on this host in system mode. */
export function localLeaseDir(uri: string): string | undefined {
  if (!isLocalUri(uri) || isSessionUri(uri)) return undefined; // session mode has no NAT networks of its own
  return '/var/lib/libvirt/dnsmasq';
}

/**
 * Where a session daemon's guest agent socket goes. libvirt's own choice, under
 * ~/.config/libvirt/qemu/channel/…, passes the 108 bytes a unix socket path may have
 * for a home or user name of ordinary length: vmenv puts it in a per-user folder in /tmp.
 */
export function sessionAgentSocket(uri: string, resourceName: string): string | undefined {
  if (!isSessionUri(uri) || !isLocalUri(uri)) return undefined;
  const id = createHash('sha256').update(resourceName).digest('hex').slice(0, 16);
  return join(runtimeDirPath(), `${id}.agent`);
}

/** The last lines of the guest's serial console, when vmenv can read its log. */
export async function consoleTail(uri: string, name: string, lines = 25): Promise<string[]> {
  const path = serialLogPath(uri, name);
  if (!path) return ['(the console log is on the remote libvirt host)'];
  try {
    return (await readFile(path, 'utf8')).replace(/\r/g, '').trimEnd().split('\n').slice(-lines);
  } catch {
    return [`(no console log at ${path})`];
  }
}

/** A note for the user, outside the step list: "default: host port 8080 is in use: …". */
function say(ctx: Pick<UpContext, 'machine'>, message: string): void {
  process.stderr.write(`${ctx.machine.name}: ${message}\n`);
}

async function save(ctx: UpContext, change: (r: MachineState) => void): Promise<void> {
  change(ctx.record);
  await ctx.state.write(ctx.record);
}

async function deleteVolume(client: LibvirtClient, pool: string, name: string): Promise<void> {
  try {
    const p = await client.storagePoolLookupByName(pool);
    await client.storageVolDelete(await client.storageVolLookupByName(p, name));
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** Creates the volumes of the `disks:` that have none yet (all on a first up; new ones on reload). */
export async function ensureExtraDisks(ctx: Pick<UpContext, 'client' | 'machine' | 'resourceName' | 'record' | 'state'>): Promise<number> {
  const names = extraDiskVolumeNames(ctx.resourceName, ctx.machine.disks, ctx.record.volumes.map((v) => v.name));
  let made = 0;
  for (const [i, d] of ctx.machine.disks.entries()) {
    const name = names[i]!;
    if (ctx.record.volumes.some((v) => v.name === name)) continue;
    const pool = await ctx.client.storagePoolLookupByName(ctx.machine.pool);
    await ctx.client.storageVolCreateXml(pool, volumeXml({ name, capacityBytes: d.size, format: d.format }));
    ctx.record.volumes.push({ pool: ctx.machine.pool, name, role: 'disk' });
    await ctx.state.write(ctx.record);
    made++;
  }
  return made;
}

/** The steps that create and start a machine that does not exist yet. */
export function createMachineSteps(): Step<UpContext>[] {
  return [
    {
      title: 'Read cloud_init',
      skip: (ctx) => ctx.machine.cloud_init.user_data === undefined && ctx.machine.cloud_init.network_config === undefined,
      async run(ctx, _signal, report) {
        ctx.cloudInit = await machineCloudInit(ctx.machine, ctx.project.dir, machineMac(ctx.resourceName));
        for (const w of ctx.cloudInit.warnings) say(ctx, w);
        const name = ctx.cloudInit.userData?.['hostname'] ?? ctx.cloudInit.userData?.['fqdn'];
        if (typeof name === 'string' && name !== ctx.machine.hostname) report.title(`Read cloud_init (host name ${name}, from user_data)`);
      },
    },
    {
      title: 'Find the box',
      async run(ctx, signal, report) {
        // A name from the store, or a .box file or URL added to it on first use.
        const found = await machineBox(ctx.machine.box, {
          projectDir: ctx.project.dir,
          signal,
          onEvent: (e) => {
            if (e.type === 'download') report.status(`downloading ${(e.received / 2 ** 20).toFixed(0)}${e.total === undefined ? '' : ` of ${(e.total / 2 ** 20).toFixed(0)}`} MiB`);
            else if (e.type === 'unpack') report.status(`unpacking ${(e.bytes / 2 ** 20).toFixed(0)} MiB`);
            else if (e.type === 'wait') report.status(`waiting for ${e.what}`);
          },
        });
        ctx.box = found.box;
        report.title(`Box ${ctx.box.name} ${ctx.box.version}${found.added ? ` (added to the box store from ${found.from})` : ''}`);
        await save(ctx, (r) => {
          r.box = { name: ctx.box!.name, version: ctx.box!.version };
        });
      },
    },
    {
      title: 'Storage pool',
      async run(ctx, _signal, report) {
        const name = ctx.machine.pool;
        try {
          ctx.pool = await ctx.client.storagePoolLookupByName(name);
        } catch (err) {
          if (!isNotFound(err)) throw err;
          // No such pool: make one, as a user of Vagrant expects `default` to exist.
          const path = newPoolPath(ctx.client.uri, name);
          ctx.pool = await ctx.client.storagePoolDefineXml(poolXml({ name, path }));
          await ctx.client.storagePoolBuild(ctx.pool);
          await ctx.client.storagePoolSetAutostart(ctx.pool, true);
          report.note(`created pool ${name} at ${path}`);
        }
        if (!(await ctx.client.storagePoolIsActive(ctx.pool))) {
          await ctx.client.storagePoolCreate(ctx.pool).catch(async (err: unknown) => {
            // Its folder was removed (`virsh pool-build` makes it again); anything else stands.
            if (!(err instanceof Error) || !/cannot open directory|No such file/i.test(err.message)) throw err;
            await ctx.client.storagePoolBuild(ctx.pool!);
            await ctx.client.storagePoolCreate(ctx.pool!);
            report.note(`made the folder of pool ${name} again`);
          });
        }
      },
    },
    {
      title: 'Upload the box into the pool',
      async run(ctx, signal, report) {
        const box = ctx.box!;
        const several = box.disks.length > 1;
        const volumes = await ensureBoxVolumes(ctx.client, ctx.machine.pool, toUploadBox(box), {
          signal,
          withLock: uploadLock({ signal }),
          onUploaded: (rec) => recordUpload(box, rec),
          onProgress: (d, sent, total) =>
            report.status(`${several ? `disk ${d + 1} of ${box.disks.length}: ` : ''}${Math.floor((sent / total) * 100)} % of ${(total / 2 ** 20).toFixed(0)} MiB`),
        });
        ctx.boxVolumes = volumes;
        if (several) report.title(`Upload the box into the pool (${volumes.length} disks)`);
      },
    },
    {
      title: 'Create the machine disk',
      async run(ctx) {
        const volumes = ctx.boxVolumes!;
        const disks: BoxDiskVolume[] = [];
        for (const [i, vol] of volumes.entries()) {
          const { capacity } = await ctx.client.storageVolGetInfo(vol);
          disks.push({ path: await ctx.client.storageVolGetPath(vol), format: ctx.box!.disks[i]?.format ?? 'qcow2', capacity });
        }
        const boxSize = disks[0]!.capacity;
        const wanted = ctx.machine.disk_size === undefined ? boxSize : BigInt(ctx.machine.disk_size);
        if (wanted < boxSize) {
          throw new UserError(`disk_size ${Number(wanted) / GiB} GiB is smaller than the box's disk (${Number(boxSize) / GiB} GiB)`, {
            hint: 'A machine disk cannot be smaller than its box: raise disk_size or remove it.',
          });
        }
        // A qcow2 overlay on each box disk, whatever its format (a raw one is read as raw).
        for (const { spec, role } of boxOverlayVolumes(ctx.resourceName, disks, wanted)) {
          const vol = await ctx.client.storageVolCreateXml(ctx.pool!, volumeXml(spec));
          await save(ctx, (r) => r.volumes.push({ pool: ctx.machine.pool, name: vol.name, role }));
        }
        await ensureExtraDisks(ctx);
      },
      async rollback(ctx) {
        for (const v of ctx.record.volumes.filter((x) => x.role !== 'seed')) await deleteVolume(ctx.client, v.pool, v.name);
        await save(ctx, (r) => {
          r.volumes = r.volumes.filter((x) => x.role === 'seed');
        });
      },
    },
    {
      title: 'Write the cloud-init seed',
      async run(ctx) {
        const key = await ensureMachineKey(join(ctx.state.machineDir(ctx.machine.name), MACHINE_KEY_FILE), `vmenv ${ctx.resourceName}`);
        const dir = await mkdtemp(join(tmpdir(), 'vmenv-seed-'));
        try {
          const iso = join(dir, 'seed.iso');
          await writeSeedIso(
            iso,
            renderSeed({
              instanceId: `${ctx.resourceName}-${Date.now().toString(36)}`,
              hostname: ctx.machine.hostname,
              sshAuthorizedKeys: [key.publicKey],
              loginUser: ctx.machine.ssh.username,
              ...(ctx.cloudInit?.userData ? { userData: ctx.cloudInit.userData } : {}),
              ...(ctx.cloudInit?.networkConfig ? { networkConfig: ctx.cloudInit.networkConfig } : {}),
            }),
          );
          const name = machineVolumeNames(ctx.resourceName).seed;
          const vol = await ctx.client.storageVolCreateXml(ctx.pool!, volumeXml({ name, capacityBytes: (await stat(iso)).size, format: 'raw' }));
          await save(ctx, (r) => r.volumes.push({ pool: ctx.machine.pool, name, role: 'seed' }));
          await ctx.client.storageVolUploadFile(vol, iso);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
      async rollback(ctx) {
        for (const v of ctx.record.volumes.filter((x) => x.role === 'seed')) await deleteVolume(ctx.client, v.pool, v.name);
        await save(ctx, (r) => {
          r.volumes = r.volumes.filter((x) => x.role !== 'seed');
        });
      },
    },
    {
      title: 'Management network',
      async run(ctx, signal, report) {
        const mode = ctx.machine.network.mode ?? (isSessionUri(ctx.client.uri) ? 'user' : 'nat');
        const mac = machineMac(ctx.resourceName);
        const ports = await choosePorts(ctx.machine.forwarded_ports, { onCorrected: (m) => say(ctx, m) });
        await save(ctx, (r) => {
          r.ports = ports;
        });
        if (mode === 'user') {
          ctx.sshPort = await freeLoopbackPort();
          ctx.nic = { mode: 'user', mac, sshHostPort: ctx.sshPort, forwards: ports };
          await save(ctx, (r) => {
            r.nic = { mode: 'user', mac, sshHostPort: ctx.sshPort!, forwards: ports };
          });
          report.title(`User-mode network, SSH on 127.0.0.1:${ctx.sshPort}${ports.length > 0 ? `, ${ports.length} port${ports.length === 1 ? '' : 's'} forwarded` : ''}`);
          return;
        }
        const name = ctx.machine.network.name ?? DEFAULT_NETWORK;
        ctx.nic = { mode: 'nat', network: name, mac };
        await save(ctx, (r) => {
          r.nic = { mode: 'nat', network: name, mac };
        });
        const ensured = await ensureNatNetwork(ctx.client, name, { subnet: ctx.machine.network.subnet, guestNetns: ctx.guestNetns, signal });
        ctx.network = ensured.network;
        await save(ctx, (r) => r.networks.push({ name, created: ensured.owned }));
        report.title(`Network ${name}${ensured.createdWith ? ` (${ensured.createdWith}, created)` : ''}`);
      },
      async rollback(ctx) {
        // Only when no other machine uses it: a parallel up may have joined it.
        for (const n of ctx.record.networks.filter((x) => x.created)) await removeNetworkIfUnused(ctx.client, n.name);
        await save(ctx, (r) => {
          r.networks = [];
        });
      },
    },
    {
      title: 'Define and start the domain',
      async run(ctx, _signal, report) {
        const { note } = await domainType(ctx.machine);
        if (note) report.title(`Define and start the domain (${note})`);
        // A session daemon does not make its log folder before its first guest; QEMU then cannot open the console log.
        const log = serialLogPath(ctx.client.uri, ctx.resourceName);
        if (log && isSessionUri(ctx.client.uri)) await mkdir(dirname(log), { recursive: true });
        ctx.domain = await ctx.client.domainDefineXml(await machineDomainXml(ctx));
        await save(ctx, (r) => {
          r.domain = { name: ctx.domain!.name, uuid: formatUuid(ctx.domain!.uuid) };
        });
        if (ctx.machine.autostart) await ctx.client.domainSetAutostart(ctx.domain, true);
        await ctx.client.domainCreate(ctx.domain);
      },
      async rollback(ctx) {
        if (!ctx.domain) return;
        await ctx.client.domainDestroy(ctx.domain).catch(() => undefined);
        await ctx.client.domainUndefine(ctx.domain, DomainUndefineFlags.nvram | DomainUndefineFlags.snapshotsMetadata | DomainUndefineFlags.managedSave);
        await save(ctx, (r) => {
          delete r.domain;
        });
      },
    },
    ...reachSteps(),
  ];
}

let hostVirtualization: ReturnType<typeof detectVirtualization> | undefined;

/** kvm where the host can run it, else qemu with the reason why; `driver:` in vmenv.yaml wins. */
export async function domainType(machine: MachineConfig): Promise<{ type: 'kvm' | 'qemu'; note?: string }> {
  if (machine.driver !== 'auto') return { type: machine.driver };
  // Asked once per process: the define step wants the note, and the domain XML the type.
  hostVirtualization ??= detectVirtualization();
  const virt = await hostVirtualization;
  return virt.domainType === 'kvm' ? { type: 'kvm' } : { type: 'qemu', note: `software emulation, slower: ${virt.reason ?? 'no usable KVM'}` };
}

/**
 * The machine's domain XML from its current config and recorded resources; with `uuid`,
 * the definition that replaces an existing domain's (reload).
 */
export async function machineDomainXml(
  ctx: Pick<UpContext, 'client' | 'project' | 'machine' | 'resourceName' | 'nic' | 'record'>,
  uuid?: string,
): Promise<string> {
  const { type } = await domainType(ctx.machine);
  const names = machineVolumeNames(ctx.resourceName);
  const log = serialLogPath(ctx.client.uri, ctx.resourceName);
  const spec = machineDomainSpec({
    name: ctx.resourceName,
    type,
    projectDir: ctx.project.dir,
    // Never a URL's credentials or query: the name the box is stored under.
    ...(ctx.record.box ? { boxName: ctx.record.box.name } : {}),
    machine: ctx.machine,
    volumes: {
      pool: ctx.machine.pool,
      root: names.root,
      seed: names.seed,
      extra: extraDiskVolumeNames(ctx.resourceName, ctx.machine.disks, ctx.record.volumes.map((v) => v.name)),
      // The overlays on the box's other disks, as recorded (in the box's order).
      boxDisks: ctx.record.volumes.filter((v) => v.role === 'box-disk').map((v) => v.name),
    },
    nic: ctx.nic!,
    ...(log ? { serialLog: log } : {}),
  });
  const agent = sessionAgentSocket(ctx.client.uri, ctx.resourceName);
  if (agent) await mkdir(dirname(agent), { recursive: true, mode: 0o700 });
  return domainXml({ ...spec, ...(uuid === undefined ? {} : { uuid }), ...(agent ? { guestAgentSocket: agent } : {}) });
}

function leaseFiles(ctx: UpContext): { leaseFiles?: string } {
  const path = ctx.machine.network.lease_file ?? localLeaseDir(ctx.client.uri);
  return path === undefined ? {} : { leaseFiles: path };
}

/**
 * Before a shut-off machine starts again: its forwarded host ports (SSH, then
 * forwarded_ports) may have been taken meanwhile. Re-chooses those that are, records
 * them and redefines the domain with them. Returns whether anything changed.
 */
export async function refreshForwardedPorts(ctx: UpContext): Promise<boolean> {
  const nic = ctx.record.nic;
  if (nic?.mode !== 'user' || !ctx.domain) {
    // A guest that shut down on its own left its forwarder running, on these very ports.
    await stopNatForwarder(ctx.state, ctx.record);
    const ports = await choosePorts(ctx.machine.forwarded_ports, { previous: ctx.record.ports ?? [], onCorrected: (m) => say(ctx, m) });
    if (JSON.stringify(ports) !== JSON.stringify(ctx.record.ports ?? [])) await save(ctx, (r) => (r.ports = ports));
    return false;
  }
  let sshHostPort = nic.sshHostPort;
  if (!(await isPortFree('127.0.0.1', sshHostPort, 'tcp'))) {
    sshHostPort = await freeLoopbackPort();
    say(ctx, `SSH's host port ${nic.sshHostPort} is in use: SSH is on 127.0.0.1:${sshHostPort} now`);
  }
  const ports = await choosePorts(ctx.machine.forwarded_ports, { previous: nic.forwards ?? [], onCorrected: (m) => say(ctx, m) });
  if (sshHostPort === nic.sshHostPort && JSON.stringify(ports) === JSON.stringify(nic.forwards ?? [])) return false;
  ctx.nic = { mode: 'user', mac: nic.mac, sshHostPort, forwards: ports };
  ctx.sshPort = sshHostPort;
  await save(ctx, (r) => {
    r.nic = { mode: 'user', mac: nic.mac, sshHostPort, forwards: ports };
    r.ports = ports;
  });
  await ctx.client.domainDefineXml(await machineDomainXml(ctx, ctx.record.domain!.uuid));
  return true;
}

/** The NIC recorded for a machine (state from before NICs were recorded: NAT on its configured network). */
export function recordedNic(record: MachineState, machine: MachineConfig, resourceName: string): ManagementNic {
  return record.nic ?? { mode: 'nat', network: machine.network.name ?? DEFAULT_NETWORK, mac: machineMac(resourceName) };
}

/** Finding the IP and waiting for SSH: shared by a new machine and one started again. */
export function reachSteps(): Step<UpContext>[] {
  return [
    {
      title: 'Wait for an IP address',
      async run(ctx, signal, report) {
        if (ctx.nic?.mode === 'user') {
          ctx.ip = '127.0.0.1';
          await save(ctx, (r) => {
            r.ip = '127.0.0.1';
          });
          report.title(`Address 127.0.0.1:${ctx.sshPort} (forwarded)`);
          return;
        }
        const found = await discoverIp({
          client: ctx.client,
          domain: ctx.domain!,
          mac: ctx.nic!.mac,
          ...(ctx.network ? { network: ctx.network } : {}),
          ...leaseFiles(ctx),
          timeoutMs: ctx.machine.boot.timeout * 1000,
          signal,
          what: `an IP address for machine '${ctx.machine.name}'`,
          onAttempt: (a) => report.status(`round ${a.round}`),
        }).catch(async (err: unknown) => {
          // Say what the guest was doing: the last lines of its serial console.
          if (!(err instanceof IpDiscoveryTimeoutError)) throw err;
          throw err.withConsoleTail(await consoleTail(ctx.client.uri, ctx.resourceName));
        });
        ctx.ip = found.ip;
        await save(ctx, (r) => {
          r.ip = found.ip;
        });
        report.title(`Address ${found.ip} (from the ${found.label})`);
      },
    },
    {
      title: 'Wait for SSH',
      async run(ctx, signal, report) {
        const dir = ctx.state.machineDir(ctx.machine.name);
        const keyPath = join(dir, MACHINE_KEY_FILE);
        const machineKey = { ...(await ensureMachineKey(keyPath)), path: keyPath };
        const keys = await loginKeys(machineKey, ctx.record, ctx.fallbackKeys);
        const connect = (offer: LoginKey[], timeoutMs: number): ReturnType<typeof waitForSsh> =>
          waitForSsh({
            host: ctx.ip!,
            port: ctx.nic?.mode === 'user' ? ctx.sshPort! : ctx.machine.ssh.port,
            username: ctx.machine.ssh.username,
            privateKey: offer[0]!.privateKey,
            privateKeyLabel: offer[0]!.label,
            fallbackKeys: offer.slice(1),
            hostKey: fileHostKeyStore(join(dir, 'host-key.json')),
            ...(ctx.guestNetns ? { proxyCommand: netnsProxyCommand(ctx.guestNetns) } : {}),
            timeoutMs,
            signal,
            label: `machine '${ctx.machine.name}'`,
            onAttempt: (a) => report.status(`attempt ${a.attempt}: ${a.outcome}`),
          });
        const { session, elapsedMs } = await connect(keys, ctx.machine.boot.timeout * 1000);
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
      },
    },
    {
      title: 'Forward ports',
      skip: (ctx) => ctx.record.nic?.mode !== 'nat' || (ctx.record.ports ?? []).length === 0,
      async run(ctx, signal, report) {
        const n = await startNatForwarder(ctx.state, ctx.record, ctx.ip!, { guestNetns: ctx.guestNetns, signal });
        report.title(`Forwarded ${n} port${n === 1 ? '' : 's'} (${(ctx.record.ports ?? []).map((p) => `${p.host}→${p.guest}`).join(', ')})`);
      },
      async rollback(ctx) {
        await stopNatForwarder(ctx.state, ctx.record);
      },
    },
    {
      title: 'Record the machine',
      async run(ctx) {
        await registerMachine({
          id: ctx.record.domain!.uuid,
          project: ctx.project.dir,
          machine: ctx.machine.name,
          box: ctx.record.box ?? { name: ctx.machine.box.name, version: '' },
          uri: ctx.client.uri,
          domain: ctx.record.domain!.name,
          state: 'running',
        });
      },
    },
  ];
}

/** The machine's record for a first `up`, or its existing one. */
export async function machineRecord(state: ProjectState, machine: MachineConfig, uri: string): Promise<{ record: MachineState; isNew: boolean }> {
  const existing = await state.read(machine.name);
  if (existing) return { record: existing, isNew: false };
  return {
    record: newMachineState({
      machine: machine.name,
      uri,
      pool: machine.pool,
      ssh: { username: machine.ssh.username, privateKeyPath: join(state.machineDir(machine.name), MACHINE_KEY_FILE) },
    }),
    isNew: true,
  };
}


