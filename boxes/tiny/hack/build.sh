#!/bin/sh
# Builds the tiny box by hand, the way `vmenv box build tiny` does, for working on the
# box without the pipeline: mmdebstrap (variant extract, with a .deb cache) runs
# customize.sh as its hook into ROOTDIR; with --disk, the root also becomes a bootable
# disk as the pipeline makes it (MBR, partition 1 ext4 labelled root, extlinux booting
# boot/vmlinuz + boot/initrd.img with root=UUID=... ro and the recipe's cmdline).
#
#   build.sh ROOTDIR [--disk FILE.qcow2] [--cache DIR]     (as root)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd -P)
common=$(cd "$here/../common" && pwd -P)
root= disk= cache=/var/cache/vmenv/apt
while [ $# -gt 0 ]; do
	case $1 in
	--disk) disk=$2; shift ;;
	--cache) cache=$2; shift ;;
	-*) echo "build.sh: unknown option $1" >&2; exit 2 ;;
	*) root=$1 ;;
	esac
	shift
done
[ -n "$root" ] || { echo "usage: build.sh ROOTDIR [--disk FILE.qcow2] [--cache DIR]" >&2; exit 2; }
[ ! -e "$root" ] || { echo "build.sh: $root exists" >&2; exit 2; }
mkdir -p "$cache"
work=$(mktemp -d /tmp/tiny-build.XXXXXX)
trap 'umount "$work/mnt" 2>/dev/null; rm -rf "$work"' EXIT

packages=$(awk '/^packages:/ { p = 1; next } p && /^  - / { sub(/^  - /, ""); sub(/[ \t]*#.*/, ""); printf "%s%s", s, $0; s = ","; next } p && !/^  - / { p = 0 }' "$here/recipe.yaml")
cmdline=$(sed -n 's/^  cmdline:[[:space:]]*//p' "$here/recipe.yaml" | sed 's/[[:space:]]*#.*//')
t0=$(date +%s.%N)
mmdebstrap --quiet --variant=extract --include="$packages" --skip=download/empty \
	--setup-hook="mkdir -p \"\$1/var/cache/apt/archives\"" \
	--setup-hook="sync-in $cache /var/cache/apt/archives/" \
	--extract-hook="sync-out /var/cache/apt/archives $cache" \
	--extract-hook="RECIPE_DIR=$here COMMON_DIR=$common BUILD_DIR=$work $here/customize.sh \"\$1\"" \
	bookworm "$root"
echo "root built in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

[ -n "$disk" ] || exit 0
size=$((1024 * 1024 * 1024))
part=$((size - 1024 * 1024))
uuid=$(cat /proc/sys/kernel/random/uuid)
mkdir -p "$root/boot/extlinux"
cat >"$root/boot/extlinux/extlinux.conf" <<EOF
SERIAL 0 115200
DEFAULT tiny
PROMPT 0
TIMEOUT 0
LABEL tiny
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND root=UUID=$uuid ro $cmdline
EOF
mkfs.ext4 -q -F -L root -U "$uuid" -d "$root" "$work/part.img" "$((part / 1024))k"
mkdir "$work/mnt"
mount -o loop "$work/part.img" "$work/mnt"
extlinux --install "$work/mnt/boot/extlinux" >/dev/null
umount "$work/mnt"
truncate -s "$size" "$work/disk.raw"
echo 'label: dos
start=2048, type=83, bootable' | sfdisk -q "$work/disk.raw"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$work/disk.raw" conv=notrunc bs=440 count=1 2>/dev/null
dd if="$work/part.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse 2>/dev/null
qemu-img convert -c -O qcow2 "$work/disk.raw" "$disk"
echo "disk $disk: $(du -k "$disk" | cut -f1) KiB, built in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
