#!/bin/sh
# Boots a tiny guest under QEMU (TCG) with a NoCloud seed and checks what the box
# promises, timing the boot to SSH:
#   SSH as vagrant with the seed's key; sudo -n; rsync a folder in (also with
#   --rsync-path "sudo rsync"); sftp; write a file, reboot, the file is there; the
#   root file system fills the disk; a host folder over 9p; an ecdsa host key on
#   demand; no password authentication; ACPI power button (system_powerdown) -> QEMU
#   exits.
#
#   boot-test.sh --rootdir DIR [--disk-size 2G]   the root tree (e.g. from build.sh):
#                                                 an ext4 image of it, -kernel/-initrd
#   boot-test.sh --image FILE [--disk-size 4G]    a disk image (qcow2 or raw, e.g.
#                                                 box.img from a .box): booted by
#                                                 SeaBIOS from a bigger qcow2 overlay
#   boot-test.sh --box FILE.box [--disk-size 4G]  the box.img inside a .box
#   options: --port N (SSH forward on 127.0.0.1, default 2222), --keep (leave the
#            work directory), --seed-bus ide|sata|scsi|virtio, --memory MiB (256),
#            --append ARGS (more kernel arguments, --rootdir only; e.g. vmenv.trace),
#            --machine pc|q35 (default pc; the seed goes on IDE for pc, SATA for q35),
#            --network-config FILE (put into the seed), --seed-fs iso|vfat,
#            --no-seed (only checks that the guest boots and takes DHCP),
#            --disk-bus virtio|scsi|sata (the root disk's bus, --image/--box only)
#
# Networking is QEMU user mode with SSH forwarded to 127.0.0.1 only. Every wait is
# bounded; only the QEMU this script started is ever killed (by its pid).
set -eu

rootdir= image= box= port=2222 keep=0 size= seedbus= mem=256 extra= machine=pc netcfg= seedfs=iso noseed=0 diskbus=virtio
while [ $# -gt 0 ]; do
	case $1 in
	--rootdir) rootdir=$2; shift ;;
	--image) image=$2; shift ;;
	--box) box=$2; shift ;;
	--port) port=$2; shift ;;
	--disk-size) size=$2; shift ;;
	--seed-bus) seedbus=$2; shift ;;
	--memory) mem=$2; shift ;;
	--append) extra=$2; shift ;;
	--machine) machine=$2; shift ;;
	--network-config) netcfg=$2; shift ;;
	--seed-fs) seedfs=$2; shift ;;
	--no-seed) noseed=1 ;;
	--disk-bus) diskbus=$2; shift ;;
	--keep) keep=1 ;;
	-h|--help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "boot-test.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$rootdir$image$box" ] || { echo "boot-test.sh: give --rootdir, --image or --box" >&2; exit 2; }

