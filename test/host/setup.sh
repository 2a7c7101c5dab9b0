#!/usr/bin/env bash
# Sets up the vmenv test host: the real parts the integration and end-to-end
# tests talk to. Run as root; idempotent (a second run reuses what is healthy
# and takes about a second).
#
#   - installs the Debian packages the tests need, when any is missing;
#   - creates network namespace vmenv-test (lo up inside);
#   - starts virtlogd + libvirtd (under a subreaper, test/host/reaper.py)
#     inside that netns and inside a private mount namespace whose
#     /etc/libvirt, /var/lib/libvirt, /run/libvirt, /var/log/libvirt,
#     /var/cache/libvirt are directories under
#     /var/lib/vmenv-test-host (no state shared with a system libvirt); its
#     sockets are in /run/vmenv-test/libvirt, never in /run/libvirt;
#   - defines, builds, starts and autostarts the dir storage pool vmenv-test;
#   - starts an OpenSSH server on 127.0.0.1:22022 (host namespace, loopback
#     only) with its own host key, config and an ed25519 client key authorized
#     for root, for the qemu+ssh transport tests;
#   - writes /var/lib/vmenv-test-host/env (sourceable `export` lines) and
#     prints the same lines on stdout. Progress goes to stderr, so
#     `eval "$(bash test/host/setup.sh)"` works.
#
# Network rule: nothing here sends traffic anywhere but loopback; every guest
# network the harness libvirtd creates exists only inside netns vmenv-test.
# Undo everything with test/host/teardown.sh.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

require_root
started_at=$(date +%s.%N)

# One setup or teardown at a time (several test runs may start together).
exec 9>/run/vmenv-test-host.lock
flock -w 600 9 || die "another setup.sh/teardown.sh has held /run/vmenv-test-host.lock for 10 minutes"

# --- 1. Debian packages ------------------------------------------------------
PACKAGES=(
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
  qemu-system-x86 qemu-utils dnsmasq-base iptables ovmf rsync
  openssh-client openssh-server genisoimage xorriso iproute2 libxml2-utils
  netcat-openbsd procps hyperfine ansible python3-yaml
  python3 # test/host/reaper.py
  # Building boxes (vmenv box build) and testing their guest side.
  mmdebstrap extlinux syslinux-common e2fsprogs fdisk dosfstools cpio zstd
  xz-utils busybox-static
  # virtiofs shares: Debian 12's virtiofsd is /usr/lib/qemu/virtiofsd of this package
  # (libvirt finds it through /usr/share/qemu/vhost-user/50-qemu-virtiofsd.json).
  qemu-system-common
)
install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]} failed"
}
install_packages

# --- 2. directories ----------------------------------------------------------
prepare_dirs() {
  install -d -m 0755 "$VMENV_STATE"   # traversable: qemu (libvirt-qemu) reads the pool under it
  install -d -m 0755 "$VMENV_STATE"/{lib,run,log,cache} "$VMENV_POOL_DIR"
  # The system daemon's QEMU driver does not make its log folder (Debian's package does,
  # for /var/log/libvirt/qemu): without it no domain starts ("Unable to open file: …/qemu/<domain>.log").
  install -d -m 0755 "$VMENV_STATE/log/qemu"
  install -d -m 0700 "$VMENV_PID_DIR"
  install -d -m 0755 "$VMENV_SOCK_PARENT"
  install -d -m 0755 "$VMENV_SOCK_DIR"
  # libvirt's fixed paths must exist on the host as mount points for the bind
  # mounts made in the harness mount namespace. Remember the ones we create so
  # teardown.sh removes them again (only if empty).
  local pair target
  for pair in "${VMENV_BINDS[@]}"; do
    target=${pair%%:*}
    if [ ! -d "$target" ]; then
      mkdir -p "$target"
      echo "$target" >>"$VMENV_STATE/created-mountpoints"
    fi
  done
  # Seed the daemon's /etc/libvirt from the package's once.
  if [ ! -d "$VMENV_STATE/etc" ]; then
    cp -a /etc/libvirt "$VMENV_STATE/etc.tmp"
    # No network starts on its own: tests create the networks they need.
    rm -f "$VMENV_STATE/etc.tmp/qemu/networks/autostart/"*.xml
    mv "$VMENV_STATE/etc.tmp" "$VMENV_STATE/etc"
  fi
}
prepare_dirs

