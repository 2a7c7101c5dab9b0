#!/usr/bin/env bash
# vmenv quick start on a fresh Debian 12 machine with Node.js >= 20:
#   1. installs the host packages vmenv drives (QEMU, libvirt, rsync, ssh, an ISO writer);
#   2. makes sure a libvirt daemon runs (systemctl where systemd runs, else started
#      directly, as Debian's service would) — it starts no network of its own;
#   3. installs vmenv's npm dependencies and builds it;
#   4. runs `vmenv doctor`, which checks the host and connects to libvirt.
# Until the machine lifecycle lands (issue #4), `doctor` is where the quick start ends.
#   npm run quickstart        (as root, or with sudo available for steps 1-2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "quickstart: '$*' needs root: run as root or install sudo" >&2; exit 1
  fi
}

packages=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients rsync openssh-client genisoimage)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

socket=/run/libvirt/libvirt-sock
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    say "starting libvirtd (systemctl)"
    as_root systemctl start libvirtd
  else
    say "starting virtlogd and libvirtd (no systemd on this machine)"
    # Judge by the sockets, not by process names: a libvirtd of another namespace
    # (vmenv's test harness has one) does not serve this one.
    [ -S /run/libvirt/virtlogd-sock ] || as_root virtlogd -d
    as_root libvirtd -d
  fi
  for _ in $(seq 1 100); do [ -S "$socket" ] && break; sleep 0.1; done
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund >/dev/null
fi
say "building vmenv"
npm run build >/dev/null

say "vmenv doctor"
exec node bin/run.js doctor