W=$(mktemp -d /tmp/tiny-boot-test.XXXXXX)
QPID=
cleanup() {
	if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then kill "$QPID" 2>/dev/null; sleep 1; kill -9 "$QPID" 2>/dev/null || :; fi
	if [ "$keep" = 1 ]; then echo "work directory: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

now() { date +%s.%N; }
# CPU seconds QEMU has used (user + system): on a busy host a steadier figure than the
# wall clock, as it does not count the time QEMU waits for a CPU
qemu_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$QPID/stat" 2>/dev/null; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
fail() { echo "FAIL: $*"; echo "--- console (last 40 lines)"; tail -n 40 "$W/console.log" 2>/dev/null | tr -d '\r'; exit 1; }
ok() { echo "ok: $*"; }

# --- the disk ---------------------------------------------------------------------
if [ -n "$rootdir" ]; then
	uuid=$(cat /proc/sys/kernel/random/uuid)
	mkfs.ext4 -q -F -L root -U "$uuid" -d "$rootdir" "$W/disk.img" "${size:-1G}"
	drive="-drive file=$W/disk.img,if=virtio,format=raw"
	kernel="-kernel $rootdir/boot/vmlinuz -initrd $rootdir/boot/initrd.img"
	append="$(sed -n 's/^  cmdline:[[:space:]]*//p' "$(dirname "$0")/../recipe.yaml" | sed 's/[[:space:]]*#.*//') root=UUID=$uuid ro $extra"
else
	if [ -n "$box" ]; then
		tar -xf "$box" -C "$W" box.img
		image=$W/box.img
	fi
	fmt=$(qemu-img info --output=json "$image" | sed -n 's/.*"format": "\([a-z0-9]*\)".*/\1/p' | head -n 1)
	qemu-img create -q -f qcow2 -F "$fmt" -b "$(realpath "$image")" "$W/overlay.qcow2" "${size:-4G}"
	case $diskbus in
	virtio) drive="-drive file=$W/overlay.qcow2,if=virtio,format=qcow2" ;;
	scsi) drive="-device virtio-scsi-pci,id=dscsi -drive id=root,file=$W/overlay.qcow2,if=none,format=qcow2 -device scsi-hd,drive=root,bus=dscsi.0,bootindex=1" ;;
	sata) drive="-device ahci,id=dahci -drive id=root,file=$W/overlay.qcow2,if=none,format=qcow2 -device ide-hd,drive=root,bus=dahci.0,bootindex=1" ;;
	*) echo "boot-test.sh: --disk-bus virtio|scsi|sata" >&2; exit 2 ;;
	esac
	kernel=
	append=
fi