write_if_changed() { # write_if_changed FILE < content
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; else chmod 0644 "$tmp"; mv "$tmp" "$1"; fi
}

write_libvirt_config() {
  write_if_changed "$VMENV_STATE/etc/libvirtd.conf" <<EOF
# libvirtd.conf of the vmenv test harness (written by test/host/setup.sh).
# Sockets in a directory of their own, never /run/libvirt. It is host-visible
# (not under the bind mounts) so tests in the host namespace reach it.
unix_sock_dir = "$VMENV_SOCK_DIR"
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
# Unix sockets only (libvirtd is never started with --listen anyway).
listen_tls = 0
listen_tcp = 0
# libvirt's defaults, stated because the client's keepalive tests rely on them.
keepalive_interval = 5
keepalive_count = 5
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
  write_if_changed "$VMENV_STATE/etc/virtlogd.conf" <<EOF
# virtlogd.conf of the vmenv test harness (written by test/host/setup.sh).
log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
EOF
  write_if_changed "$VMENV_STATE/etc/qemu.conf" <<EOF
# qemu.conf of the vmenv test harness (written by test/host/setup.sh).
# No AppArmor/SELinux in the container: plain DAC (qemu runs as libvirt-qemu).
security_driver = "none"
# No private /dev per guest: libvirt would try to carry the harness's mount
# over /dev/kvm (see daemons.sh) into it and fail ("Unable to move ... mount
# to /dev/kvm"). The daemon's mount namespace is private already.
namespaces = [ ]
# Guests stay in the daemon's cgroup: the harness creates no cgroups on the
# host (and never asks a host systemd-machined to register its guests).
cgroup_controllers = [ ]
EOF
}
write_libvirt_config

config_hash() {
  cat "$VMENV_STATE/etc/"{libvirtd,virtlogd,qemu}.conf "$HERE/daemons.sh" "$HERE/lib.sh" "$HERE/reaper.py" |
    sha256sum | cut -d' ' -f1
}

# --- 3. network namespace ----------------------------------------------------
ensure_netns() {
  if [ -z "$(netns_inode)" ] || ! ip netns exec "$VMENV_NETNS" true 2>/dev/null; then
    ip netns del "$VMENV_NETNS" 2>/dev/null || true
    log "creating network namespace $VMENV_NETNS"
    ip netns add "$VMENV_NETNS" || die "ip netns add $VMENV_NETNS failed"
  fi
  ip -n "$VMENV_NETNS" link set lo up || die "cannot bring lo up in netns $VMENV_NETNS"
}
ensure_netns

# --- 4. virtlogd + libvirtd --------------------------------------------------
# A process is the harness's when it runs in a network namespace and a mount
# namespace other than the host's (so a recycled pid is never mistaken).
host_mntns=$(readlink /proc/self/ns/mnt)
host_netns=$(readlink /proc/self/ns/net)
is_harness_pid() {
  local pid=$1 m n
  m=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || return 1
  n=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || return 1
  [ "$m" != "$host_mntns" ] && [ "$n" != "$host_netns" ]
}

daemon_healthy() {
  local lpid vpid
  lpid=$(read_pid "$VMENV_PID_DIR/libvirtd.pid" libvirtd) || { why="libvirtd is not running"; return 1; }
  vpid=$(read_pid "$VMENV_PID_DIR/virtlogd.pid" virtlogd) || { why="virtlogd is not running"; return 1; }
  [ "$(pid_netns_inode "$lpid")" = "$(netns_inode)" ] ||
    { why="libvirtd runs in an old network namespace"; return 1; }
  [ "$(pid_comm "$(pid_ppid "$lpid")")" = "$VMENV_REAPER_COMM" ] ||
    { why="libvirtd runs without its reaper"; return 1; }
  [ "$(cat "$VMENV_PID_DIR/config.sha256" 2>/dev/null)" = "$(config_hash)" ] ||
    { why="the harness configuration changed"; return 1; }
  hvirsh version >/dev/null 2>&1 || { why="libvirtd does not answer on $VMENV_SOCKET"; return 1; }
}

stop_daemons() {
  local name pid
  for name in libvirtd virtlogd; do
    if pid=$(read_pid "$VMENV_PID_DIR/$name.pid" "$name") && is_harness_pid "$pid"; then
      stop_pid "$pid" "$name"
    fi
    rm -f "$VMENV_PID_DIR/$name.pid"
  done
  # libvirtd's reaper stays: it reaps the guests left running, then exits by itself.
  rm -f "$VMENV_SOCK_DIR"/libvirt-sock* "$VMENV_SOCK_DIR"/libvirt-admin-sock "$VMENV_PID_DIR/config.sha256"
}

