#!/bin/sh
# The debian-12 recipe's customize hook: run by `vmenv box build` as
#   customize.sh <rootdir>
# after the packages are installed (mmdebstrap has /proc, /sys and /dev mounted in the
# chroot). Environment: RECIPE_DIR (this folder), COMMON_DIR (boxes/common), BUILD_DIR.
set -eu
root=${1:?usage: customize.sh <rootdir>}
: "${RECIPE_DIR:?}" "${COMMON_DIR:?}"
in_root() { chroot "$root" "$@"; }
say() { echo "customize: $*" >&2; }

# Files of this recipe (files/ mirrors the root filesystem), owned by root.
say "installing files"
tar -C "$RECIPE_DIR/files" -cf - . | tar -C "$root" -xf - --no-same-owner --no-overwrite-dir
chmod 0440 "$root"/etc/sudoers.d/*
chmod 0755 "$root/usr/local/sbin/vmenv-growroot"

# The NoCloud seed handler shared with the tiny box.
nocloud=$COMMON_DIR/nocloud/vmenv-nocloud
[ -f "$nocloud" ] || { echo "customize: $nocloud is missing" >&2; exit 1; }
install -m 0755 "$nocloud" "$root/usr/local/sbin/vmenv-nocloud"
# Vagrant's insecure public keys: vmenv-nocloud authorizes them on a seedless first boot.
install -d -m 0755 "$root/usr/share/vmenv-nocloud"
cat "$COMMON_DIR/vagrant-keys/vagrant.pub.ed25519" "$COMMON_DIR/vagrant-keys/vagrant.pub.rsa" \
	>"$root/usr/share/vmenv-nocloud/vagrant-insecure.pub"
chmod 0644 "$root/usr/share/vmenv-nocloud/vagrant-insecure.pub"

# Documentation the packages brought before the dpkg exclusions applied.
say "dropping documentation, manual pages and translations"
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$root/usr/share/man"/* "$root/usr/share/info"/* "$root/usr/share/lintian"/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true

# Host name (the seed's local-hostname replaces it).
echo debian-12 >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	debian-12
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
HOSTS

# Kernel: boot/vmlinuz and boot/initrd.img (extlinux.conf boots those names); the
# initramfs holds only what a virtual machine boots from.
say "initramfs with the virtio, SATA, NVMe, ext4 and CD-ROM modules"
# sr_mod, cdrom and isofs: the NoCloud seed disc is there as soon as the root is mounted,
# instead of whenever udev gets to loading them (seconds later under emulation).
for m in virtio_pci virtio_blk virtio_scsi sd_mod ahci ata_piix nvme ext4 crc32c_generic sr_mod cdrom isofs; do
	grep -qx "$m" "$root/etc/initramfs-tools/modules" 2>/dev/null || echo "$m" >>"$root/etc/initramfs-tools/modules"
done
version=$(ls "$root/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n 1)
[ -n "$version" ] || { echo "customize: no kernel in /boot" >&2; exit 1; }
rm -f "$root/vmlinuz" "$root/vmlinuz.old" "$root/initrd.img" "$root/initrd.img.old"
in_root update-initramfs -u -k "$version" >/dev/null
ln -sfn "vmlinuz-$version" "$root/boot/vmlinuz"
ln -sfn "initrd.img-$version" "$root/boot/initrd.img"

# The default user: passwordless sudo (files/etc/sudoers.d/vagrant), no password
# (locked: only keys from the NoCloud seed log in). root is locked too.
say "user vagrant"
if ! in_root id vagrant >/dev/null 2>&1; then
	in_root useradd --create-home --user-group --shell /bin/bash vagrant
fi
in_root usermod --lock vagrant
in_root usermod --lock root
in_root visudo -cq

# Services: networkd + resolved (DHCP on eth0 unless the seed says otherwise),
# the seed handler, root growth, SSH host keys at first boot, the guest agent.
say "services"
in_root systemctl enable systemd-networkd.service systemd-resolved.service \
	vmenv-nocloud.service vmenv-growroot.service vmenv-ssh-hostkeys.service >/dev/null 2>&1
# A box is provisioned right after it boots: apt must not hold its lock in the background.
in_root systemctl disable apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
in_root systemctl mask systemd-networkd-wait-online.service e2scrub_reap.service >/dev/null 2>&1 || true
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"

# No SSH host keys in the box: vmenv-ssh-hostkeys.service makes them at first boot.
rm -f "$root"/etc/ssh/ssh_host_*

# Nothing of this build host stays in the image.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed"
rm -rf "$root/var/log/journal"/* "$root/tmp"/* "$root/var/tmp"/*
say "done"
