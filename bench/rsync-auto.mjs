#!/usr/bin/env node
// `vmenv rsync-auto` with the `tiny` box on the test harness's libvirtd (the guest in netns
// vmenv-test, reached through VMENV_GUEST_NETNS as in the end-to-end tests), on a project
// of 200 small files:
//   1. save → visible: from writeFile on the host to rsync-auto's line saying the sync that
//      carried it is done (rsync has exited: the file is in the guest), then checked in the
//      guest over one persistent SSH session, outside the timing. A pause between samples
//      lets each start from quiet. Median of BENCH_SAMPLES (15).   Target <= 500 ms.
//      Reference, same run: one rsync of the folder as `vmenv rsync` runs it, over a new
//      OpenSSH connection (what a sync costs without rsync-auto's connection master).
//   2. a burst of 1000 new files (a git checkout): how many syncs, and the time until the
//      last one is done.   Target <= 3 syncs.
// Everything it makes (project, machine, its network, the box volume) is removed at the
// end, also on failure or Ctrl-C. Writes bench/out/rsync-auto.json; exits 1 when a
// target is missed. Needs the harness (bash test/host/setup.sh; . /var/lib/vmenv-test-host/env)
// and a build. BENCH_BOX=path/to/tiny.box to use that box instead of the cached build.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { bin, finish, harness, median, ms, tinyBox, trapInterrupts } from './lib.mjs';

const { uri, pool, netns } = harness();
const samplesWanted = Number(process.env.BENCH_SAMPLES ?? 15);
const work = mkdtempSync(join(tmpdir(), 'vmenv-rabench-'));
const project = join(work, 'project');
const env = { ...process.env, VMENV_HOME: join(work, 'home'), VMENV_GUEST_NETNS: netns, VMENV_LIBVIRT_URI: uri, NO_COLOR: '1' };
const loadAtStart = loadavg()[0];

const checkInterrupted = trapInterrupts();

