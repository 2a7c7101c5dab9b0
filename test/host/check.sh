#!/usr/bin/env bash
# Smoke test of the harness made by setup.sh (run as root, after setup.sh):
#   - the harness daemon answers on its own socket and has the pool;
#   - the default socket (/run/libvirt) does not lead to it;
#   - a NAT network with DHCP starts inside netns vmenv-test (bridge, dnsmasq,
#     iptables there, nothing in the host namespace);
#   - a trivial domain (type qemu, 64 MiB, one qcow2 volume from the pool)
#     starts on that network, qemu running as libvirt-qemu and adopted by the
#     harness reaper (so destroy does not wait for PID 1 to reap it);
#   - ssh to 127.0.0.1:22022 with the harness key reaches `nc -U` on the
#     daemon socket and finds virt-ssh-helper.
# Everything it creates is removed again (also on failure). Loopback only.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
require_root
# shellcheck source=/dev/null
. "$VMENV_ENV_FILE" 2>/dev/null || die "no $VMENV_ENV_FILE: run test/host/setup.sh first"

tag=chk$$
net=vmenv-$tag
dom=vmenv-$tag
bridge=vb$tag
tmp=$(mktemp -d)
cleanup() {
  hvirsh_long destroy "$dom" >/dev/null 2>&1 || true
  hvirsh undefine "$dom" >/dev/null 2>&1 || true
  hvirsh vol-delete --pool "$VMENV_POOL" "$dom.qcow2" >/dev/null 2>&1 || true
  hvirsh_long net-destroy "$net" >/dev/null 2>&1 || true
  hvirsh net-undefine "$net" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; exit 1; }
has_word() { awk -v w="$1" '$1 == w {found = 1} END {exit !found}'; } # reads all input (pipefail-safe)

hvirsh version >/dev/null || fail "harness daemon does not answer on $VMENV_SOCKET"
ok "libvirtd answers on $VMENV_SOCKET"
hvirsh pool-list --all --name | has_word "$VMENV_POOL" || fail "pool $VMENV_POOL missing"
[ "$(hvirsh pool-info "$VMENV_POOL" | awk -F': *' '$1 == "State" {print $2}')" = running ] ||
  fail "pool $VMENV_POOL is not running"
ok "pool $VMENV_POOL is running"

if [ -S /run/libvirt/libvirt-sock ] &&
  [ "$(stat -L -c %i /run/libvirt/libvirt-sock)" = "$(stat -L -c %i "$VMENV_SOCKET")" ]; then
  fail "/run/libvirt/libvirt-sock is the harness socket"
fi
if timeout 10 virsh -q -c qemu:///system pool-list --all --name 2>/dev/null | has_word "$VMENV_POOL"; then
  fail "qemu:///system (default socket) reaches a daemon with pool $VMENV_POOL"
fi
ok "qemu:///system (default socket) does not reach the harness daemon"

cat >"$tmp/net.xml" <<EOF
<network>
  <name>$net</name>
  <forward mode='nat'/>
  <bridge name='$bridge' stp='on' delay='0'/>
  <ip address='10.251.77.1' netmask='255.255.255.0'>
    <dhcp><range start='10.251.77.10' end='10.251.77.50'/></dhcp>
  </ip>
</network>
EOF
hvirsh net-define "$tmp/net.xml" >/dev/null || fail "net-define"
hvirsh_long net-start "$net" >/dev/null || { log_tail "$VMENV_STATE/log/libvirtd.log"; fail "net-start (NAT)"; }
ip -n "$VMENV_NETNS" -4 addr show "$bridge" | grep 10.251.77.1 >/dev/null || fail "bridge $bridge not in netns"
! ip link show "$bridge" >/dev/null 2>&1 || fail "bridge $bridge appeared in the host namespace"
ip netns exec "$VMENV_NETNS" iptables -S | grep -- "-o $bridge" >/dev/null || fail "no iptables rules for $bridge in netns"
dpid=$(read_pid "$VMENV_STATE/run/network/$net.pid" dnsmasq) || fail "dnsmasq for $net is not running"
[ "$(pid_netns_inode "$dpid")" = "$(netns_inode)" ] || fail "dnsmasq runs outside netns $VMENV_NETNS"
ok "NAT network: bridge, iptables and dnsmasq (pid $dpid) inside netns $VMENV_NETNS only"

