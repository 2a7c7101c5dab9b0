/** The steps that make a machine that does not exist yet, up to its domain running. */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { machineBox } from '../box/source.js';
import type { StoredBox } from '../box/stored-boxes.js';
import { recordUpload, toUploadBox, uploadLock } from '../box/upload-records.js';
import { ensureBoxVolumes } from '../box/upload.js';
import { DomainUndefineFlags } from '../libvirt/constants.js';
import { isNotFound } from '../libvirt/errors.js';
import { formatUuid, type DomainRef, type NetworkRef, type StoragePoolRef, type StorageVolRef } from '../libvirt/protocol/types.js';
import { poolXml, volumeXml } from '../libvirt/xml/index.js';
import { DEFAULT_NETWORK, ensureNatNetwork, removeNetworkIfUnused } from '../net/network.js';
import { choosePorts, freeLoopbackPort } from '../net/ports.js';
import { machineVolumeNames } from '../project/names.js';
import { ensureMachineKey } from '../ssh/index.js';
import { UserError } from '../errors.js';
import { chain, type Chain, type Step } from '../pipeline/run.js';
import { MACHINE_KEY_FILE } from '../access/login.js';
import { machineCloudInit, type MachineCloudInit } from './cloud-init.js';
import type { MachineNic, MachineNics } from '../project/state.js';
import { boxOverlayVolumes, machineMac, type BoxDiskVolume } from './domain-plan.js';
import { domainType, machineDomainXml } from './domain-xml.js';
import { deleteVolume, ensureExtraDisks } from './machine-disks.js';
import { renderSeed, writeSeedIso } from './seed.js';
import { say, save, type Defined, type UpBase } from './up-context.js';

const GiB = 1024 ** 3;

const readCloudInit: Step<UpBase, { cloudInit?: MachineCloudInit }> = {
  title: 'Read cloud_init',
  skip: (ctx) => ctx.machine.cloud_init.user_data === undefined && ctx.machine.cloud_init.network_config === undefined,
  async run(ctx, _signal, report) {
    const cloudInit = await machineCloudInit(ctx.machine, ctx.project.dir, machineMac(ctx.resourceName));
    for (const w of cloudInit.warnings) say(ctx, w);
    const name = cloudInit.userData?.['hostname'] ?? cloudInit.userData?.['fqdn'];
    if (typeof name === 'string' && name !== ctx.machine.hostname) report.title(`Read cloud_init (host name ${name}, from user_data)`);
    return { cloudInit };
  },
};

const findBox: Step<UpBase, { box: StoredBox }> = {
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
    const box = found.box;
    report.title(`Box ${box.name} ${box.version}${found.added ? ` (added to the box store from ${found.from})` : ''}`);
    await save(ctx, (r) => {
      r.box = { name: box.name, version: box.version };
    });
    return { box };
  },
};

