#!/usr/bin/env node
// Machine lifecycle benchmarks with the `tiny` box on the test harness's libvirtd, each
// against a reference measured in the same run (guests live in netns vmenv-test; the CLI
// reaches them through VMENV_GUEST_NETNS, as in the end-to-end tests):
//   1. `vmenv up` of a new machine, the box already in the pool and the network there,
//      vs bench/up-reference.sh doing the same with virsh, genisoimage and OpenSSH
//      (polling leases and SSH every 100 ms); alternating, medians.   Target <= 1.10x.
//   2. `vmenv status` with 1 and with 10 machines in the project.   <= 150 ms, <= 300 ms.
//      Ten booted guests are too much for this host, so the 10-machine project is made
//      by hand: m0's state is a copy of the running machine's (its volumes and network
//      left out, so nothing of it can be removed through this project), m1…m9 are
//      defined, never started, domains (the running one's XML under new names, without
//      UUID, with new MACs) with state files naming them — what status reads is real.
//   3. `vmenv ssh -c true` vs OpenSSH `ssh -i key -o ProxyCommand=… true` through the
//      same netns proxy command to the same guest; alternating, medians.   <= 1.3x.
//      vmenv's runs share one connection (ControlMaster), as they do for a user; the
//      first run, which makes it, is measured apart and reported.
//   4. `vmenv destroy -f` of a running machine: <= 1 s (reference reported: virsh
//      destroy + undefine + two vol-delete of the reference machine).
//      `vmenv halt` vs the guest's own shutdown: from `poweroff` reaching the guest (over
//      OpenSSH) to the domain being shut off, polled every 50 ms; alternating, each
//      followed by `vmenv up` again.   Target <= the guest's time + 1 s.
// Never more than one guest of this benchmark runs at a time, except that a reference
// round may overlap a machine that is kept for the status/ssh/halt parts.
// Everything it makes (projects, domains, volumes, its network, the box volume when this
// run uploaded it) is removed at the end, also on failure or Ctrl-C.
// Writes bench/out/lifecycle.json. Exits 1 when a target is missed.
// Needs the harness (bash test/host/setup.sh; . /var/lib/vmenv-test-host/env) and a build.
//   BENCH_UP_ROUNDS (5) BENCH_STATUS_ROUNDS (10) BENCH_SSH_ROUNDS (10) BENCH_HALT_ROUNDS (3)
//   BENCH_BOX=path/to/tiny.box to use that box instead of the cached build of boxes/tiny.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DomainState } from '../dist/libvirt/index.js';
import { renderSeed } from '../dist/lifecycle/seed.js';
import { sharedSshSocket } from '../dist/access/shared-ssh.js';
import { bin, createBenchNetwork, finish, harness, median, ms, root, sec, tinyBox, trapInterrupts, withLibvirt as withLibvirtAt } from './lib.mjs';

const { uri, pool, netns } = harness();
const rounds = {
  up: Number(process.env.BENCH_UP_ROUNDS ?? 5),
  status: Number(process.env.BENCH_STATUS_ROUNDS ?? 10),
  ssh: Number(process.env.BENCH_SSH_ROUNDS ?? 10),
  halt: Number(process.env.BENCH_HALT_ROUNDS ?? 3),
};
const tag = `vmenv-lbench-${process.pid}`;
const work = mkdtempSync(join(tmpdir(), 'vmenv-lbench-'));
const cliEnv = { ...process.env, VMENV_HOME: join(work, 'home'), VMENV_GUEST_NETNS: netns, VMENV_LIBVIRT_URI: uri, NO_COLOR: '1' };
const networkName = tag;
const proxyCommand = `ip netns exec ${netns} nc %h %p`;

const randomMac = () => `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

const checkInterrupted = trapInterrupts();

/** Runs the CLI as a user does; its wall time (process start to exit) in ms. */
function vmenv(args, cwd) {
  checkInterrupted();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args, '--cwd', cwd], { env: cliEnv, encoding: 'utf8', timeout: 300_000, maxBuffer: 16 << 20 });
  const took = performance.now() - t0;
  if (r.status !== 0) throw new Error(`vmenv ${args.join(' ')} (in ${cwd}) exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return { ms: took, stdout: r.stdout };
}

