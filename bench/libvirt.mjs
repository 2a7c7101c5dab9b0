#!/usr/bin/env node
// Benchmarks of the libvirt client against references measured in the same run:
//   1. upload of a 1 GiB qcow2 file into a pool: our client vs `virsh vol-upload`
//   2. 1000 sequential domain lookups on one connection: ours vs virsh running the
//      same lookups in one session
// Needs the test harness (bash test/host/setup.sh) and a build (npm run build).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openLibvirt } from '../dist/libvirt/index.js';
import { domainXml, volumeXml } from '../dist/libvirt/xml/index.js';

const uri = process.env.VMENV_TEST_URI;
const poolName = process.env.VMENV_TEST_POOL;
if (!uri || !poolName) {
  console.error('VMENV_TEST_URI and VMENV_TEST_POOL are not set: run `bash test/host/setup.sh` and source its env file.');
  process.exit(2);
}
const sizeMiB = Number(process.env.BENCH_UPLOAD_MIB ?? 1024);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const chunkSize = process.env.BENCH_CHUNK ? Number(process.env.BENCH_CHUNK) : undefined;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => `${(ms / 1000).toFixed(3)} s`;
const results = [];

const client = await openLibvirt(uri);
const pool = await client.storagePoolLookupByName(poolName);
const dir = mkdtempSync(join(tmpdir(), 'vmenv-bench-'));
try {
  // --- 1. upload ---------------------------------------------------------------
  const raw = join(dir, 'data.raw');
  const image = join(dir, 'data.qcow2');
  // Random data, so the qcow2 file itself is as large as its virtual size.
  execFileSync('sh', ['-c', `head -c ${sizeMiB * 1048576} /dev/urandom > '${raw}'`]);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
  rmSync(raw);
  const bytes = statSync(image).size;
  execFileSync('sh', ['-c', `cat '${image}' > /dev/null`]); // same warm page cache for both
  const virshTimes = [];
  const ourTimes = [];
  for (let i = 0; i < rounds; i++) {
    for (const who of i % 2 === 0 ? ['virsh', 'vmenv'] : ['vmenv', 'virsh']) {
      const name = `bench-upload-${who}-${i}.qcow2`;
      const vol = await client.storageVolCreateXml(pool, volumeXml({ name, capacityBytes: sizeMiB * 1048576, format: 'qcow2' }));
      execFileSync('sync'); // the previous round's dirty pages must not slow this one
      const t0 = performance.now();
      if (who === 'virsh') {
        const r = spawnSync('virsh', ['-q', '-c', uri, 'vol-upload', '--pool', poolName, name, image], { stdio: 'inherit' });
        if (r.status !== 0) throw new Error('virsh vol-upload failed');
        virshTimes.push(performance.now() - t0);
      } else {
        await client.storageVolUploadFile(vol, image, chunkSize ? { chunkSize } : {});
        ourTimes.push(performance.now() - t0);
      }
      await client.storageVolDelete(vol);
    }
  }
  const ours = median(ourTimes);
  const theirs = median(virshTimes);
  const ratio = ours / theirs;
  results.push({
    name: `upload ${(bytes / 1048576).toFixed(0)} MiB qcow2 (median of ${rounds})`,
    ours: fmt(ours),
    reference: `virsh vol-upload ${fmt(theirs)}`,
    figure: `${ratio.toFixed(3)}x virsh (${((bytes / 1048576) / (ours / 1000)).toFixed(0)} MiB/s)`,
    target: '<= 1.10x',
    pass: ratio <= 1.1,
  });

  // --- 2. lookups --------------------------------------------------------------
  const domName = `bench-lookup-${process.pid}`;
  const dom = await client.domainDefineXml(domainXml({ name: domName, type: 'qemu', memoryMiB: 64, vcpus: 1 }));
  try {
    const n = 1000;
    for (let i = 0; i < 100; i++) await client.domainLookupByName(domName); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await client.domainLookupByName(domName);
    const ourMs = performance.now() - t0;
    // virsh: the same lookups in one connection; its start-up is measured and removed.
    const script = Array.from({ length: n }, () => `domid ${domName}`).join(' ; ');
    const v0 = performance.now();
    spawnSync('virsh', ['-q', '-c', uri, 'domid', domName], { stdio: 'ignore' });
    const startup = performance.now() - v0;
    const v1 = performance.now();
    const r = spawnSync('virsh', ['-q', '-c', uri, script], { stdio: 'ignore' });
    if (r.status !== 0) throw new Error('virsh lookups failed');
    const virshMs = Math.max(1, performance.now() - v1 - startup);
    const ourRate = (n / ourMs) * 1000;
    const virshRate = (n / virshMs) * 1000;
    results.push({
      name: `${n} sequential domain lookups, one connection`,
      ours: `${ourRate.toFixed(0)} calls/s`,
      reference: `virsh ${virshRate.toFixed(0)} calls/s`,
      figure: `${(ourRate / virshRate).toFixed(2)}x virsh's rate`,
      target: '>= 2000 calls/s',
      pass: ourRate >= 2000,
    });
  } finally {
    await client.domainUndefine(dom);
  }
} finally {
  await client.close();
  rmSync(dir, { recursive: true, force: true });
}

for (const r of results) {
  console.log(`${r.pass ? 'PASS' : 'FAIL'}  ${r.name}: ${r.ours}; reference ${r.reference}; ${r.figure}; target ${r.target}`);
}
if (process.argv.includes('--json')) console.log(JSON.stringify(results, null, 2));
