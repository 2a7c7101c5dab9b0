#!/usr/bin/env bash
# vmenv quick start on a fresh Debian 12 machine with Node.js >= 20:
#   1. installs the host packages vmenv drives and those that build boxes;
#   2. as root, makes sure a libvirt daemon runs (systemctl where systemd runs, else
#      started directly) and that QEMU's user can open /dev/kvm as udev would allow;
#      as a normal user, vmenv starts the per-user session daemon;
#   3. installs vmenv's npm dependencies and builds it;
#   4. builds the `tiny` box once (cached in /var/cache/vmenv/boxes) and adds it;
#   5. writes an example project and brings its machine up with QEMU user-mode
#      networking (SSH forwarded to 127.0.0.1: no traffic leaves loopback);
#   6. runs a command in the guest and prints its output.
#
#   npm run quickstart                 (as root, or with sudo for steps 1, 2 and 4)
#   VMENV_QUICKSTART_DIR=<dir>         where the example project goes (~/vmenv-example)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
started_at=$(date +%s.%N)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "quickstart: '$*' needs root: run as root or install sudo" >&2; exit 1
  fi
}
vmenv() { node "$root/bin/run.js" "$@"; }

packages=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients rsync openssh-client genisoimage
  mmdebstrap extlinux syslinux-common e2fsprogs fdisk dosfstools cpio zstd xz-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A host without udev (a container) leaves /dev/kvm at root:root 0600: libvirt (root)
# can open it, QEMU's user cannot, and libvirt 9 then probes QEMU again at every
# define and start (a minute each under software emulation). Give it what Debian's
# udev rule gives it; `vmenv doctor` reports the same as "kvm-device".
if [ "$(id -u)" -eq 0 ] && [ -c /dev/kvm ] && getent group kvm >/dev/null && id libvirt-qemu >/dev/null 2>&1 &&
  ! setpriv --reuid=libvirt-qemu --regid="$(id -g libvirt-qemu)" --init-groups test -r /dev/kvm -a -w /dev/kvm 2>/dev/null; then
  say "giving /dev/kvm the group and mode Debian's udev rule gives it (root:kvm 0660), so libvirt keeps its QEMU capabilities"
  chgrp kvm /dev/kvm
  chmod 0660 /dev/kvm
fi

if [ "$(id -u)" -eq 0 ] && ! virsh -c qemu:///system version >/dev/null 2>&1; then
  socket=/run/libvirt/libvirt-sock
  if [ -d /run/systemd/system ]; then
    say "starting libvirtd (systemctl)"
    systemctl start libvirtd
  else
    # Judge by the sockets, not by process names: a libvirtd of another namespace
    # (vmenv's test harness has one) does not serve this one.
    if [ ! -S /run/libvirt/virtlogd-sock ]; then
      virtlogd -d
      say "started virtlogd (pid $(cat /run/virtlogd.pid 2>/dev/null || echo '?'))"
    fi
    libvirtd -d
    for _ in $(seq 1 100); do [ -S "$socket" ] && break; sleep 0.1; done
    say "started libvirtd (pid $(cat /run/libvirtd.pid 2>/dev/null || echo '?'))"
  fi
fi

if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund >/dev/null
fi
if [ ! -f dist/cli/commands/up.js ] || [ -n "$(find src -newer dist/cli/commands/up.js -name '*.ts' -print -quit)" ]; then
  say "building vmenv"
  npm run build >/dev/null
fi

if ! vmenv box list --json | grep -q '"name": *"tiny"'; then
  say "building the tiny box (once; about a minute)"
  box=$(as_root bash scripts/box-cache.sh tiny)
  vmenv box add "$box" --name tiny >/dev/null
fi

dir=${VMENV_QUICKSTART_DIR:-$HOME/vmenv-example}
mkdir -p "$dir"
if [ ! -f "$dir/vmenv.yaml" ]; then
  say "writing $dir/vmenv.yaml"
  cat >"$dir/vmenv.yaml" <<'YAML'
# The example project of vmenv's quick start: one small machine from the tiny box.
box: tiny
memory: 256
# QEMU user-mode networking: SSH (and forwarded_ports) on 127.0.0.1 only.
network: { mode: user }
YAML
fi

say "vmenv up (in $dir)"
vmenv up --cwd "$dir"
say "vmenv ssh -c … (a command in the guest)"
vmenv ssh --cwd "$dir" -c 'echo "Hello from $(hostname): $(uname -sr), up $(cut -d. -f1 /proc/uptime) s"'

elapsed=$(awk -v s="$started_at" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
say "done in $elapsed s. Next: cd $dir && vmenv ssh   (vmenv destroy -f removes the machine)"