function virsh(...args) {
  return execFileSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const virshQuiet = (...args) => spawnSync('virsh', ['-q', '-c', uri, ...args], { stdio: 'ignore' });

/** Runs a reference command; its wall time in ms. */
function timed(file, args, env = process.env) {
  checkInterrupted();
  const t0 = performance.now();
  const r = spawnSync(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 300_000 });
  const took = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return { ms: took, stdout: r.stdout };
}

/** A project folder with a vmenv.yaml for the tiny box: one machine, or machines m0…m(n-1). */
function makeProject(name, machines = 0) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const lines = [
    'box: tiny',
    'memory: 256',
    `pool: ${pool}`,
    `network: { mode: nat, name: ${networkName} }`,
    'boot: { timeout: 180 }',
    'shutdown: { timeout: 60 }',
    // The reference syncs nothing: neither does vmenv here.
    'synced_folders:',
    '  - { guest: /vagrant, disabled: true }',
  ];
  if (machines > 0) lines.push('machines:', ...Array.from({ length: machines }, (_, i) => `  m${i}: {}`));
  writeFileSync(join(dir, 'vmenv.yaml'), `${lines.join('\n')}\n`);
  return dir;
}

const stateFile = (project, machine) => join(project, '.vmenv', 'machines', machine, 'state.json');
const readState = (project, machine = 'default') => JSON.parse(readFileSync(stateFile(project, machine), 'utf8'));

/** The domain XML under a new name (volumes and console log follow the name), without UUID, with a new MAC. */
function renamedDomainXml(xml, from, to, mac) {
  if (!xml.includes(`<name>${from}</name>`)) throw new Error(`the domain XML does not name ${from}`);
  if ((xml.match(/<mac address=/g) ?? []).length !== 1) throw new Error('expected one interface in the domain XML');
  return xml
    .split(from)
    .join(to)
    .replace(/\s*<uuid>[^<]*<\/uuid>/, '')
    .replace(/<mac address='[^']*'\s*\/>/, `<mac address='${mac}'/>`);
}

