#!/usr/bin/env bash
# Undoes test/host/setup.sh: stops the guests and networks of the harness
# libvirtd, then libvirtd, virtlogd, any qemu/dnsmasq they left behind, the
# subreaper libvirtd ran under and the harness sshd (each by its recorded pid,
# checked to be the harness's), deletes
# network namespace vmenv-test and removes /var/lib/vmenv-test-host and
# /run/vmenv-test. The private mount namespace of the daemons goes away with
# its last process. Safe to run twice; run as root.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

require_root
exec 9>/run/vmenv-test-host.lock
flock -w 600 9 || die "another setup.sh/teardown.sh has held /run/vmenv-test-host.lock for 10 minutes"

host_mntns=$(readlink /proc/self/ns/mnt)
host_netns=$(readlink /proc/self/ns/net)
harness_netns_link=
[ -n "$(netns_inode)" ] && harness_netns_link="net:[$(netns_inode)]"

# A harness process runs outside the host's mount namespace, and in the
# harness netns (or, after an earlier half-done teardown, in some other
# non-host netns).
is_harness_pid() {
  local pid=$1 m n
  m=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || return 1
  n=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || return 1
  [ "$m" != "$host_mntns" ] || return 1
  if [ -n "$harness_netns_link" ]; then [ "$n" = "$harness_netns_link" ]; else [ "$n" != "$host_netns" ]; fi
}

# 1. Guests and networks, through the daemon while it still answers.
if [ -S "$VMENV_SOCKET" ] && hvirsh version >/dev/null 2>&1; then
  while read -r dom; do
    [ -n "$dom" ] || continue
    log "destroying domain $dom"
    hvirsh_long destroy "$dom" >/dev/null 2>&1 || log "virsh destroy $dom failed (its pid file is handled below)"
  done < <(hvirsh list --name 2>/dev/null || true)
  while read -r net; do
    [ -n "$net" ] || continue
    log "stopping network $net"
    hvirsh_long net-destroy "$net" >/dev/null 2>&1 || log "virsh net-destroy $net failed"
  done < <(hvirsh net-list --name 2>/dev/null || true)
fi

# 2. The daemons.
for name in libvirtd virtlogd; do
  if pid=$(read_pid "$VMENV_PID_DIR/$name.pid" "$name") && is_harness_pid "$pid"; then
    stop_pid "$pid" "$name"
  fi
done

# 3. Whatever they spawned and left running: libvirt records the pids of the
#    qemu processes and dnsmasq instances in its run directory.
shopt -s nullglob
for f in "$VMENV_STATE"/run/qemu/*.pid "$VMENV_STATE"/run/network/*.pid; do
  for comm in qemu-system dnsmasq; do
    if pid=$(read_pid "$f" "$comm") && is_harness_pid "$pid"; then
      stop_pid "$pid" "$comm"
    fi
  done
done
shopt -u nullglob

# 3b. The subreaper libvirtd ran under (test/host/reaper.py). It exits by
#     itself once its last orphan is gone (so does one of an earlier start,
#     with the guests stopped above); stop it if it still waits.
if pid=$(read_pid "$VMENV_PID_DIR/reaper.pid" "$VMENV_REAPER_COMM") && is_harness_pid "$pid"; then
  stop_pid "$pid" "$VMENV_REAPER_COMM"
fi

# 4. The harness sshd (host namespace, loopback).
if pid=$(read_pid "$VMENV_PID_DIR/sshd.pid" sshd) && is_harness_sshd "$pid"; then
  stop_pid "$pid" sshd
fi

# 5. The network namespace. Anything still in it was not started by this
#    harness's scripts or daemon (they are all stopped above): name it, leave it.
if [ -e "/run/netns/$VMENV_NETNS" ]; then
  left=$(ip netns pids "$VMENV_NETNS" 2>/dev/null | tr '\n' ' ' || true)
  if [ -n "${left// /}" ]; then
    log "WARNING: processes still in netns $VMENV_NETNS (not stopped by teardown): $left"
    for pid in $left; do ps -o pid=,user=,args= -p "$pid" >&2 || true; done
  fi
  log "deleting network namespace $VMENV_NETNS"
  ip netns del "$VMENV_NETNS" || log "ip netns del $VMENV_NETNS failed"
fi

# 6. Files. Mount points that setup.sh created on the host go too (if empty).
created=()
if [ -f "$VMENV_STATE/created-mountpoints" ]; then
  mapfile -t created <"$VMENV_STATE/created-mountpoints"
fi
if [ -d "$VMENV_STATE" ]; then
  log "removing $VMENV_STATE"
  rm -rf --one-file-system "$VMENV_STATE"
fi
rm -rf --one-file-system "$VMENV_SOCK_PARENT"
for target in "${created[@]}"; do
  case "$target" in /etc/libvirt | /var/lib/libvirt | /run/libvirt | /var/log/libvirt | /var/cache/libvirt) ;; *) continue ;; esac
  rmdir "$target" 2>/dev/null || true
done
log "torn down"
