#!/usr/bin/env node
// Guest SSH round trip: vmenv's connectSsh + exec('true') + close against OpenSSH's
// `ssh -i key -p port root@127.0.0.1 true`, both on the test harness's sshd
// (127.0.0.1:22022), alternating, median of BENCH_ROUNDS (default 20). Target <= 1.3x.
//   2. the same from a fresh `node` process (start-up and module loading included), for
//      what a one-shot CLI pays — reported, not judged here (the CLI start-up has its own
//      benchmark in bench/startup.sh).
// Needs the harness (bash test/host/setup.sh; . /var/lib/vmenv-test-host/env) and a build
// (npm run build; VMENV_DIST=path/to/dist to use another build).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(process.env.VMENV_DIST ?? join(here, '..', 'dist'));
const { connectSsh } = await import(pathToFileURL(join(dist, 'ssh', 'client.js')).href);
const { memoryHostKeyStore, pinnedKeyFromBlob } = await import(pathToFileURL(join(dist, 'ssh', 'host-key.js')).href);

const port = Number(process.env.VMENV_TEST_SSH_PORT);
const user = process.env.VMENV_TEST_SSH_USER;
const keyPath = process.env.VMENV_TEST_SSH_KEY;
const state = process.env.VMENV_TEST_STATE;

// One-shot mode for the fresh-process measurement: connect, run, close, exit.
if (process.argv[2] === '--once') {
  const [, , , keyLine] = process.argv;
  const [, b64] = keyLine.split(' ');
  const s = await connectSsh({
    host: '127.0.0.1',
    port,
    username: user,
    privateKey: readFileSync(keyPath),
    hostKey: memoryHostKeyStore(pinnedKeyFromBlob(Buffer.from(b64, 'base64'))),
  });
  const r = await s.exec('true');
  await s.close();
  process.exit(r.code ?? 255);
}

if (!port || !user || !keyPath || !state) {
  console.error('VMENV_TEST_SSH_* are not set: run `bash test/host/setup.sh` and source /var/lib/vmenv-test-host/env.');
  process.exit(2);
}
const rounds = Number(process.env.BENCH_ROUNDS ?? 20);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => `${ms.toFixed(1)} ms`;
const knownHosts = join(state, 'ssh', 'known_hosts');
// The harness's pinned line: `[127.0.0.1]:22022 ssh-ed25519 AAAA…`.
const keyLine = readFileSync(knownHosts, 'utf8').trim().split('\n')[0].split(' ').slice(1).join(' ');
const pin = pinnedKeyFromBlob(Buffer.from(keyLine.split(' ')[1], 'base64'));
const privateKey = readFileSync(keyPath);

const openssh = () => {
  const t0 = performance.now();
  const r = spawnSync(
    'ssh',
    [
      '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'LogLevel=ERROR', '-i', keyPath, '-p', String(port), `${user}@127.0.0.1`, 'true',
    ],
    { stdio: 'ignore' },
  );
  if (r.status !== 0) throw new Error(`ssh exited ${r.status}`);
  return performance.now() - t0;
};
const ours = async () => {
  const t0 = performance.now();
  const s = await connectSsh({ host: '127.0.0.1', port, username: user, privateKey, hostKey: memoryHostKeyStore(pin) });
  const r = await s.exec('true');
  await s.close();
  if (r.code !== 0) throw new Error(`true exited ${r.code}`);
  return performance.now() - t0;
};
const oursFresh = () => {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--once', keyLine], { stdio: 'inherit', env: process.env });
  if (r.status !== 0) throw new Error(`fresh process exited ${r.status}`);
  return performance.now() - t0;
};
const nodeStart = () => {
  const t0 = performance.now();
  spawnSync(process.execPath, ['-e', '0']);
  return performance.now() - t0;
};

// Warm-up: page cache, sshd's first-connection costs, JIT.
for (let i = 0; i < 3; i++) {
  openssh();
  await ours();
}
const t = { openssh: [], ours: [], fresh: [], node: [] };
for (let i = 0; i < rounds; i++) {
  if (i % 2 === 0) {
    t.openssh.push(openssh());
    t.ours.push(await ours());
  } else {
    t.ours.push(await ours());
    t.openssh.push(openssh());
  }
}
for (let i = 0; i < Math.max(5, Math.floor(rounds / 2)); i++) {
  t.fresh.push(oursFresh());
  t.node.push(nodeStart());
}
const ref = median(t.openssh);
const ourMs = median(t.ours);
const ratio = ourMs / ref;
const results = [
  {
    name: `ssh exec true round trip (median of ${rounds})`,
    ours: fmt(ourMs),
    reference: `OpenSSH ssh ${fmt(ref)}`,
    figure: `${ratio.toFixed(2)}x OpenSSH`,
    target: '<= 1.3x',
    pass: ratio <= 1.3,
  },
  {
    name: `the same from a fresh node process (median of ${t.fresh.length})`,
    ours: fmt(median(t.fresh)),
    reference: `OpenSSH ssh ${fmt(ref)}; bare node -e 0 ${fmt(median(t.node))}`,
    figure: `${(median(t.fresh) / ref).toFixed(2)}x OpenSSH`,
    target: 'reported',
    pass: true,
  },
];
for (const r of results) {
  console.log(`${r.pass ? 'PASS' : 'FAIL'}  ${r.name}: ${r.ours}; reference ${r.reference}; ${r.figure}; target ${r.target}`);
}
if (process.argv.includes('--json')) console.log(JSON.stringify({ results, samples: t }, null, 2));
process.exit(results.every((r) => r.pass) ? 0 : 1);