/** The guest's OpenSSH options for a machine, from `vmenv ssh-config` (which also writes its known_hosts). */
function opensshArgs(project) {
  const cfg = vmenv(['ssh-config'], project).stdout;
  const get = (k) => {
    const m = new RegExp(`^\\s*${k} (.+)$`, 'm').exec(cfg);
    if (!m) throw new Error(`ssh-config has no ${k}:\n${cfg}`);
    return m[1].replace(/^"(.*)"$/, '$1');
  };
  return [
    '-F', '/dev/null', '-i', get('IdentityFile'), '-p', get('Port'), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${get('UserKnownHostsFile')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'LogLevel=ERROR',
    '-o', `ProxyCommand=${proxyCommand}`, `${get('User')}@${get('HostName')}`,
  ];
}

const withLibvirt = (fn) => withLibvirtAt(uri, fn);

/** The step lines of every `vmenv up` of a new machine. */
const steps = [];
/** What exists now and must go at the end. */
const live = { projects: new Set(), refs: new Set(), fakes: new Set(), network: undefined, boxVolume: undefined };
const samples = {
  version: [], up: [], upReference: [], destroy: [], destroyReference: [], virshDestroy: [],
  status1: [], status10: [], ssh: [], sshCold: [], openssh: [],
  halt: [], guestShutdown: [], guestShutdownWithConnect: [], restart: [],
};

/** A libvirt network of this benchmark on a free subnet: vmenv finds it there, as the reference does. */
async function createNetwork() {
  live.network = networkName;
  await createBenchNetwork(uri, netns, networkName);
}

/** `vmenv up` of a new machine in its own project; the project stays in `live` until destroyed. */
function upNew(name) {
  const project = makeProject(name);
  live.projects.add(project);
  const r = vmenv(['up'], project);
  // The steps with their times ("✔ Address … (from the lease API) [9s]"), kept in the JSON.
  steps.push(r.stdout.split('\n').filter((l) => l.startsWith('✔')));
  return { project, ms: r.ms };
}

function destroy(project) {
  const took = vmenv(['destroy', '-f'], project).ms;
  live.projects.delete(project);
  return took;
}

/** What the reference needs, taken from a machine vmenv made (warm-up): its domain XML, backing volume, capacity. */
function referencePlan(project) {
  const st = readState(project);
  const root = st.volumes.find((v) => v.role === 'root');
  const volXml = virsh('vol-dumpxml', '--pool', pool, root.name);
  const base = /<backingStore>\s*<path>([^<]+)<\/path>/.exec(volXml)?.[1];
  const capacity = /<capacity unit='bytes'>(\d+)<\/capacity>/.exec(volXml)?.[1];
  if (!base || !capacity) throw new Error(`cannot read the backing store and capacity of ${root.name}:\n${volXml}`);
  const keyDir = join(work, 'refkey');
  mkdirSync(keyDir);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', tag, '-f', join(keyDir, 'id_ed25519')]);
  return {
    domain: st.domain.name,
    xml: virsh('dumpxml', '--inactive', st.domain.name),
    user: st.ssh.username,
    base,
    capacity,
    key: join(keyDir, 'id_ed25519'),
    publicKey: readFileSync(join(keyDir, 'id_ed25519.pub'), 'utf8').trim(),
  };
}

/** One run of bench/up-reference.sh: a machine like vmenv's, under another name and MAC. */
function upReference(plan, i) {
  const name = `${tag}-ref${i}`;
  const mac = randomMac();
  const dir = join(work, `ref${i}`);
  const seedDir = join(dir, 'seed');
  mkdirSync(seedDir, { recursive: true });
  const seed = renderSeed({ instanceId: `${name}-${Date.now().toString(36)}`, hostname: 'default', sshAuthorizedKeys: [plan.publicKey] });
  for (const [file, body] of Object.entries(seed)) if (body !== undefined) writeFileSync(join(seedDir, file), body);
  const xml = join(dir, 'domain.xml');
  writeFileSync(xml, renamedDomainXml(plan.xml, plan.domain, name, mac));
  live.refs.add(name);
  const script = join(root, 'bench', 'up-reference.sh');
  return { name, ms: timed('bash', [script, uri, pool, name, plan.base, plan.capacity, seedDir, xml, networkName, mac, netns, plan.user, plan.key]).ms };
}

/**
 * Removes a reference machine the way a script would: virsh destroy, undefine, vol-delete ×2.
 * Returns the time it took, and that of `virsh destroy` alone (libvirt stopping QEMU).
 */
function removeReference(name) {
  const t0 = performance.now();
  virshQuiet('destroy', name);
  const destroyed = performance.now();
  virshQuiet('undefine', name);
  virshQuiet('vol-delete', '--pool', pool, `${name}.qcow2`);
  virshQuiet('vol-delete', '--pool', pool, `${name}-seed.iso`);
  live.refs.delete(name);
  return { all: performance.now() - t0, destroy: destroyed - t0 };
}

/** The 10-machine project: m0 = the running machine's state, m1…m9 defined (not started) domains. */
async function tenMachineProject(keeper) {
  const project = makeProject('many', 10);
  const st = readState(keeper);
  const xml = virsh('dumpxml', '--inactive', st.domain.name);
  const write = (machine, state) => {
    mkdirSync(dirname(stateFile(project, machine)), { recursive: true });
    writeFileSync(stateFile(project, machine), `${JSON.stringify({ ...state, machine }, null, 2)}\n`, { mode: 0o600 });
  };
  write('m0', { ...st, volumes: [], networks: [] });
  for (let k = 1; k < 10; k++) {
    const name = `${tag}-m${k}`;
    await withLibvirt((client) => client.domainDefineXml(renamedDomainXml(xml, st.domain.name, name, randomMac())));
    live.fakes.add(name);
    const { ip: _ip, ...rest } = st;
    write(`m${k}`, { ...rest, domain: { name, uuid: virsh('domuuid', name).trim() }, volumes: [], networks: [] });
  }
  return project;
}

async function removeFakes() {
  for (const name of live.fakes) {
    virshQuiet('undefine', name);
    live.fakes.delete(name);
  }
}

function waitShutoff(name, deadlineMs) {
  return withLibvirt(async (client) => {
    const dom = await client.domainLookupByName(name);
    for (;;) {
      if ((await client.domainGetState(dom)).state === DomainState.shutoff) return performance.now();
      if (performance.now() > deadlineMs) throw new Error(`${name} did not shut off`);
      checkInterrupted();
      await sleep(50);
    }
  });
}

/**
 * The guest's own shutdown: `poweroff` over OpenSSH (as vmenv halt sends it), timed from
 * the moment the guest's shell runs it (it echoes first) to the domain being shut off.
 * The ssh client is killed then: its connection dies with the guest without closing.
 */
async function guestShutdown(project, sshArgs) {
  const { domain } = readState(project);
  const t0 = performance.now();
  const child = spawn('ssh', [...sshArgs, 'echo go; sudo -n poweroff || poweroff'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let sent;
  child.stdout.on('data', (d) => {
    if (sent === undefined && String(d).includes('go')) sent = performance.now();
  });
  try {
    const off = await waitShutoff(domain.name, t0 + 120_000);
    if (sent === undefined) throw new Error('poweroff never reached the guest');
    return { fromPoweroff: off - sent, withConnect: off - t0 };
  } finally {
    child.kill();
  }
}

/** Removes what is left, whatever happened; reports (does not throw) what it could not remove. */
async function cleanUp() {
  const problems = [];
  const attempt = async (what, fn) => {
    try {
      await fn();
    } catch (err) {
      problems.push(`${what}: ${err.message.split('\n')[0]}`);
    }
  };
  for (const name of [...live.refs]) await attempt(`reference ${name}`, () => removeReference(name));
  await attempt('fake domains', removeFakes);
  for (const project of [...live.projects]) {
    await attempt(`project ${project}`, async () => {
      try {
        destroy(project);
      } catch (err) {
        // The CLI failed: remove its domain and volumes directly.
        const st = existsSync(stateFile(project, 'default')) ? readState(project) : undefined;
        if (st?.domain) {
          virshQuiet('destroy', st.domain.name);
          virshQuiet('undefine', st.domain.name, '--nvram');
        }
        for (const v of st?.volumes ?? []) virshQuiet('vol-delete', '--pool', v.pool, v.name);
        live.projects.delete(project);
        throw err;
      }
    });
  }
  if (live.network) {
    await attempt(`network ${networkName}`, () =>
      withLibvirt(async (client) => {
        const net = await client.networkLookupByName(networkName);
        await client.networkDestroy(net).catch(() => undefined);
        await client.networkUndefine(net);
      }),
    );
  }
  if (live.boxVolume) {
    // Only when this run uploaded it and no volume in the pool (another run's machine) is backed by it.
    await attempt(`box volume ${live.boxVolume.name}`, () =>
      withLibvirt(async (client) => {
        const p = await client.storagePoolLookupByName(pool);
        await client.storagePoolRefresh(p);
        for (const v of await client.storagePoolListAllVolumes(p)) {
          if (v.name !== live.boxVolume.name && (await client.storageVolGetXmlDesc(v)).includes(`<path>${live.boxVolume.path}</path>`)) return;
        }
        await client.storageVolDelete(await client.storageVolLookupByName(p, live.boxVolume.name));
      }),
    );
  }
  rmSync(work, { recursive: true, force: true });
  for (const p of problems) console.error(`lifecycle: could not clean up ${p}`);
}

const loadAtStart = loadavg()[0];
let results = [];
let failure;
try {
  // --- setup: the box in vmenv's store, the network ---------------------------------------
  const box = await tinyBox('lifecycle');
  const volumesBefore = await withLibvirt(async (client) => {
    const p = await client.storagePoolLookupByName(pool);
    await client.storagePoolRefresh(p);
    return new Set((await client.storagePoolListAllVolumes(p)).map((v) => v.name));
  });
  timed(process.execPath, [bin, 'box', 'add', box, '--name', 'tiny'], cliEnv);
  await createNetwork();

  // --- 1. up, and destroy -------------------------------------------------------------------
  // Warm-up: uploads the box into the pool (when this run is the first to use it) and
  // warms the page cache; its machine gives the reference its domain XML.
  const warm = upNew('warm');
  const plan = referencePlan(warm.project);
  const baseName = plan.base.split('/').pop();
  if (!volumesBefore.has(baseName)) live.boxVolume = { name: baseName, path: plan.base };
  destroy(warm.project);

  let keeper;
  for (let i = 0; i < rounds.up; i++) {
    for (const who of i % 2 === 0 ? ['reference', 'vmenv'] : ['vmenv', 'reference']) {
      if (who === 'reference') {
        const ref = upReference(plan, i);
        samples.upReference.push(ref.ms);
        const removed = removeReference(ref.name);
        samples.destroyReference.push(removed.all);
        samples.virshDestroy.push(removed.destroy);
      } else {
        const run = upNew(`up${i}`);
        samples.up.push(run.ms);
        // The machine booted last stays for the next parts; the others are destroyed now.
        const last = i === rounds.up - 1 && who === 'vmenv';
        if (last) keeper = run.project;
        else samples.destroy.push(destroy(run.project));
      }
    }
  }
  keeper ??= upNew('keeper').project;

  // --- 2. status ----------------------------------------------------------------------------
  // `vmenv --version` (node + oclif start-up) in the same rounds, as the floor of any command.
  const status1 = vmenv(['status'], keeper).stdout;
  if (!/^default\s+running\b/m.test(status1)) throw new Error(`unexpected status:\n${status1}`);
  const many = await tenMachineProject(keeper);
  const status10 = vmenv(['status'], many).stdout;
  if ((status10.match(/^m\d\s+shutoff\b/gm) ?? []).length !== 9 || !/^m0\s+running\b/m.test(status10)) {
    throw new Error(`unexpected status of the 10-machine project:\n${status10}`);
  }
  const statusRuns = {
    version: () => timed(process.execPath, [bin, '--version'], cliEnv).ms,
    status1: () => vmenv(['status'], keeper).ms,
    status10: () => vmenv(['status'], many).ms,
  };
  statusRuns.version(); // warm-up (the status runs above warmed theirs)
  const order = Object.keys(statusRuns);
  for (let i = 0; i < rounds.status; i++) {
    // Each round starts with the next one, so none is always first after a pause.
    for (let k = 0; k < order.length; k++) {
      const which = order[(i + k) % order.length];
      samples[which].push(statusRuns[which]());
    }
  }
  await removeFakes();

  // --- 3. ssh -------------------------------------------------------------------------------
  const sshArgs = opensshArgs(keeper);
  const openssh = () => timed('ssh', [...sshArgs, 'true']).ms;
  const ours = () => vmenv(['ssh', '-c', 'true'], keeper).ms;
  // The first `vmenv ssh` connects and leaves its connection for the next ones (ControlMaster):
  // `ssh` is the steady state, `sshCold` a run with no connection left (ended just before).
  const socket = sharedSshSocket(join(keeper, '.vmenv', 'machines', 'default'));
  const oursCold = () => {
    spawnSync('ssh', ['-o', `ControlPath=${socket}`, '-O', 'exit', 'x'], { stdio: 'ignore' });
    if (existsSync(socket)) throw new Error(`the shared connection's socket ${socket} is still there`);
    return ours();
  };
  for (let i = 0; i < 2; i++) {
    openssh(); // warm-up
    ours();
  }
  for (let i = 0; i < rounds.ssh; i++) {
    for (const who of i % 2 === 0 ? ['openssh', 'ssh'] : ['ssh', 'openssh']) samples[who].push(who === 'ssh' ? ours() : openssh());
  }
  for (let i = 0; i < Math.max(3, Math.floor(rounds.ssh / 2)); i++) samples.sshCold.push(oursCold());

  // --- 4. halt vs the guest's own shutdown; each followed by `vmenv up` again ---------------
  for (let i = 0; i < rounds.halt; i++) {
    for (const who of i % 2 === 0 ? ['vmenv', 'guest'] : ['guest', 'vmenv']) {
      if (who === 'vmenv') {
        const r = vmenv(['halt'], keeper);
        if (!/default: shut down/.test(r.stdout)) throw new Error(`halt did not shut down gracefully:\n${r.stdout}`);
        if (!virsh('domstate', readState(keeper).domain.name).includes('shut off')) throw new Error('halt returned before the domain was off');
        samples.halt.push(r.ms);
      } else {
        const g = await guestShutdown(keeper, sshArgs);
        samples.guestShutdown.push(g.fromPoweroff);
        samples.guestShutdownWithConnect.push(g.withConnect);
      }
      samples.restart.push(vmenv(['up'], keeper).ms);
    }
  }
  samples.destroy.push(destroy(keeper));

  // --- results ------------------------------------------------------------------------------
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.length ? median(v) : NaN]));
  const n = (k) => samples[k].length;
  results = [
    {
      name: `up of a new machine (median of ${n('up')})`,
      ours: sec(m.up),
      reference: `virsh + ssh script ${sec(m.upReference)}`,
      figure: `${(m.up / m.upReference).toFixed(2)}x`,
      target: '<= 1.10x',
      pass: m.up / m.upReference <= 1.1,
    },
    {
      name: `status, 1 machine (median of ${n('status1')})`,
      ours: ms(m.status1),
      reference: `vmenv --version ${ms(m.version)}`,
      figure: `+${ms(m.status1 - m.version)}`,
      target: '<= 150 ms',
      pass: m.status1 <= 150,
    },
    {
      name: `status, 10 machines (median of ${n('status10')})`,
      ours: ms(m.status10),
      reference: `vmenv --version ${ms(m.version)}`,
      figure: `+${ms(m.status10 - m.version)}`,
      target: '<= 300 ms',
      pass: m.status10 <= 300,
    },
    {
      name: `ssh -c true (median of ${n('ssh')})`,
      ours: ms(m.ssh),
      reference: `OpenSSH ssh ${ms(m.openssh)}`,
      figure: `${(m.ssh / m.openssh).toFixed(2)}x`,
      target: '<= 1.3x',
      pass: m.ssh / m.openssh <= 1.3,
    },
    {
      name: `ssh -c true with no shared connection yet (median of ${n('sshCold')}; reported, not judged)`,
      ours: ms(m.sshCold),
      reference: `OpenSSH ssh ${ms(m.openssh)}`,
      figure: `${(m.sshCold / m.openssh).toFixed(2)}x`,
      target: '(first run after up, halt or 10 idle minutes)',
      pass: true,
    },
    {
      name: `destroy -f, running machine (median of ${n('destroy')})`,
      ours: ms(m.destroy),
      reference: `virsh destroy+undefine+vol-delete ${ms(m.destroyReference)} (destroy alone ${ms(m.virshDestroy)})`,
      figure: `${(m.destroy / m.destroyReference).toFixed(2)}x`,
      target: '<= 1000 ms',
      pass: m.destroy <= 1000,
    },
    {
      name: `halt (median of ${n('halt')})`,
      ours: sec(m.halt),
      reference: `guest poweroff → shut off ${sec(m.guestShutdown)}`,
      figure: `+${sec(m.halt - m.guestShutdown)}`,
      target: '<= guest + 1 s',
      pass: m.halt <= m.guestShutdown + 1000,
    },
    {
      name: `up of a halted machine (median of ${n('restart')})`,
      ours: sec(m.restart),
      reference: '-',
      figure: '-',
      target: 'reported',
      pass: true,
    },
  ];
} catch (err) {
  failure = err;
} finally {
  await cleanUp();
}

if (failure) {
  console.error(`lifecycle: ${failure.stack ?? failure}`);
  process.exit(2);
}
finish('lifecycle', results, { rounds, samples, upSteps: steps }, loadAtStart);
