#!/usr/bin/env bash
# All benchmarks, each printed against a reference measured in the same run:
#   bench/startup.sh  — `vmenv --version` / `--help` vs bare `node -e 0` (target < 250 ms)
#   bench/libvirt.mjs — 1 GiB qcow2 upload vs `virsh vol-upload` (target <= 1.10x);
#                       1000 sequential lookups vs virsh (target >= 2000 calls/s)
#   bench/ssh.mjs     — SSH connect + `true` + close vs OpenSSH `ssh … true` (target <= 1.3x)
#   bench/lifecycle.mjs — with the tiny box: `up` vs bench/up-reference.sh (virsh + ssh,
#                       target <= 1.10x); `status` with 1 and 10 machines (<= 150 / 300 ms);
#                       `ssh -c true` vs OpenSSH (<= 1.3x); `destroy -f` (<= 1 s);
#                       `halt` (<= the guest's own shutdown + 1 s)
#   bench/rsync-auto.mjs — with the tiny box: a saved file visible in the guest through
#                       `vmenv rsync-auto` (median <= 500 ms; reference: one rsync over a new
#                       SSH connection); a burst of 1000 files (<= 3 syncs)
#   bench/vagrant-box.mjs — `up` of a Vagrant-style box (insecure key replaced) vs
#                       virsh + ssh polling with the insecure key (target <= 1.10x)
# Needs root for the test harness's libvirtd (test/host/setup.sh), like the tests.
#   bash bench/run.sh            (or: npm run bench)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build >/dev/null
bash test/host/setup.sh >/dev/null
# shellcheck source=/dev/null
. /var/lib/vmenv-test-host/env

status=0
bash bench/startup.sh || status=1
node bench/libvirt.mjs || status=1
node bench/ssh.mjs || status=1
node bench/lifecycle.mjs || status=1
node bench/rsync-auto.mjs || status=1
node bench/vagrant-box.mjs || status=1
exit "$status"