start_daemons() {
  local i
  log "starting virtlogd and libvirtd in netns $VMENV_NETNS (sockets in $VMENV_SOCK_DIR)"
  config_hash >"$VMENV_PID_DIR/config.sha256.new"
  if ! ip netns exec "$VMENV_NETNS" unshare -m --propagation private \
    bash "$HERE/daemons.sh" </dev/null >&2 9>&-; then
    log_tail "$VMENV_STATE/log/daemons-startup.log" 20
    log_tail "$VMENV_STATE/log/libvirtd.log" 20
    stop_daemons
    die "could not start the harness daemons"
  fi
  # Bounded wait: 30 s for the socket to answer.
  for ((i = 0; i < 150; i++)); do
    if hvirsh version >/dev/null 2>&1; then
      mv "$VMENV_PID_DIR/config.sha256.new" "$VMENV_PID_DIR/config.sha256"
      return 0
    fi
    if ! read_pid "$VMENV_PID_DIR/libvirtd.pid" libvirtd >/dev/null; then
      break
    fi
    sleep 0.2
  done
  log_tail "$VMENV_STATE/log/daemons-startup.log" 20
  log_tail "$VMENV_STATE/log/libvirtd.log" 20
  stop_daemons
  die "libvirtd did not answer on $VMENV_SOCKET within 30 s"
}

why=
if daemon_healthy; then
  log "reusing libvirtd (pid $(cat "$VMENV_PID_DIR/libvirtd.pid")) on $VMENV_SOCKET"
else
  [ -e "$VMENV_PID_DIR/libvirtd.pid" ] && log "restarting the harness daemons: $why"
  stop_daemons
  start_daemons
fi

# --- 5. storage pool ---------------------------------------------------------
pool_field() { hvirsh pool-info "$VMENV_POOL" 2>/dev/null | awk -F': *' -v k="$1" '$1 == k {print $2}'; }
ensure_pool() {
  if ! hvirsh pool-info "$VMENV_POOL" >/dev/null 2>&1; then
    log "defining storage pool $VMENV_POOL at $VMENV_POOL_DIR"
    hvirsh pool-define-as "$VMENV_POOL" dir --target "$VMENV_POOL_DIR" >/dev/null ||
      die "pool-define-as $VMENV_POOL failed"
  fi
  if [ "$(pool_field State)" != running ]; then
    hvirsh_long pool-build "$VMENV_POOL" >/dev/null || die "pool-build $VMENV_POOL failed"
    hvirsh_long pool-start "$VMENV_POOL" >/dev/null || { log_tail "$VMENV_STATE/log/libvirtd.log"; die "pool-start $VMENV_POOL failed"; }
  fi
  if [ "$(pool_field Autostart)" != yes ]; then
    hvirsh pool-autostart "$VMENV_POOL" >/dev/null || die "pool-autostart $VMENV_POOL failed"
  fi
  chmod 0755 "$VMENV_POOL_DIR"
}
ensure_pool

