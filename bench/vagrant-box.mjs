#!/usr/bin/env node
// `vmenv up` of a box made the Vagrant way (test/fixtures/boxes/vagrant-debian: Debian 12,
// Vagrant's insecure keys, no cloud-init) against a reference measured in the same run:
// bench/up-reference.sh with the same overlay, seed and domain XML through virsh, polling
// the leases and then SSH with Vagrant's insecure key every 100 ms — what a user scripts
// to reach such a box. vmenv's `up` also replaces the insecure key with the machine's own
// (a second connection and two commands), which the reference does not do.
// Alternating, medians of BENCH_UP_ROUNDS (3) each.   Target <= 1.10x.
// One guest at a time, in the test harness's namespace (guests reached only there).
// Everything it makes is removed at the end, also on failure or Ctrl-C.
// Writes bench/out/vagrant-box.json; exits 1 when the target is missed.
// Needs the harness (bash test/host/setup.sh; . /var/lib/vmenv-test-host/env) and a build.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BOX_CACHE_DIR, boxCacheKey, cachedBoxName } from '../dist/build/cache.js';
import { commonDirFor } from '../dist/build/locate.js';
import { hashRecipe } from '../dist/build/recipe-hash.js';
import { renderSeed } from '../dist/lifecycle/seed.js';
import { bin, createBenchNetwork, finish, harness, median, root, sec, trapInterrupts, withLibvirt as withLibvirtAt } from './lib.mjs';

const { uri, pool, netns } = harness();
const rounds = Number(process.env.BENCH_UP_ROUNDS ?? 3);
const tag = `vmenv-vbench-${process.pid}`;
const work = mkdtempSync(join(tmpdir(), 'vmenv-vbench-'));
const cliEnv = { ...process.env, VMENV_HOME: join(work, 'home'), VMENV_GUEST_NETNS: netns, VMENV_LIBVIRT_URI: uri, NO_COLOR: '1' };
const insecureKey = join(work, 'vagrant-insecure-ed25519');
const checkInterrupted = trapInterrupts();
const live = { projects: new Set(), refs: new Set(), network: false, boxVolume: undefined };

function run(file, args, env = process.env) {
  checkInterrupted();
  const t0 = performance.now();
  const r = spawnSync(file, args, { env, encoding: 'utf8', timeout: 600_000, maxBuffer: 16 << 20 });
  const took = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return { ms: took, stdout: r.stdout };
}
const vmenv = (args, cwd) => run(process.execPath, [bin, ...args, '--cwd', cwd], cliEnv);
const virsh = (...args) => execFileSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const virshQuiet = (...args) => spawnSync('virsh', ['-q', '-c', uri, ...args], { stdio: 'ignore' });

const withLibvirt = (fn) => withLibvirtAt(uri, fn);

