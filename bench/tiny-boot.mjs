#!/usr/bin/env node
// Time from libvirt's domainCreate returning to a successful SSH `true` for the tiny
// box, as `vmenv up` sees it: first boot of a fresh overlay (bigger than the box) with
// a NoCloud seed, a NAT network of the harness libvirtd (inside netns vmenv-test), the
// IP from the leases, SSH through `ip netns exec`. Target: <= 8 s under TCG.
//
//   node bench/tiny-boot.mjs [--runs N] [--box FILE.box] [--variant NAME=JSON]...
//
// --runs N        boots per variant (default 5); variants alternate A B A B …
// --box FILE      the box (default: the cached build of boxes/tiny for the current
//                 recipe, /var/cache/vmenv/boxes/tiny-<key>.box)
// --variant NAME=JSON   (repeatable; default one variant "as-is") a variant of the
//                 domain: {"box": "other.box", "spec": {…merged into the DomainSpec…},
//                 "xml": [["find", "replace"], …], "net": [["find", "replace"], …]}:
//                 edits of the domain and network XML, for trying what the XML
//                 builders cannot say yet (each variant has its own network);
//                 "sshIntervalMs": N, waitForSsh's interval
// --logs DIR      keep each boot's serial console there (NAME-RUN.log), with the time
//                 each line appeared
// --poweroff      then press the ACPI power button and time until the domain stops
//                 (up to 30 s)
// --exec CMD      run CMD in the guest once SSH works; its output goes to
//                 DIR/NAME-RUN.out (with --logs)
//
// Per boot it prints the wall time to SSH, to the lease, the guest's own "up in" figure
// (its uptime when rcS ends) and the CPU time QEMU used; then each variant's medians
// and the host's load average. Needs the harness (bash test/host/setup.sh; .
// /var/lib/vmenv-test-host/env) and a build (npx tsc -p tsconfig.build.json;
// VMENV_DIST=path/to/dist for another). Cleans up every domain, volume and network it
// makes, also when interrupted.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const dist = resolve(process.env.VMENV_DIST ?? join(root, 'dist'));
const load = (p) => import(pathToFileURL(join(dist, p)).href);
const { openLibvirt, DomainUndefineFlags, DomainShutdownFlags } = await load('libvirt/index.js');
const { domainXml, networkXml, volumeXml } = await load('libvirt/xml/index.js');
const { renderSeed, writeSeedIso } = await load('machine/seed.js');
const { machineMac, seedDrive } = await load('machine/domain-plan.js');
const { discoverIp } = await load('net/ip-discovery.js');
const { hostRoutesAndAddresses, networkAddresses, pickFreeSubnet } = await load('net/subnet.js');
const { generateMachineKey, memoryHostKeyStore, netnsProxyCommand, waitForSsh } = await load('ssh/index.js');
const { boxCacheKey, cachedBoxName, BOX_CACHE_DIR } = await load('build/cache.js');
const { resolveRecipeDir, commonDirFor } = await load('build/locate.js');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    box: { type: 'string' },
    variant: { type: 'string', multiple: true },
    logs: { type: 'string' },
    exec: { type: 'string' },
    poweroff: { type: 'boolean', default: false },
  },
});
const env = (k) => {
  const v = process.env[k];
  if (!v) {
    console.error(`${k} is not set: run \`bash test/host/setup.sh\` and source /var/lib/vmenv-test-host/env.`);
    process.exit(2);
  }
  return v;
};
const uri = env('VMENV_TEST_URI');
const poolName = env('VMENV_TEST_POOL');
const netns = env('VMENV_TEST_NETNS');
const state = env('VMENV_TEST_STATE');
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new Error(`--runs ${values.runs}: give 1-50`);

async function defaultBox() {
  const dir = await resolveRecipeDir(join(root, 'boxes', 'tiny'));
  const { key } = await boxCacheKey(dir, await commonDirFor(dir));
  const file = join(BOX_CACHE_DIR, cachedBoxName('tiny', key));
  if (!existsSync(file)) throw new Error(`${file} is not built: node bin/run.js box build boxes/tiny -o ${file}`);
  return file;
}
const variants = (values.variant ?? ['as-is={}']).map((v) => {
  const eq = v.indexOf('=');
  if (eq < 1) throw new Error(`--variant ${v}: give NAME=JSON`);
  const o = JSON.parse(v.slice(eq + 1));
  return { name: v.slice(0, eq), box: o.box, spec: o.spec ?? {}, xml: o.xml ?? [], net: o.net ?? [], sshIntervalMs: o.sshIntervalMs };
});
for (const v of variants) v.box = resolve(v.box ?? values.box ?? (await defaultBox()));