# --- 6. OpenSSH server on 127.0.0.1:22022 ------------------------------------
SSHD_CONFIG=$VMENV_SSH_DIR/sshd_config
KNOWN_HOSTS=$VMENV_SSH_DIR/known_hosts
ssh_check() {
  timeout --kill-after=2 10 ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KNOWN_HOSTS" -o ConnectTimeout=5 \
    -o LogLevel=ERROR -i "$VMENV_SSH_KEY" -p "$VMENV_SSH_PORT" \
    "$VMENV_SSH_USER@127.0.0.1" true </dev/null >/dev/null 2>&1
}
ensure_sshd() {
  local pid i
  install -d -m 0700 "$VMENV_SSH_DIR"
  [ -s "$VMENV_SSH_DIR/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C vmenv-test-host -f "$VMENV_SSH_DIR/ssh_host_ed25519_key"
  [ -s "$VMENV_SSH_KEY" ] ||
    ssh-keygen -q -t ed25519 -N '' -C vmenv-test-client -f "$VMENV_SSH_KEY"
  write_if_changed "$VMENV_SSH_DIR/authorized_keys" <"$VMENV_SSH_KEY.pub"
  chmod 0600 "$VMENV_SSH_DIR/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$VMENV_SSH_PORT" "$(cut -d' ' -f1,2 "$VMENV_SSH_DIR/ssh_host_ed25519_key.pub")" |
    write_if_changed "$KNOWN_HOSTS"
  write_if_changed "$SSHD_CONFIG" <<EOF
# sshd_config of the vmenv test harness (written by test/host/setup.sh).
# Loopback only; the "remote" libvirt host of the qemu+ssh transport tests.
Port $VMENV_SSH_PORT
ListenAddress 127.0.0.1
HostKey $VMENV_SSH_DIR/ssh_host_ed25519_key
PidFile $VMENV_PID_DIR/sshd.pid
AuthorizedKeysFile $VMENV_SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
AllowUsers $VMENV_SSH_USER
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
# PAM's session modules (pam_loginuid, ...) fail in containers; not needed for keys.
UsePAM no
StrictModes yes
X11Forwarding no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
PrintMotd no
# Tests open many connections at once.
MaxStartups 64:30:128
MaxSessions 64
Subsystem sftp /usr/lib/openssh/sftp-server
AcceptEnv LANG LC_*
LogLevel INFO
EOF
  install -d -m 0755 /run/sshd # sshd's privilege separation directory (Debian's path)
  /usr/sbin/sshd -t -f "$SSHD_CONFIG" || die "sshd rejected $SSHD_CONFIG"

  if pid=$(read_pid "$VMENV_PID_DIR/sshd.pid" sshd) && is_harness_sshd "$pid" &&
    [ "$(cat "$VMENV_PID_DIR/sshd.sha256" 2>/dev/null)" = "$(sha256sum <"$SSHD_CONFIG")" ] &&
    ssh_check; then
    log "reusing sshd (pid $pid) on 127.0.0.1:$VMENV_SSH_PORT"
    return 0
  fi
  if pid=$(read_pid "$VMENV_PID_DIR/sshd.pid" sshd) && is_harness_sshd "$pid"; then
    stop_pid "$pid" sshd
  fi
  rm -f "$VMENV_PID_DIR/sshd.pid"
  log "starting sshd on 127.0.0.1:$VMENV_SSH_PORT"
  "${VMENV_DAEMON_ENV[@]}" /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$VMENV_STATE/sshd.log" \
    </dev/null >/dev/null 2>&1 9>&- || { log_tail "$VMENV_STATE/sshd.log"; die "sshd failed to start"; }
  for ((i = 0; i < 50; i++)); do # bounded: 10 s
    if ssh_check; then
      sha256sum <"$SSHD_CONFIG" >"$VMENV_PID_DIR/sshd.sha256"
      return 0
    fi
    sleep 0.2
  done
  log_tail "$VMENV_STATE/sshd.log"
  die "cannot log in to sshd on 127.0.0.1:$VMENV_SSH_PORT as $VMENV_SSH_USER with $VMENV_SSH_KEY"
}
ensure_sshd

# --- 6b. a normal user for session-mode tests --------------------------------
# qemu:///session as root is the system daemon (libvirt's rule): a per-user
# session daemon, as a new user gets it, needs a user that is not root.
VMENV_SESSION_USER=vmenv-session
ensure_session_user() {
  id "$VMENV_SESSION_USER" >/dev/null 2>&1 ||
    useradd --create-home --shell /bin/sh --comment 'vmenv session-mode tests' "$VMENV_SESSION_USER"
}
ensure_session_user

# --- 7. environment file -----------------------------------------------------
env_lines() {
  cat <<EOF
export VMENV_TEST_URI='$VMENV_URI'
export VMENV_TEST_SOCKET='$VMENV_SOCKET'
export VMENV_TEST_POOL='$VMENV_POOL'
export VMENV_TEST_POOL_DIR='$VMENV_POOL_DIR'
export VMENV_TEST_NETNS='$VMENV_NETNS'
export VMENV_TEST_SSH_PORT='$VMENV_SSH_PORT'
export VMENV_TEST_SSH_USER='$VMENV_SSH_USER'
export VMENV_TEST_SSH_KEY='$VMENV_SSH_KEY'
export VMENV_TEST_STATE='$VMENV_STATE'
export VMENV_TEST_SESSION_USER='$VMENV_SESSION_USER'
EOF
}
env_lines | write_if_changed "$VMENV_ENV_FILE"
env_lines

log "ready in $(awk -v s="$started_at" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s; env in $VMENV_ENV_FILE"