function vmenv(args) {
  checkInterrupted();
  const r = spawnSync(process.execPath, [bin, ...args, '--cwd', project], { env, encoding: 'utf8', timeout: 300_000, maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`vmenv ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** rsync-auto as a child, its sync lines read as they come. */
function startWatcher() {
  const child = spawn(process.execPath, [bin, 'rsync-auto', '--cwd', project], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const waiting = [];
  let stderr = '';
  let buffered = '';
  child.stdout.on('data', (d) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop();
    for (const line of parts) {
      lines.push({ at: performance.now(), line });
      for (const w of waiting.splice(0)) w();
    }
  });
  child.stderr.on('data', (d) => (stderr += d.toString()));
  const exited = new Promise((r) => child.once('close', (code) => r(code)));
  /** Waits until there are more than `n` lines; the line at index n. */
  const line = async (n, timeoutMs = 60_000) => {
    const deadline = performance.now() + timeoutMs;
    while (lines.length <= n) {
      checkInterrupted();
      if (child.exitCode !== null) throw new Error(`rsync-auto ended (${child.exitCode}):\n${stderr}`);
      if (performance.now() > deadline) throw new Error(`no sync line within ${timeoutMs} ms:\n${stderr}`);
      await Promise.race([new Promise((r) => waiting.push(r)), sleep(200)]);
    }
    return lines[n];
  };
  return { child, lines, line, exited, stderr: () => stderr };
}

/** One OpenSSH session to the guest kept open: commands in on stdin, each answer up to a marker. */
function guestShell() {
  const cfg = join(project, '.vmenv', 'machines', 'default', 'ssh_config');
  const child = spawn('ssh', ['-F', cfg, '-o', 'BatchMode=yes', 'default', 'sh'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d.toString()));
  return {
    async run(cmd, timeoutMs = 30_000) {
      out = '';
      child.stdin.write(`${cmd}; echo "__done__"\n`);
      const deadline = performance.now() + timeoutMs;
      while (!out.includes('__done__\n')) {
        if (child.exitCode !== null || performance.now() > deadline) throw new Error(`guest shell: no answer to ${cmd}`);
        await sleep(5);
      }
      return out.slice(0, out.indexOf('__done__\n'));
    },
    close: () => child.kill('SIGTERM'),
  };
}

let watcher;
let shell;
let boxAdded = false;
let upDone = false;
let failure;
const results = [];
const samples = { visible: [], rsyncOfLine: [], reference: [], burst: undefined };
try {
  mkdirSync(join(project, 'src'), { recursive: true });
  for (let i = 0; i < 200; i++) writeFileSync(join(project, 'src', `module${i}.js`), `export const value${i} = ${i};\n`.repeat(30));
  writeFileSync(
    join(project, 'vmenv.yaml'),
    ['box: tiny', 'memory: 256', `pool: ${pool}`, `network: { mode: nat, name: vmenv-rabench-${process.pid} }`, 'boot: { timeout: 180 }', 'shutdown: { timeout: 30 }', ''].join('\n'),
  );
  const box = await tinyBox('rsync-auto');
  checkInterrupted();
  boxAdded = true;
  const added = spawnSync(process.execPath, [bin, 'box', 'add', box, '--name', 'tiny'], { env, encoding: 'utf8', timeout: 300_000 });
  if (added.status !== 0) throw new Error(`vmenv box add exited ${added.status ?? added.signal}\n${added.stderr}`);
  upDone = true;
  vmenv(['up']);

  // The reference: a sync as `vmenv rsync` runs it, a new SSH connection each.
  const cfg = join(project, '.vmenv', 'machines', 'default', 'ssh_config');
  for (let i = 0; i < 5; i++) {
    writeFileSync(join(project, 'src', 'ref.txt'), `reference ${i}\n`);
    const t0 = performance.now();
    const r = spawnSync('rsync', ['-rlptz', '--delete', '--exclude=/.vmenv/', '-e', `ssh -F ${cfg}`, `${project}/`, 'default:/vagrant/'], { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`reference rsync exited ${r.status}`);
    samples.reference.push(performance.now() - t0);
  }

  watcher = startWatcher();
  await watcher.line(0, 120_000);
  shell = guestShell();
  for (let i = 0; i < samplesWanted; i++) {
    await sleep(1200);
    const n = watcher.lines.length;
    const body = `saved ${i} at ${Date.now()}\n`;
    const t0 = performance.now();
    writeFileSync(join(project, 'src', 'saved.js'), body);
    const { at, line } = await watcher.line(n);
    samples.visible.push(at - t0);
    const took = /, (\d+\.\d+) s\)$/.exec(line);
    if (took) samples.rsyncOfLine.push(Number(took[1]) * 1000);
    const seen = await shell.run('cat /vagrant/src/saved.js');
    if (seen !== body) throw new Error(`sample ${i}: the guest has ${JSON.stringify(seen)}, not ${JSON.stringify(body)}`);
  }

  await sleep(1500);
  const before = watcher.lines.length;
  const t0 = performance.now();
  mkdirSync(join(project, 'checkout'));
  for (let i = 0; i < 1000; i++) writeFileSync(join(project, 'checkout', `f${i}.txt`), `file ${i}\n`);
  const wrote = performance.now() - t0;
  // Done when the guest has all 1000 and no sync follows for 2 s.
  let count = '';
  for (let tries = 0; tries < 120 && count !== '1000'; tries++) {
    await sleep(500);
    count = (await shell.run('ls /vagrant/checkout 2>/dev/null | wc -l')).trim();
  }
  if (count !== '1000') throw new Error(`the guest has ${count} of the 1000 files`);
  await sleep(2000);
  const syncs = watcher.lines.slice(before);
  samples.burst = { files: 1000, writeMs: wrote, syncs: syncs.length, lastSyncMs: syncs.at(-1).at - t0, lines: syncs.map((s) => s.line) };

  const m = { visible: median(samples.visible), rsync: median(samples.rsyncOfLine), reference: median(samples.reference) };
  results.push(
    {
      name: `save → visible in the guest (median of ${samples.visible.length})`,
      ours: ms(m.visible),
      reference: `one rsync over a new SSH connection ${ms(m.reference)}`,
      figure: `rsync ${ms(m.rsync)} of it`,
      target: '<= 500 ms',
      pass: m.visible <= 500,
    },
    {
      name: 'a burst of 1000 new files',
      ours: `${samples.burst.syncs} sync${samples.burst.syncs === 1 ? '' : 's'}, last done at ${ms(samples.burst.lastSyncMs)}`,
      reference: `written in ${ms(wrote)}`,
      figure: '-',
      target: '<= 3 syncs',
      pass: samples.burst.syncs >= 1 && samples.burst.syncs <= 3,
    },
  );
} catch (err) {
  failure = err;
} finally {
  shell?.close();
  if (watcher && watcher.child.exitCode === null) {
    watcher.child.kill('SIGINT');
    const code = await watcher.exited;
    if (code !== 130 && !failure) failure = new Error(`rsync-auto ended with ${code} on SIGINT, not 130:\n${watcher.stderr()}`);
  }
  if (upDone) spawnSync(process.execPath, [bin, 'destroy', '-f', '--cwd', project], { env, stdio: 'ignore', timeout: 300_000 });
  if (boxAdded) spawnSync(process.execPath, [bin, 'box', 'remove', 'tiny', '--all'], { env, stdio: 'ignore', timeout: 300_000 });
  rmSync(work, { recursive: true, force: true });
}

if (failure) {
  console.error(`rsync-auto: ${failure.stack ?? failure}`);
  process.exit(2);
}
finish('rsync-auto', results, { samples }, loadAtStart);