const storagePool: Step<UpBase, { pool: StoragePoolRef }> = {
  title: 'Storage pool',
  async run(ctx, _signal, report) {
    const name = ctx.machine.pool;
    let pool: StoragePoolRef;
    try {
      pool = await ctx.client.storagePoolLookupByName(name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // No such pool: make one, as a user of Vagrant expects `default` to exist.
      const path = ctx.host.newPoolPath(name);
      pool = await ctx.client.storagePoolDefineXml(poolXml({ name, path }));
      await ctx.client.storagePoolBuild(pool);
      await ctx.client.storagePoolSetAutostart(pool, true);
      report.note(`created pool ${name} at ${path}`);
    }
    if (!(await ctx.client.storagePoolIsActive(pool))) {
      await ctx.client.storagePoolCreate(pool).catch(async (err: unknown) => {
        // Its folder was removed (`virsh pool-build` makes it again); anything else stands.
        if (!(err instanceof Error) || !/cannot open directory|No such file/i.test(err.message)) throw err;
        await ctx.client.storagePoolBuild(pool);
        await ctx.client.storagePoolCreate(pool);
        report.note(`made the folder of pool ${name} again`);
      });
    }
    return { pool };
  },
};

/** Adds every disk of the box in the pool, in the box's order: the first backs the root overlay. */
const uploadBox: Step<UpBase & { box: StoredBox }, { boxVolumes: StorageVolRef[] }> = {
  title: 'Upload the box into the pool',
  async run(ctx, signal, report) {
    const box = ctx.box;
    const several = box.disks.length > 1;
    const boxVolumes = await ensureBoxVolumes(ctx.client, ctx.machine.pool, toUploadBox(box), {
      signal,
      withLock: uploadLock({ signal }),
      onUploaded: (rec) => recordUpload(box, rec),
      onProgress: (d, sent, total) =>
        report.status(`${several ? `disk ${d + 1} of ${box.disks.length}: ` : ''}${Math.floor((sent / total) * 100)} % of ${(total / 2 ** 20).toFixed(0)} MiB`),
    });
    if (several) report.title(`Upload the box into the pool (${boxVolumes.length} disks)`);
    return { boxVolumes };
  },
};

/** A qcow2 overlay on every disk of the box (the first is the root disk), then the `disks:` of vmenv.yaml. */
const createDisks: Step<UpBase & { box: StoredBox; pool: StoragePoolRef; boxVolumes: StorageVolRef[] }> = {
  title: 'Create the machine disk',
  async run(ctx) {
    const disks: BoxDiskVolume[] = [];
    for (const [i, vol] of ctx.boxVolumes.entries()) {
      const { capacity } = await ctx.client.storageVolGetInfo(vol);
      disks.push({ path: await ctx.client.storageVolGetPath(vol), format: ctx.box.disks[i]?.format ?? 'qcow2', capacity });
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
      const vol = await ctx.client.storageVolCreateXml(ctx.pool, volumeXml(spec));
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
};

const writeSeed: Step<UpBase & { pool: StoragePoolRef; cloudInit?: MachineCloudInit }> = {
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
      const vol = await ctx.client.storageVolCreateXml(ctx.pool, volumeXml({ name, capacityBytes: (await stat(iso)).size, format: 'raw' }));
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
};

const managementNetwork: Step<UpBase, { nics: MachineNics; network?: NetworkRef }> = {
  title: 'Management network',
  async run(ctx, signal, report) {
    const mode = ctx.machine.network.mode ?? ctx.host.defaultNetworkMode;
    const mac = machineMac(ctx.resourceName);
    const ports = await choosePorts(ctx.machine.forwarded_ports, { onCorrected: (m) => say(ctx, m) });
    await save(ctx, (r) => {
      r.ports = ports;
    });
    if (mode === 'user') {
      const sshHostPort = await freeLoopbackPort();
      const nic: MachineNic = { mode: 'user', mac, sshHostPort, forwards: ports };
      await save(ctx, (r) => {
        r.nics = [nic];
      });
      report.title(`User-mode network, SSH on 127.0.0.1:${sshHostPort}${ports.length > 0 ? `, ${ports.length} port${ports.length === 1 ? '' : 's'} forwarded` : ''}`);
      return { nics: [nic] };
    }
    const name = ctx.machine.network.name ?? DEFAULT_NETWORK;
    const nic: MachineNic = { mode: 'nat', network: name, mac };
    await save(ctx, (r) => {
      r.nics = [nic];
    });
    const ensured = await ensureNatNetwork(ctx.client, name, { subnet: ctx.machine.network.subnet, guestNetns: ctx.host.guestNetns, signal });
    await save(ctx, (r) => r.networks.push({ name, created: ensured.owned }));
    report.title(`Network ${name}${ensured.createdWith ? ` (${ensured.createdWith}, created)` : ''}`);
    return { nics: [nic], network: ensured.network };
  },
  async rollback(ctx) {
    // Only when no other machine uses it: a parallel up may have joined it.
    for (const n of ctx.record.networks.filter((x) => x.created)) await removeNetworkIfUnused(ctx.client, n.name);
    await save(ctx, (r) => {
      r.networks = [];
    });
  },
};

const defineAndStart: Step<UpBase & { nics: MachineNics }, { domain: DomainRef }> = {
  title: 'Define and start the domain',
  async run(ctx, _signal, report) {
    const { note } = await domainType(ctx.machine);
    if (note) report.title(`Define and start the domain (${note})`);
    // A session daemon does not make its log folder before its first guest; QEMU then cannot open the console log.
    const log = ctx.host.serialLogPath(ctx.resourceName);
    if (log && ctx.host.session) await mkdir(dirname(log), { recursive: true });
    // Set at once: the rollback needs it if starting fails.
    const domain = (ctx.domain = await ctx.client.domainDefineXml(await machineDomainXml(ctx)));
    await save(ctx, (r) => {
      r.domain = { name: domain.name, uuid: formatUuid(domain.uuid) };
    });
    if (ctx.machine.autostart) await ctx.client.domainSetAutostart(domain, true);
    await ctx.client.domainCreate(domain);
    return { domain };
  },
  async rollback(ctx) {
    if (!ctx.domain) return;
    await ctx.client.domainDestroy(ctx.domain).catch(() => undefined);
    await ctx.client.domainUndefine(ctx.domain, DomainUndefineFlags.nvram | DomainUndefineFlags.snapshotsMetadata | DomainUndefineFlags.managedSave);
    await save(ctx, (r) => {
      delete r.domain;
    });
  },
};

/** From nothing to a running domain: the box in the pool, the disks, the seed, the network. */
export function createSteps(): Chain<UpBase, Defined> {
  return chain<UpBase>()
    .then(readCloudInit)
    .then(findBox)
    .then(storagePool)
    .then(uploadBox)
    .then(createDisks)
    .then(writeSeed)
    .then(managementNetwork)
    .then(defineAndStart);
}