/** The cached build of the fixture recipe, keyed as test/support/boxes.ts keys it (its hook runs debian-12's). */
async function vagrantBox() {
  const dir = join(root, 'test', 'fixtures', 'boxes', 'vagrant-debian');
  const common = await commonDirFor(dir);
  const { key } = await boxCacheKey(dir, common);
  const full = createHash('sha256').update(key).update(`\0${await hashRecipe(join(root, 'boxes', 'debian-12'), common)}`).digest('hex');
  const out = join(BOX_CACHE_DIR, cachedBoxName('vagrant-debian', full));
  if (existsSync(out)) return out;
  console.error(`vagrant-box: building test/fixtures/boxes/vagrant-debian into ${out}`);
  mkdirSync(BOX_CACHE_DIR, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp.box`;
  execFileSync(process.execPath, [bin, 'box', 'build', dir, '-o', tmp], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 20 * 60_000 });
  renameSync(tmp, out);
  return out;
}

function makeProject(name) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'vmenv.yaml'),
    ['box: vagrant-debian', 'memory: 512', `pool: ${pool}`, `network: { mode: nat, name: ${tag} }`, 'boot: { timeout: 300 }', 'synced_folders: [{ guest: /vagrant, disabled: true }]', ''].join('\n'),
  );
  live.projects.add(dir);
  return dir;
}
const readState = (project) => JSON.parse(readFileSync(join(project, '.vmenv', 'machines', 'default', 'state.json'), 'utf8'));

function destroy(project) {
  vmenv(['destroy', '-f'], project);
  live.projects.delete(project);
}

async function createNetwork() {
  live.network = true;
  await createBenchNetwork(uri, netns, tag);
}

/** The reference machine: vmenv's domain XML under another name and MAC, up through bench/up-reference.sh. */
function upReference(plan, i) {
  const name = `${tag}-ref${i}`;
  const mac = `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  const dir = join(work, `ref${i}`);
  mkdirSync(join(dir, 'seed'), { recursive: true });
  for (const [file, body] of Object.entries(renderSeed({ instanceId: `${name}-${Date.now()}`, hostname: 'default', sshAuthorizedKeys: [] }))) {
    if (body !== undefined) writeFileSync(join(dir, 'seed', file), body);
  }
  const xml = plan.xml.split(plan.domain).join(name).replace(/\s*<uuid>[^<]*<\/uuid>/, '').replace(/<mac address='[^']*'\s*\/>/, `<mac address='${mac}'/>`);
  writeFileSync(join(dir, 'domain.xml'), xml);
  live.refs.add(name);
  return run('bash', [join(root, 'bench', 'up-reference.sh'), uri, pool, name, plan.base, plan.capacity, join(dir, 'seed'), join(dir, 'domain.xml'), tag, mac, netns, 'vagrant', insecureKey]).ms;
}

function removeReference(name) {
  virshQuiet('destroy', name);
  virshQuiet('undefine', name);
  virshQuiet('vol-delete', '--pool', pool, `${name}.qcow2`);
  virshQuiet('vol-delete', '--pool', pool, `${name}-seed.iso`);
  live.refs.delete(name);
}

async function cleanUp() {
  for (const name of [...live.refs]) removeReference(name);
  for (const project of [...live.projects]) {
    try {
      destroy(project);
    } catch (err) {
      console.error(`vagrant-box: could not destroy ${project}: ${err.message.split('\n')[0]}`);
    }
  }
  if (live.network) {
    virshQuiet('net-destroy', tag);
    virshQuiet('net-undefine', tag);
  }
  if (live.boxVolume) virshQuiet('vol-delete', '--pool', pool, live.boxVolume);
  rmSync(work, { recursive: true, force: true });
}

const loadAtStart = loadavg()[0];
const samples = { up: [], reference: [], steps: [] };
let results = [];
let failure;
try {
  writeFileSync(insecureKey, readFileSync(join(root, 'boxes', 'common', 'vagrant-keys', 'vagrant.key.ed25519')), { mode: 0o600 });
  const box = await vagrantBox();
  const before = await withLibvirt(async (c) => {
    const p = await c.storagePoolLookupByName(pool);
    await c.storagePoolRefresh(p);
    return new Set((await c.storagePoolListAllVolumes(p)).map((v) => v.name));
  });
  run(process.execPath, [bin, 'box', 'add', box, '--name', 'vagrant-debian'], cliEnv);
  await createNetwork();

  // Warm-up: uploads the box into the pool and gives the reference its domain XML and backing volume.
  const warm = makeProject('warm');
  vmenv(['up'], warm);
  const st = readState(warm);
  const volXml = virsh('vol-dumpxml', '--pool', pool, st.volumes.find((v) => v.role === 'root').name);
  const plan = {
    domain: st.domain.name,
    xml: virsh('dumpxml', '--inactive', st.domain.name),
    base: /<backingStore>\s*<path>([^<]+)<\/path>/.exec(volXml)[1],
    capacity: /<capacity unit='bytes'>(\d+)<\/capacity>/.exec(volXml)[1],
  };
  const baseName = plan.base.split('/').pop();
  if (!before.has(baseName)) live.boxVolume = baseName;
  destroy(warm);

  for (let i = 0; i < rounds; i++) {
    for (const who of i % 2 === 0 ? ['reference', 'vmenv'] : ['vmenv', 'reference']) {
      if (who === 'reference') {
        samples.reference.push(upReference(plan, i));
        removeReference(`${tag}-ref${i}`);
      } else {
        const project = makeProject(`up${i}`);
        const r = vmenv(['up'], project);
        samples.up.push(r.ms);
        samples.steps.push(r.stdout.split('\n').filter((l) => l.startsWith('✔')));
        if (!readState(project).ssh.keyInserted) throw new Error(`up ${i} did not replace the insecure key:\n${r.stdout}`);
        destroy(project);
      }
    }
  }
  const ratio = median(samples.up) / median(samples.reference);
  results = [
    {
      name: '`vmenv up`, Vagrant-style box (insecure key replaced)',
      ours: sec(median(samples.up)),
      reference: sec(median(samples.reference)),
      figure: `${ratio.toFixed(2)}x`,
      target: '<= 1.10x',
      pass: ratio <= 1.1,
    },
  ];
} catch (err) {
  failure = err;
} finally {
  await cleanUp();
}
if (failure) {
  console.error(`vagrant-box: ${failure.stack ?? failure}`);
  process.exit(2);
}
finish('vagrant-box', results, { samples }, loadAtStart);
