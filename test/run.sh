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

results=$(mktemp)
trap 'rm -f "$results"' EXIT
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@"
status=$?
set -e
# A plain closing line, whatever the reporter: "N passed, N failed[, N skipped]".
# In CI a skipped test fails the run: nothing may skip there.
if [ -s "$results" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
    if (process.env.CI === "true" && skipped > 0) {
      console.error("CI: tests were skipped; nothing may skip in CI");
      process.exit(1);
    }
  ' "$results" || status=1
fi
exit "$status"
