#!/usr/bin/env bash
# Starts virtlogd and libvirtd for the vmenv test harness. setup.sh runs it as
#
#   ip netns exec vmenv-test unshare -m --propagation private bash daemons.sh
#
# so it already runs inside the harness network namespace and in a fresh,
# private mount namespace. It bind-mounts the harness state directories over
# libvirt's fixed paths and starts both daemons; they keep that mount namespace
# alive after this script exits (it dies with the last of them). libvirtd runs
# under reaper.py, which reaps the processes libvirtd leaves orphaned.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(pid_netns_inode $$)" = "$(netns_inode)" ] ||
  die "daemons.sh must run inside network namespace $VMENV_NETNS (use setup.sh)"

# Make sure no mount event leaks back to the host, whatever unshare did.
mount --make-rprivate /

for pair in "${VMENV_BINDS[@]}"; do
  target=${pair%%:*}
  source=${pair#*:}
  # setup.sh has created every mount point on the host already.
  [ -d "$target" ] || die "mount point $target is missing"
  mount --bind "$source" "$target"
done

# /dev/kvm that root can open but the qemu user cannot (0600 root:root, as in
# this kind of container): libvirt probes QEMU's capabilities with KVM enabled,
# then finds KVM "not usable" for the qemu user and throws the capability cache
# away on every capabilities/version/define/start call (4-8 s each, re-running
# QEMU twice). Guests cannot use it anyway, so hide it from this namespace
# behind an empty file nobody may open; probing and checking then agree (TCG).
if [ -e /dev/kvm ] &&
  ! setpriv --reuid=libvirt-qemu --regid=kvm --init-groups test -r /dev/kvm -a -w /dev/kvm 2>/dev/null; then
  no_kvm=$VMENV_STATE/run/no-kvm
  [ -e "$no_kvm" ] || install -m 0000 /dev/null "$no_kvm"
  mount --bind "$no_kvm" /dev/kvm
fi

# No host D-Bus: otherwise libvirtd would hand our bridges to a host firewalld
# (which manages the host's namespace, not ours) and register guests with a
# host systemd-machined. Without it, libvirt writes iptables rules itself,
# inside the harness netns.
if [ -d /run/dbus ]; then
  mount -t tmpfs -o size=64k,mode=0755 vmenv-no-dbus /run/dbus
fi

# The daemons write their own logs (log_outputs in the conf files); their
# stdio goes to the startup log so early failures are visible too.
startup_log=/var/log/libvirt/daemons-startup.log
{
  echo "=== $(date -Is) starting virtlogd and libvirtd"
} >>"$startup_log"

"${VMENV_DAEMON_ENV[@]}" virtlogd --daemon \
  --config /etc/libvirt/virtlogd.conf \
  --pid-file "$VMENV_PID_DIR/virtlogd.pid" \
  </dev/null >>"$startup_log" 2>&1 ||
  die "virtlogd failed to start"

# libvirtd under a subreaper (reaper.py): the QEMU processes it daemonizes are
# reaped the moment they exit, instead of by PID 1, which here takes a second
# or two — and `virsh destroy` waits for that.
"${VMENV_DAEMON_ENV[@]}" python3 "$(dirname "${BASH_SOURCE[0]}")/reaper.py" "$VMENV_PID_DIR/reaper.pid" -- \
  libvirtd --daemon \
  --config /etc/libvirt/libvirtd.conf \
  --pid-file "$VMENV_PID_DIR/libvirtd.pid" \
  </dev/null >>"$startup_log" 2>&1 ||
  die "libvirtd failed to start"
