#!/usr/bin/env bash
# The whole vmenv test suite: what `npm test` (and .ci/run) runs.
#
#   bash test/run.sh [vitest args...]      e.g. bash test/run.sh --project unit
#
# Works from a clean clone on a fresh Debian 12 machine with Node >= 20:
#   1. `npm ci` when node_modules is missing or older than package-lock.json;
#   2. `npm run build` (the e2e tests run the built CLI);
#   3. test/host/setup.sh (as root; through sudo otherwise): Debian packages,
#      network namespace vmenv-test, the harness libvirtd on its own socket,
#      storage pool, loopback sshd;
#   4. `npx vitest run` over the unit, integration and e2e projects of
#      vitest.config.ts, with the harness's VMENV_TEST_* variables set.
# The exit code is vitest's. The harness keeps running afterwards so the next
# run reuses it (a warm setup takes about a second); stop it with
# `bash test/host/teardown.sh`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] ||
  [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "test/run.sh: installing dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund
fi

npm run build

if [ "$(id -u)" -eq 0 ]; then
  bash test/host/setup.sh >/dev/null
elif command -v sudo >/dev/null; then
  sudo bash test/host/setup.sh >/dev/null
else
  echo "test/run.sh: the test host needs root: run as root, or install sudo" >&2
  exit 1
fi
# shellcheck source=/dev/null
. /var/lib/vmenv-test-host/env

# The tiers run one after another: end-to-end tests boot guests under software
# emulation on every core, which would starve the unit tier's timing-sensitive tests.
# Arguments (e.g. `--project unit`) make it one run of exactly that.
results_dir=$(mktemp -d)
trap 'rm -rf "$results_dir"' EXIT
status=0
run_vitest() {
  local out="$results_dir/$1.json"
  shift
  set +e
  npx vitest run --reporter=default --reporter=json --outputFile.json="$out" "$@"
  local s=$?
  set -e
  [ "$s" -eq 0 ] || status=$s
}
if [ "$#" -gt 0 ]; then
  run_vitest custom "$@"
else
  for tier in unit integration e2e; do run_vitest "$tier" --project "$tier"; done
fi
# A plain closing line for the whole run: "N passed, N failed[, N skipped]".
# In CI a skipped test fails the run: nothing may skip there.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  if (process.env.CI === "true" && skipped > 0) {
    console.error("CI: tests were skipped; nothing may skip in CI");
    process.exit(1);
  }
' "$results_dir" || status=1
exit "$status"