hvirsh vol-create-as "$VMENV_POOL" "$dom.qcow2" 16M --format qcow2 >/dev/null || fail "vol-create-as in $VMENV_POOL"
cat >"$tmp/dom.xml" <<EOF
<domain type='qemu'>
  <name>$dom</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='$VMENV_POOL' volume='$dom.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'><source network='$net'/><model type='virtio'/></interface>
    <serial type='pty'/>
  </devices>
</domain>
EOF
hvirsh define "$tmp/dom.xml" >/dev/null || fail "define domain"
hvirsh_long start "$dom" >/dev/null || { log_tail "$VMENV_STATE/log/qemu/$dom.log"; fail "start domain"; }
[ "$(hvirsh domstate "$dom")" = running ] || fail "domain not running"
qpid=$(read_pid "$VMENV_STATE/run/qemu/$dom.pid" qemu-system) || fail "no qemu process for $dom"
[ "$(stat -c %U "/proc/$qpid")" = libvirt-qemu ] || fail "qemu does not run as libvirt-qemu"
[ "$(pid_comm "$(pid_ppid "$qpid")")" = "$VMENV_REAPER_COMM" ] ||
  fail "qemu (pid $qpid) was not adopted by the harness reaper: destroy would wait for PID 1 to reap it"
t0=$(date +%s%N)
hvirsh_long destroy "$dom" >/dev/null || fail "destroy domain"
destroy_ms=$((($(date +%s%N) - t0) / 1000000))
hvirsh undefine "$dom" >/dev/null || fail "undefine domain"
hvirsh vol-delete --pool "$VMENV_POOL" "$dom.qcow2" >/dev/null || fail "vol-delete"
ok "domain type qemu with a pool volume started (qemu pid $qpid as libvirt-qemu, adopted by the reaper), destroyed in $destroy_ms ms, undefined"
hvirsh_long net-destroy "$net" >/dev/null && hvirsh net-undefine "$net" >/dev/null || fail "remove network"
ok "network removed"

ssh_opts=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes
  -o UserKnownHostsFile="$VMENV_SSH_DIR/known_hosts" -o ConnectTimeout=5 -o LogLevel=ERROR
  -i "$VMENV_TEST_SSH_KEY" -p "$VMENV_TEST_SSH_PORT")
timeout 20 ssh "${ssh_opts[@]}" "$VMENV_TEST_SSH_USER@127.0.0.1" \
  'command -v nc && command -v virt-ssh-helper && nc -h 2>&1 | grep -q -- -U' >/dev/null ||
  fail "ssh to 127.0.0.1:$VMENV_TEST_SSH_PORT or remote nc/virt-ssh-helper"
# A whole libvirt RPC session over ssh: libvirt's libssh2 transport runs
# `nc -U <socket>` on the remote side (host key checked against the harness's
# known_hosts file; nothing is written to ~/.ssh).
timeout 20 virsh -q -c "qemu+libssh2://$VMENV_TEST_SSH_USER@127.0.0.1:$VMENV_TEST_SSH_PORT/system?socket=$VMENV_SOCKET&keyfile=$VMENV_TEST_SSH_KEY&known_hosts=$VMENV_SSH_DIR/known_hosts&known_hosts_verify=normal&sshauth=privkey" \
  pool-list --all --name </dev/null 2>&1 | has_word "$VMENV_POOL" || fail "libvirt RPC over ssh (qemu+libssh2, nc -U)"
printf '' | timeout 20 ssh "${ssh_opts[@]}" "$VMENV_TEST_SSH_USER@127.0.0.1" "nc -U -N $VMENV_SOCKET" >/dev/null ||
  fail "nc -U $VMENV_SOCKET over ssh"
ok "ssh root@127.0.0.1:$VMENV_TEST_SSH_PORT with the harness key; remote nc -U reaches the socket (raw and qemu+libssh2); virt-ssh-helper present"
echo "harness OK"
