// What the benchmarks that run guests on the test harness share: where the CLI is, the
// harness's variables, medians and units, Ctrl-C handling, the tiny box, and the
// results table and file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BOX_CACHE_DIR, boxCacheKey, cachedBoxName } from '../dist/build/cache.js';
import { commonDirFor, resolveRecipeDir } from '../dist/build/locate.js';
import { openLibvirt } from '../dist/libvirt/index.js';
import { networkXml } from '../dist/libvirt/xml/index.js';
import { hostRoutesAndAddresses, networkAddresses, networkXmlSubnets, pickFreeSubnet } from '../dist/net/subnet.js';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const bin = join(root, 'bin', 'run.js');

/** The harness's libvirt URI, pool and guest namespace; exits 2 when they are not set. */
export function harness() {
  const uri = process.env.VMENV_TEST_URI;
  const pool = process.env.VMENV_TEST_POOL;
  const netns = process.env.VMENV_TEST_NETNS;
  if (!uri || !pool || !netns) {
    console.error('VMENV_TEST_URI, VMENV_TEST_POOL and VMENV_TEST_NETNS are not set: run `bash test/host/setup.sh` and source /var/lib/vmenv-test-host/env.');
    process.exit(2);
  }
  return { uri, pool, netns };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const ms = (x) => `${x.toFixed(0)} ms`;
export const sec = (x) => `${(x / 1000).toFixed(2)} s`;

/**
 * Ctrl-C reaches the CLI runs too (same process group); they fail, and the benchmark's
 * own cleanup runs instead of node dying on the signal. Returns the check to call before
 * each step: it throws once a signal came.
 */
export function trapInterrupts() {
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (interrupted = true));
  return () => {
    if (interrupted) throw new Error('interrupted');
  };
}

/** The tiny box: BENCH_BOX, else the cached build of boxes/tiny, built now when missing. */
export async function tinyBox(who) {
  if (process.env.BENCH_BOX) return process.env.BENCH_BOX;
  const dir = await resolveRecipeDir(join(root, 'boxes', 'tiny'));
  const { key } = await boxCacheKey(dir, await commonDirFor(dir));
  const out = join(BOX_CACHE_DIR, cachedBoxName('tiny', key));
  if (existsSync(out)) return out;
  console.error(`${who}: building the tiny box into ${out}`);
  mkdirSync(BOX_CACHE_DIR, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp.box`;
  execFileSync(process.execPath, [bin, 'box', 'build', dir, '-o', tmp], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 15 * 60_000 });
  renameSync(tmp, out);
  return out;
}

/**
 * Prints the results as a table (PASS/FAIL, benchmark, vmenv, reference, figure, target)
 * with the host's cores and load, writes bench/out/<name>.json (`data` added to it) and
 * exits: 0 when every target is met, else 1.
 */
export function finish(name, results, data, loadAtStart) {
  const cols = [
    ['', (r) => (r.pass ? 'PASS' : 'FAIL')],
    ['benchmark', (r) => r.name],
    ['vmenv', (r) => r.ours],
    ['reference', (r) => r.reference],
    ['figure', (r) => r.figure],
    ['target', (r) => r.target],
  ];
  const rows = [cols.map(([h]) => h), ...results.map((r) => cols.map(([, f]) => f(r)))];
  const widths = cols.map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  const host = { cpus: cpus().length, loadAtStart, loadAtEnd: loadavg()[0] };
  console.log(`(${host.cpus} cores; load average ${host.loadAtStart.toFixed(1)} at the start, ${host.loadAtEnd.toFixed(1)} at the end: other work on the host shows in every figure)`);
  const out = join(root, 'bench', 'out', `${name}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), host, results, ...data }, null, 2)}\n`);
  if (process.argv.includes('--json')) console.log(JSON.stringify({ results, ...data }, null, 2));
  process.exit(results.every((r) => r.pass) ? 0 : 1);
}

/**
 * A libvirt connection for one piece of work. None stays open across CLI runs: those
 * block the event loop, and libvirtd drops a client that misses its keepalives.
 */
export async function withLibvirt(uri, fn) {
  const client = await openLibvirt(uri);
  try {
    return await fn(client);
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** A NAT network of a benchmark's own on a free subnet (of the namespace's routes and libvirt's networks): vmenv finds it there, as the reference does. */
export function createBenchNetwork(uri, netns, name) {
  return withLibvirt(uri, async (client) => {
    const used = [...(await hostRoutesAndAddresses({ netns })).used];
    for (const n of await client.connectListAllNetworks()) used.push(...networkXmlSubnets(await client.networkGetXmlDesc(n)));
    const subnet = pickFreeSubnet(used);
    if (!subnet) throw new Error('no free subnet for the benchmark network');
    const a = networkAddresses(subnet);
    const net = await client.networkDefineXml(
      networkXml({ name, forward: { mode: 'nat' }, ipv4: { address: a.gateway, prefix: a.prefix, dhcp: { range: { start: a.dhcpStart, end: a.dhcpEnd } } } }),
    );
    await client.networkCreate(net);
  });
}
