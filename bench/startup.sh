#!/usr/bin/env bash
# Startup time of the CLI: `vmenv --version` and `vmenv --help`, against bare `node -e 0`
# measured in the same run (so a slow or busy machine shows up in the reference too).
# Target: each under VMENV_STARTUP_TARGET_MS (default 250) ms of wall time.
# Writes bench/out/startup.json (hyperfine's export). Exits 1 if a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."

target_ms="${VMENV_STARTUP_TARGET_MS:-250}"
runs="${VMENV_BENCH_RUNS:-20}"
out_dir=bench/out
out="$out_dir/startup.json"
mkdir -p "$out_dir"

if [[ ! -f oclif.manifest.json || ! -f dist/cli/commands/doctor.js ]]; then
  echo "startup: building first (npm run build)" >&2
  npm run build >&2
fi

node_bin="$(command -v node)"

if command -v hyperfine >/dev/null 2>&1; then
  hyperfine --warmup 3 --runs "$runs" -N --style basic --export-json "$out" \
    -n 'node -e 0' "$node_bin -e 0" \
    -n 'vmenv --version' "$node_bin bin/run.js --version" \
    -n 'vmenv --help' "$node_bin bin/run.js --help" >&2
else
  # Fallback: the same measurements with a plain loop, in hyperfine's JSON shape.
  echo "startup: hyperfine not found, timing $runs runs with a loop" >&2
  node --input-type=module - "$out" "$runs" "$node_bin" <<'EOF'
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
const [out, runs, node] = process.argv.slice(2);
const cases = [['node -e 0', ['-e', '0']], ['vmenv --version', ['bin/run.js', '--version']], ['vmenv --help', ['bin/run.js', '--help']]];
const results = cases.map(([command, args]) => {
  for (let i = 0; i < 3; i++) spawnSync(node, args);
  const times = [];
  for (let i = 0; i < Number(runs); i++) {
    const t = process.hrtime.bigint();
    const r = spawnSync(node, args, { stdio: 'ignore' });
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
    if (r.status !== 0) throw new Error(`${command} exited ${r.status}`);
  }
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const stddev = Math.sqrt(times.reduce((a, b) => a + (b - mean) ** 2, 0) / times.length);
  return { command, mean, stddev, times };
});
writeFileSync(out, JSON.stringify({ results }, null, 2));
EOF
fi

node --input-type=module - "$out" "$target_ms" <<'EOF'
import { readFileSync } from 'node:fs';
const [file, target] = process.argv.slice(2);
const { results } = JSON.parse(readFileSync(file, 'utf8'));
const byName = Object.fromEntries(results.map((r) => [r.command, r]));
const ref = byName['node -e 0'];
const ms = (s) => (s * 1000).toFixed(1);
let pass = true;
console.log(`reference  node -e 0        ${ms(ref.mean)} ms ± ${ms(ref.stddev)}`);
for (const name of ['vmenv --version', 'vmenv --help']) {
  const r = byName[name];
  const ok = r.mean * 1000 < Number(target);
  pass &&= ok;
  console.log(
    `${ok ? 'PASS' : 'FAIL'}       ${name.padEnd(16)} ${ms(r.mean)} ms ± ${ms(r.stddev)}` +
      `  (${(r.mean / ref.mean).toFixed(2)}x node -e 0, +${ms(r.mean - ref.mean)} ms; target < ${target} ms)`,
  );
}
console.log(pass ? 'startup: PASS' : 'startup: FAIL');
process.exit(pass ? 0 : 1);
EOF