# --- the seed: a key of our own -------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C boot-test -f "$W/key"
mkdir "$W/seed"
printf 'instance-id: boot-test-%s\nlocal-hostname: tiny-test\n' "$(date +%s)" >"$W/seed/meta-data"
printf '#cloud-config\nhostname: tiny-test\nssh_authorized_keys:\n  - %s\n' "$(cat "$W/key.pub")" >"$W/seed/user-data"
[ -n "$netcfg" ] && cp "$netcfg" "$W/seed/network-config"
if [ "$seedfs" = vfat ]; then
	truncate -s 2M "$W/seed.iso"
	mkfs.vfat -n CIDATA "$W/seed.iso" >/dev/null
	mcopy -i "$W/seed.iso" "$W/seed"/* :: 2>/dev/null || {
		mkdir "$W/m"; mount -o loop "$W/seed.iso" "$W/m"; cp "$W/seed"/* "$W/m/"; umount "$W/m"; }
else
	genisoimage -quiet -V cidata -J -r -o "$W/seed.iso" "$W/seed"
fi
[ -n "$seedbus" ] || { [ "$machine" = q35 ] && seedbus=sata || seedbus=ide; }
[ "$seedfs" = vfat ] && [ "$seedbus" = ide ] && seedbus=virtio   # QEMU has no read-only IDE disks
case $seedbus in
ide) seed="-drive file=$W/seed.iso,media=cdrom,if=ide,readonly=on" ;;
sata) seed="-device ahci,id=ahci -drive id=seed,file=$W/seed.iso,media=cdrom,if=none,readonly=on -device ide-cd,drive=seed,bus=ahci.0" ;;
scsi) seed="-device virtio-scsi-pci,id=scsi -drive id=seed,file=$W/seed.iso,media=cdrom,if=none,readonly=on -device scsi-cd,drive=seed" ;;
virtio) seed="-drive file=$W/seed.iso,if=virtio,format=raw,readonly=on" ;;
*) echo "boot-test.sh: --seed-bus ide|sata|scsi|virtio" >&2; exit 2 ;;
esac

mkdir "$W/share"
echo "from the host" >"$W/share/hello"
share="-virtfs local,path=$W/share,mount_tag=hostshare,security_model=none,id=share"

SSH="ssh -q -i $W/key -p $port -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3 -o LogLevel=ERROR vagrant@127.0.0.1"

start_qemu() {
	: >"$W/console.log"
	# shellcheck disable=SC2086
	qemu-system-x86_64 -machine "$machine" -accel tcg -m "$mem" -smp 1 -nodefaults -no-user-config \
		-display none -serial "file:$W/console.log" -monitor "unix:$W/mon.sock,server,nowait" \
		$drive $seed $share $kernel ${append:+-append "$append"} \
		-netdev "user,id=n,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n \
		-device virtio-rng-pci -pidfile "$W/qemu.pid" &
	QPID=$!
	T0=$(now)
}

# Waits for the console's "tiny: up" (the boot script's last line: network up, dropbear
# about to start), then for an SSH login. SSH attempts before the guest has an address
# would hang inside QEMU's user-mode network, so they wait for that line, and each is
# bounded.
wait_ssh() { # timeout-seconds
	UP=
	while :; do
		kill -0 "$QPID" 2>/dev/null || fail "QEMU exited"
		[ "$(awk -v a="$T0" -v b="$(now)" -v t="$1" 'BEGIN { print (b - a > t) }')" = 1 ] && fail "no SSH after $1 s"
		if [ -z "$UP" ]; then
			if grep -q 'tiny: up in' "$W/console.log" 2>/dev/null; then UP=$(elapsed "$T0"); else sleep 0.05; continue; fi
		fi
		timeout 5 $SSH true 2>/dev/null && break
		sleep 0.1
	done
}

# a command on the QEMU monitor (OpenBSD nc -U, as in netcat-openbsd)
monitor() { printf '%s\n' "$1" | timeout 5 nc -q 1 -U "$W/mon.sock" >/dev/null 2>&1 || :; }

[ "$noseed" = 1 ] && seed=

# --- boot 1 -------------------------------------------------------------------------
start_qemu
if [ "$noseed" = 1 ]; then
	n=0
	until grep -q 'tiny: up in' "$W/console.log" 2>/dev/null; do
		[ $n -ge 600 ] && fail "no 'tiny: up' on the console after 60 s"
		sleep 0.1; n=$((n + 1))
	done
	ok "booted without a seed in $(elapsed "$T0") s"
	grep -a -E 'no NoCloud seed|udhcpc' "$W/console.log" | tr -d '\r' | sed 's/^/   console: /'
	grep -q 'udhcpc: eth0 bound' "$W/console.log" && ok "DHCP on the first NIC" || fail "no DHCP lease"
	monitor system_powerdown
	n=0
	while kill -0 "$QPID" 2>/dev/null; do [ $n -ge 300 ] && fail "no power-off"; sleep 0.1; n=$((n + 1)); done
	QPID=
	echo "PASS (no seed)"
	exit 0
fi
wait_ssh 60
t1=$(elapsed "$T0")
c1=$(qemu_cpu)
ok "SSH ready $t1 s after QEMU started (boot 1, first boot; console said up at ${UP:-?} s; QEMU used $c1 s of CPU; load $(cut -d' ' -f1-3 /proc/loadavg))"
grep -a 'tiny: ' "$W/console.log" | tr -d '\r' | sed 's/^/   console: /'

[ "$($SSH hostname)" = tiny-test ] && ok "host name from the seed" || fail "host name: $($SSH hostname)"
$SSH sudo -n true && ok "sudo -n true" || fail "sudo -n"
[ "$($SSH sudo -n id -u)" = 0 ] && ok "sudo gives root" || fail "sudo id"
$SSH 'sudo -n -i true && sudo -n -u nobody true' && ok "sudo -i, sudo -u" || fail "sudo -i / -u"
$SSH 'cat /etc/shadow' >/dev/null 2>&1 && fail "vagrant can read /etc/shadow" || :
if [ -n "$netcfg" ]; then
	$SSH 'cat /var/log/vmenv-nocloud.log' | grep -E 'DHCP|address|route' | sed 's/^/   guest log: /'
	echo "   guest network: $($SSH 'ip -4 -o addr show dev eth0 | awk "{ print \$4 }"; ip route show default; grep nameserver /etc/resolv.conf; pidof udhcpc || echo no-udhcpc' | tr '\n' ' ')"
fi
$SSH 'grep "^vagrant:" /etc/passwd' | grep -q ':/bin/sh$' && ok "vagrant has a POSIX shell" || fail "vagrant shell"

mkdir -p "$W/sync/sub"
for i in 1 2 3; do head -c 100000 /dev/urandom >"$W/sync/sub/f$i"; done
echo hello >"$W/sync/hello.txt"
rsync -a -e "ssh -i $W/key -p $port -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" \
	"$W/sync/" vagrant@127.0.0.1:/home/vagrant/sync/ && ok "rsync into /home/vagrant/sync" || fail "rsync"
[ "$($SSH 'md5sum sync/sub/f2' | cut -d' ' -f1)" = "$(md5sum <"$W/sync/sub/f2" | cut -d' ' -f1)" ] && ok "rsync'd file intact" || fail "rsync content"
rsync -a --rsync-path="sudo rsync" -e "ssh -i $W/key -p $port -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" \
	"$W/sync/" vagrant@127.0.0.1:/srv/sync/ && $SSH 'test -f /srv/sync/hello.txt' && ok "rsync --rsync-path='sudo rsync' into /srv" || fail "sudo rsync"
echo "put $W/sync/hello.txt sftp.txt" | sftp -q -i "$W/key" -P "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -b - vagrant@127.0.0.1 >/dev/null &&
	[ "$($SSH cat sftp.txt)" = hello ] && ok "sftp" || fail "sftp"
$SSH 'sudo -n mkdir -p /mnt/share && sudo -n mount -t 9p -o trans=virtio,version=9p2000.L hostshare /mnt/share && cat /mnt/share/hello' | grep -q 'from the host' &&
	ok "9p host folder (mount -t 9p loads its modules)" || fail "9p"
ssh -q -i "$W/key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	-o HostKeyAlgorithms=ecdsa-sha2-nistp256 vagrant@127.0.0.1 true && ok "ecdsa host key (made on demand)" || fail "ecdsa host key"
ssh -i "$W/key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	-o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive vagrant@127.0.0.1 true 2>&1 |
	grep -q 'Permission denied (publickey)' && ok "password authentication refused (publickey only)" || fail "password authentication"
$SSH 'echo persisted > f; sync' && ok "wrote ~/f"
df=$($SSH "df -k / | awk 'NR == 2 { print \$2 }'")
if [ -z "$rootdir" ]; then
	want=$(numfmt --from=iec "${size:-4G}")
	[ "$df" -gt $((want / 1024 * 9 / 10)) ] && ok "root file system grown to the disk: $((df / 1024)) MiB" ||
		fail "root file system is $((df / 1024)) MiB on a ${size:-4G} disk"
else
	ok "root file system: $((df / 1024)) MiB"
fi

# --- boot 2: reboot -------------------------------------------------------------------
$SSH 'sudo -n reboot' || :
T0=$(now)
: >"$W/console.log"
wait_ssh 60
ok "SSH ready again $(elapsed "$T0") s after the reboot request (console said up at ${UP:-?} s)"
[ "$($SSH cat f)" = persisted ] && ok "~/f survived the reboot" || fail "~/f after reboot"
$SSH 'cat /var/log/vmenv-nocloud.log' | grep -q 'already set up' && ok "the seed was not applied twice" || fail "nocloud on the second boot"

# --- ACPI power button -------------------------------------------------------------
monitor system_powerdown
T0=$(now)
n=0
while kill -0 "$QPID" 2>/dev/null; do
	[ $n -ge 300 ] && fail "QEMU still running 30 s after system_powerdown"
	sleep 0.1; n=$((n + 1))
done
wait "$QPID" 2>/dev/null || :
QPID=
ok "system_powerdown: QEMU exited after $(elapsed "$T0") s"
echo "PASS (first boot to SSH: $t1 s wall, $c1 s QEMU CPU)"