const suffix = randomBytes(3).toString('hex');
const tag = `vmenv-bench-tiny-${suffix}`;
const work = mkdtempSync(join(tmpdir(), 'vmenv-bench-tiny-'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms) => (ms / 1000).toFixed(2);

const client = await openLibvirt(uri);
const pool = await client.storagePoolLookupByName(poolName);
const made = { domains: [], volumes: [], networks: [] };
let stopping = false;

async function cleanup() {
  for (const d of made.domains.splice(0)) {
    await client.domainDestroy(d).catch(() => undefined);
    await client.domainUndefine(d, DomainUndefineFlags.nvram).catch(() => undefined);
  }
  for (const v of made.volumes.splice(0).reverse()) await client.storageVolDelete(v).catch(() => undefined);
  for (const n of made.networks.splice(0)) {
    await client.networkDestroy(n).catch(() => undefined);
    await client.networkUndefine(n).catch(() => undefined);
  }
  rmSync(work, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

/** The box's disk as a pool volume (one per distinct box file). */
const baseVolumes = new Map();
async function baseVolume(box) {
  let v = baseVolumes.get(box);
  if (v) return v;
  const dir = mkdtempSync(join(work, 'box-'));
  execFileSync('tar', ['-xf', box, '-C', dir, 'box.img']);
  const img = join(dir, 'box.img');
  v = await client.storageVolCreateXml(pool, volumeXml({ name: `${tag}-base${baseVolumes.size}.qcow2`, capacityBytes: statSync(img).size, format: 'qcow2' }));
  made.volumes.push(v);
  await client.storageVolUploadFile(v, img);
  rmSync(dir, { recursive: true, force: true });
  baseVolumes.set(box, v);
  return v;
}

/** CPU seconds QEMU has used, from its pid file in the harness's state directory. */
function qemuCpuSeconds(name) {
  try {
    const pid = readFileSync(join(state, 'run', 'qemu', `${name}.pid`), 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** When each console line appeared (ms after t0), polling the log file every 50 ms. */
function watchConsole(file, t0) {
  const lines = [];
  let seen = 0;
  let partial = '';
  const poll = () => {
    let text;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      return;
    }
    if (text.length <= seen) return;
    const t = performance.now() - t0;
    const parts = (partial + text.slice(seen)).split(/\r?\n/);
    seen = text.length;
    partial = parts.pop();
    for (const l of parts) if (l.trim() !== '') lines.push([t, l.replace(/\r/g, '')]);
  };
  const timer = setInterval(poll, 50);
  return {
    lines,
    stop() {
      clearInterval(timer);
      poll();
      if (partial.trim() !== '') lines.push([performance.now() - t0, partial]);
    },
  };
}

try {
  const key = generateMachineKey(`bench@${tag}`);
  const iso = join(work, 'seed.iso');
  await writeSeedIso(iso, renderSeed({ instanceId: `i-${suffix}`, hostname: 'tinybench', sshAuthorizedKeys: [key.publicKey] }));
  const seed = await client.storageVolCreateXml(pool, volumeXml({ name: `${tag}-seed.iso`, capacityBytes: statSync(iso).size, format: 'raw' }));
  made.volumes.push(seed);
  await client.storageVolUploadFile(seed, iso);

  for (const [i, v] of variants.entries()) {
    const used = (await hostRoutesAndAddresses({ netns })).used;
    const a = networkAddresses(pickFreeSubnet(used));
    let xml = networkXml({
      name: `${tag}-n${i}`,
      forward: { mode: 'nat' },
      ipv4: { address: a.gateway, prefix: a.prefix, dhcp: { range: { start: a.dhcpStart, end: a.dhcpEnd } } },
      // As vmenv's own networks (src/net/network.ts): dnsmasq offers addresses without pinging them first.
      dnsmasqOptions: ['no-ping'],
    });
    for (const [find, replace] of v.net) {
      if (!xml.includes(find)) throw new Error(`variant ${v.name}: '${find}' is not in the network XML`);
      xml = xml.replace(find, replace);
    }
    v.network = await client.networkDefineXml(xml);
    made.networks.push(v.network);
    await client.networkCreate(v.network);
    await baseVolume(v.box);
  }

  const results = new Map(variants.map((v) => [v.name, []]));
  for (let r = 0; r < runs; r++) {
    for (const v of variants) {
      if (stopping) break;
      const name = `${tag}-${r}${v.name.replace(/[^A-Za-z0-9]/g, '')}`.slice(0, 60);
      const mac = machineMac(name);
      const base = await baseVolume(v.box);
      const overlay = await client.storageVolCreateXml(
        pool,
        volumeXml({ name: `${name}.qcow2`, capacityBytes: 4 * 1024 ** 3, backingStore: { path: await client.storageVolGetPath(base), format: 'qcow2' } }),
      );
      made.volumes.push(overlay);
      const log = `/var/log/libvirt/qemu/${name}-serial.log`;
      let xml = domainXml({
        name,
        type: 'qemu',
        memoryMiB: 256,
        vcpus: 1,
        disks: [
          { source: { kind: 'volume', pool: poolName, volume: overlay.name }, target: 'vda', bootOrder: 1 },
          { source: { kind: 'volume', pool: poolName, volume: seed.name }, device: 'cdrom', ...seedDrive(v.spec.machine ?? 'pc') },
        ],
        interfaces: [{ type: 'network', network: v.network.name, mac }],
        serial: { logFile: log },
        ...v.spec,
      });
      for (const [find, replace] of v.xml) {
        if (!xml.includes(find)) throw new Error(`variant ${v.name}: '${find}' is not in the domain XML`);
        xml = xml.replace(find, replace);
      }
      const dom = await client.domainDefineXml(xml);
      made.domains.push(dom);
      const load1 = loadavg()[0];
      const hostLog = join(state, 'log', 'qemu', `${name}-serial.log`);
      await client.domainCreate(dom);
      const t0 = performance.now();
      const console_ = watchConsole(hostLog, t0);
      const { ip } = await discoverIp({ client, domain: dom, mac, network: v.network, timeoutMs: 120_000, what: name });
      const tLease = performance.now() - t0;
      const { session } = await waitForSsh({
        host: ip,
        username: 'vagrant',
        privateKey: key.privateKey,
        hostKey: memoryHostKeyStore(),
        proxyCommand: netnsProxyCommand(netns),
        timeoutMs: 120_000,
        ...(v.sshIntervalMs === undefined ? {} : { intervalMs: v.sshIntervalMs }),
        onAttempt: (a) => console_.lines.push([performance.now() - t0, `(SSH attempt ${a.attempt}: ${a.outcome})`]),
      });
      const tSsh = performance.now() - t0;
      console_.stop();
      const cpu = qemuCpuSeconds(name);
      if (values.exec && values.logs) {
        const out = await session.exec(values.exec);
        mkdirSync(values.logs, { recursive: true });
        writeFileSync(join(values.logs, `${v.name}-${r + 1}.out`), `${out.stdout ?? ''}${out.stderr ?? ''}`);
      }
      await session.close();
      let off = '';
      if (values.poweroff) {
        const p0 = performance.now();
        await client.domainShutdown(dom, DomainShutdownFlags.acpiPowerButton);
        while ((await client.domainIsActive(dom)) && performance.now() - p0 < 30_000) await new Promise((r) => setTimeout(r, 100));
        off = (await client.domainIsActive(dom)) ? ', power button: still running after 30 s' : `, off ${s(performance.now() - p0)} s after the power button`;
      }
      const upLine = console_.lines.find(([, l]) => /tiny: up in/.test(l));
      const gap = upLine === undefined ? NaN : tSsh - upLine[0];
      const up = /tiny: up in ([\d.]+) s/.exec(existsSync(hostLog) ? readFileSync(hostLog, 'utf8') : '')?.[1];
      results.get(v.name).push({ ssh: tSsh, lease: tLease, up: up === undefined ? NaN : Number(up) * 1000, gap, cpu: cpu * 1000, load1 });
      console.log(
        `${v.name.padEnd(12)} run ${r + 1}: ssh ${s(tSsh)} s, lease ${s(tLease)} s, guest up ${up ?? '?'} s, up->ssh ${s(gap)} s, qemu cpu ${cpu.toFixed(2)} s, load ${load1.toFixed(2)}${off}`,
      );
      await client.domainDestroy(dom).catch(() => undefined);
      await client.domainUndefine(dom, DomainUndefineFlags.nvram).catch(() => undefined);
      made.domains.splice(made.domains.indexOf(dom), 1);
      await client.storageVolDelete(overlay).catch(() => undefined);
      made.volumes.splice(made.volumes.indexOf(overlay), 1);
      if (values.logs) {
        mkdirSync(values.logs, { recursive: true });
        writeFileSync(join(values.logs, `${v.name}-${r + 1}.log`), console_.lines.map(([t, l]) => `${s(t)} ${l}\n`).join('') + `${s(tSsh)} (SSH true)\n`);
      }
      rmSync(hostLog, { force: true });
    }
  }
  console.log('\nmedians (s):');
  for (const [n, xs] of results) {
    if (xs.length === 0) continue;
    const m = (k) => s(median(xs.map((x) => x[k])));
    console.log(`${n.padEnd(12)} ssh ${m('ssh')}  lease ${m('lease')}  guest-up ${m('up')}  up->ssh ${m('gap')}  qemu-cpu ${m('cpu')}  load ${median(xs.map((x) => x.load1)).toFixed(2)}  (n=${xs.length})`);
  }
} finally {
  if (!stopping) await cleanup();
  await client.close();
}
