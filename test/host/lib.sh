# shellcheck shell=bash
# Shared definitions for the vmenv test host harness (sourced by setup.sh,
# teardown.sh and daemons.sh; not meant to be run on its own).
#
# The harness runs a libvirtd of its own:
#   - inside the network namespace $VMENV_NETNS (so every guest network it
#     creates, every bridge, dnsmasq and iptables rule lives there and nothing
#     reaches the host's networks), and
#   - inside a private mount namespace in which /etc/libvirt, /var/lib/libvirt,
#     /run/libvirt, /var/log/libvirt and /var/cache/libvirt are bind mounts of
#     directories under $VMENV_STATE, so it shares no state with a system
#     libvirt.
# Its sockets live in $VMENV_SOCK_DIR, a host-visible directory that the bind
# mounts do not cover, so tests in the host namespace can connect to it.

VMENV_STATE=/var/lib/vmenv-test-host
VMENV_NETNS=vmenv-test
VMENV_SOCK_PARENT=/run/vmenv-test
VMENV_SOCK_DIR=$VMENV_SOCK_PARENT/libvirt
VMENV_SOCKET=$VMENV_SOCK_DIR/libvirt-sock
VMENV_URI="qemu:///system?socket=$VMENV_SOCKET"
VMENV_POOL=vmenv-test
VMENV_POOL_DIR=$VMENV_STATE/pool
VMENV_SSH_PORT=22022
VMENV_SSH_USER=root
VMENV_SSH_DIR=$VMENV_STATE/ssh
VMENV_SSH_KEY=$VMENV_SSH_DIR/id_ed25519
VMENV_PID_DIR=$VMENV_STATE/pids
VMENV_ENV_FILE=$VMENV_STATE/env

# Directory in the harness mount namespace -> directory under $VMENV_STATE.
VMENV_BINDS=(
  "/etc/libvirt:$VMENV_STATE/etc"
  "/var/lib/libvirt:$VMENV_STATE/lib"
  "/run/libvirt:$VMENV_STATE/run"
  "/var/log/libvirt:$VMENV_STATE/log"
  "/var/cache/libvirt:$VMENV_STATE/cache"
)

# A clean environment for the daemons: nothing from the caller (LIBVIRT_*,
# proxies, test runner variables) leaks into libvirtd, qemu or dnsmasq.
VMENV_DAEMON_ENV=(env -i
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  HOME=/root LANG=C.UTF-8)

# Bounds for every wait in the harness.
VMENV_HEALTH_TIMEOUT=5      # seconds for one `virsh version`
VMENV_STOP_TIMEOUT=10       # seconds to wait for a process to exit after TERM

log() { printf 'vmenv-test-host: %s\n' "$*" >&2; }
die() { printf 'vmenv-test-host: ERROR: %s\n' "$*" >&2; exit 1; }

require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    die "must run as root (it installs packages, creates a network namespace and starts libvirtd); try: sudo bash $0"
  fi
}

hvirsh() { # virsh against the harness daemon, bounded in time
  timeout --kill-after=2 "$VMENV_HEALTH_TIMEOUT" virsh -q -c "$VMENV_URI" "$@"
}
hvirsh_long() { # same, for operations that may take longer (pool build, destroy)
  timeout --kill-after=5 60 virsh -q -c "$VMENV_URI" "$@"
}

netns_inode() { # inode of the harness netns, empty when it does not exist
  [ -e "/run/netns/$VMENV_NETNS" ] || return 0
  stat -L -c %i "/run/netns/$VMENV_NETNS" 2>/dev/null || true
}

pid_netns_inode() { # inode of the network namespace of process $1
  local link
  link=$(readlink "/proc/$1/ns/net" 2>/dev/null) || return 0
  link=${link#net:[}
  printf '%s\n' "${link%]}"
}

pid_comm() { cat "/proc/$1/comm" 2>/dev/null || true; }
pid_ppid() { awk '/^PPid:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }

# The process name of test/host/reaper.py, the subreaper libvirtd runs under.
VMENV_REAPER_COMM=vmenv-reaper
is_zombie() { [ "$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)" = Z ]; }

# read_pid FILE -> prints the pid stored in FILE when it names a live process
# whose command name starts with $2 (so a recycled pid is never trusted).
read_pid() {
  local file=$1 comm=$2 pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  is_zombie "$pid" && return 1
  case "$(pid_comm "$pid")" in
    "$comm"*) printf '%s\n' "$pid" ;;
    *) return 1 ;;
  esac
}

# stop_pid PID NAME: TERM, wait up to VMENV_STOP_TIMEOUT s, then KILL.
stop_pid() {
  local pid=$1 name=$2 i
  [ -d "/proc/$pid" ] || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  kill -CONT "$pid" 2>/dev/null || true # a stopped process gets its TERM now
  for ((i = 0; i < VMENV_STOP_TIMEOUT * 10; i++)); do
    [ -d "/proc/$pid" ] || return 0
    is_zombie "$pid" && return 0 # exited; its parent has not reaped it yet
    sleep 0.1
  done
  log "$name (pid $pid) ignored TERM for ${VMENV_STOP_TIMEOUT}s; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    [ -d "/proc/$pid" ] || return 0
    is_zombie "$pid" && return 0
    sleep 0.1
  done
}

log_tail() { # log_tail FILE [LINES]
  local f=$1 n=${2:-40}
  if [ -s "$f" ]; then
    printf -- '--- last %s lines of %s ---\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2
    printf -- '--- end of %s ---\n' "$f" >&2
  else
    printf -- '(%s is empty or missing)\n' "$f" >&2
  fi
}

# is_harness_sshd PID: the harness's own sshd (its listener rewrites its
# command line to "sshd: /usr/sbin/sshd -f <our config> ... [listener] ...").
is_harness_sshd() {
  local args
  args=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  case "$args" in *"-f $VMENV_SSH_DIR/sshd_config "*) return 0 ;; *) return 1 ;; esac
}
