#!/bin/sh
# The tiny box's customize hook: `customize.sh ROOTDIR`, run on the build host (as
# root) once mmdebstrap has extracted the recipe's packages into ROOTDIR.
#
# It builds a new, minimal root from what was extracted — busybox (static) as init and
# userland, the Debian kernel with the few modules listed in modules.txt, dropbear,
# rsync, sudo, sftp-server, scp, resize2fs, vmenv-nocloud, Vagrant's insecure public
# keys and the files in files/ — and an initramfs of busybox and the modules that
# mount the root disk. Nothing else of the packages is kept (no docs, man pages,
# locales, dpkg database). Then it replaces the extracted tree in ROOTDIR with the new
# root.
#
# Environment: RECIPE_DIR (this folder), COMMON_DIR (boxes/common), BUILD_DIR (a
# scratch directory; default $TMPDIR). Host tools: POSIX sh and coreutils, chroot,
# cpio, and zstd or gzip.
set -eu

die() { echo "tiny/customize.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: customize.sh ROOTDIR"
[ "$(id -u)" = 0 ] || die "needs root (it runs chroot and sets file owners)"
ROOT=$(cd "$1" && pwd -P) || die "no directory $1"
[ "$ROOT" != / ] || die "refusing to work on /"
RECIPE_DIR=${RECIPE_DIR:-$(cd "$(dirname "$0")" && pwd -P)}
COMMON_DIR=${COMMON_DIR:-$RECIPE_DIR/../common}
[ -f "$COMMON_DIR/nocloud/vmenv-nocloud" ] || die "no vmenv-nocloud in COMMON_DIR=$COMMON_DIR"

WORK=$(mktemp -d "${BUILD_DIR:-${TMPDIR:-/tmp}}/tiny-customize.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
S=$WORK/root      # the new root
I=$WORK/initrd    # the initramfs tree
MULTIARCH=x86_64-linux-gnu

# --- what was extracted ---------------------------------------------------------------
first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return 0; }; done; return 1; }
BB=$(first "$ROOT/bin/busybox" "$ROOT/usr/bin/busybox") || die "busybox-static is not in the root"
MODROOT=$(first "$ROOT/lib/modules" "$ROOT/usr/lib/modules") || die "no kernel modules in the root"
KVER=$(ls "$MODROOT" | sort -V | tail -n 1)
[ -n "$KVER" ] && [ -f "$ROOT/boot/vmlinuz-$KVER" ] || die "no kernel (boot/vmlinuz-*) in the root"
LDSO=$ROOT/lib64/ld-linux-x86-64.so.2
[ -e "$LDSO" ] || die "no dynamic loader in the root (libc6)"
echo "tiny: kernel $KVER"

# --- layout: merged /usr ---------------------------------------------------------------
mkdir -p "$S"
for d in usr/bin usr/sbin usr/lib/$MULTIARCH usr/lib64 usr/libexec/vmenv boot dev proc sys run tmp mnt \
	etc/dropbear etc/sudoers.d home root srv opt media var/lib var/log var/tmp var/spool var/cache; do
	mkdir -p "$S/$d"
done
ln -s usr/bin "$S/bin"
ln -s usr/sbin "$S/sbin"
ln -s usr/lib "$S/lib"
ln -s usr/lib64 "$S/lib64"
ln -s ../run "$S/var/run"
ln -s ../run/lock "$S/var/lock"
chmod 1777 "$S/tmp" "$S/var/tmp"
chmod 0700 "$S/root"

# a path in the new root for a path of the extracted one (/bin -> /usr/bin, ...)
canon() {
	case $1 in
	/bin/*|/sbin/*|/lib/*|/lib64/*) echo "/usr$1" ;;
	*) echo "$1" ;;
	esac
}

# copies a file of the extracted root (following links) to the same place in the new
# root, and the shared libraries it needs, found by the root's own dynamic loader
copy_elf() { # /path [mode]
	src=$ROOT$1
	[ -e "$src" ] || die "$1 is not in the root"
	dst=$S$(canon "$1")
	mkdir -p "${dst%/*}"
	cp -L "$src" "$dst"
	[ $# -gt 1 ] && chmod "$2" "$dst"
	chroot "$ROOT" /lib64/ld-linux-x86-64.so.2 --list "$1" >"$WORK/ldd" 2>&1 || {
		cat "$WORK/ldd" >&2; die "cannot list the libraries of $1"; }
	awk '$2 == "=>" && $3 ~ /^\// { print $3 }' "$WORK/ldd" | while read -r lib; do
		d=$S$(canon "$lib")
		[ -e "$d" ] && continue
		mkdir -p "${d%/*}"
		cp -L "$ROOT$lib" "$d"
	done
}

# --- busybox: init and the userland ----------------------------------------------------
cp "$BB" "$S/usr/bin/busybox"
chmod 0755 "$S/usr/bin/busybox"
"$BB" --list-full | while read -r p; do
	case ${p##*/} in dpkg|dpkg-deb|rpm|rpm2cpio|linuxrc) continue ;; esac
	case $p in
	bin/*|sbin/*) t=usr/$p ;;
	*) t=$p ;;
	esac
	[ -e "$S/$t" ] || [ -L "$S/$t" ] || ln -s /usr/bin/busybox "$S/$t"
done

# --- programs --------------------------------------------------------------------------
copy_elf /lib64/ld-linux-x86-64.so.2
copy_elf /usr/sbin/dropbear
copy_elf /usr/bin/dropbearkey
copy_elf /usr/bin/rsync
copy_elf /usr/lib/openssh/sftp-server
ln -s openssh/sftp-server "$S/usr/lib/sftp-server"   # where dropbear looks for it
# scp: Vagrant uploads files (its own key at first contact, provisioner scripts) with the
# SCP protocol, which runs `scp -t` on the guest
copy_elf /usr/bin/scp
copy_elf "$(cd "$ROOT" && for f in sbin/resize2fs usr/sbin/resize2fs; do [ -e "$f" ] && echo "/$f" && break; done)"
# sudo: the binary (setuid root), its policy plugin and PAM with two modules
copy_elf /usr/bin/sudo 4755
copy_elf /usr/libexec/sudo/sudoers.so
copy_elf /usr/libexec/sudo/libsudo_util.so.0
for m in pam_permit.so pam_deny.so; do
	copy_elf "/lib/$MULTIARCH/security/$m"
done

# --- kernel and modules ----------------------------------------------------------------
cp "$ROOT/boot/vmlinuz-$KVER" "$S/boot/vmlinuz"
M=$MODROOT/$KVER
find "$M" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' >"$WORK/allmods"
modfile() { # name -> path below $M (names compare with - and _ alike)
	awk -v n="$(echo "$1" | tr - _)" '{ b = $0; sub(/.*\//, "", b); sub(/\.ko(\.xz|\.zst)?$/, "", b); gsub(/-/, "_", b); if (b == n) { print; exit } }' "$WORK/allmods"
}
builtin() { tr - _ <"$M/modules.builtin" | grep -q "/$(echo "$1" | tr - _).ko\$"; }
# the closure of a list of module names over their "depends=" (read from .modinfo)
closure() { # names... -> paths, one a line
	todo="$*" seen=" "
	while [ -n "$todo" ]; do
		set -- $todo
		[ $# -gt 0 ] || break
		n=$1; shift; todo="$*"
		case $seen in *" $n "*) continue ;; esac
		seen="$seen$n "
		f=$(modfile "$n")
		if [ -z "$f" ]; then
			builtin "$n" || die "kernel module $n is neither in linux-image nor built in"
			continue
		fi
		echo "$f"
		deps=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | tr ',' ' ')
		todo="$todo $deps"
	done
}
# drops the signature appended to a module (the module, 12 bytes of struct
# module_signature whose last 4 are the signature's length big-endian, the magic
# line): the kernel then loads it without hashing it and checking the signature
# (~0.3 s of each boot under TCG for the ~30 modules it loads; no Secure Boot here
# to enforce them), and taints itself once ("E")
unsign() { # file.ko
	[ "$(tail -c 28 "$1")" = "~Module signature appended~" ] || return 0
	set -- "$1" $(tail -c 40 "$1" | head -c 12 | od -An -tu1)
	truncate -s $(($(wc -c <"$1") - 40 - $5 - $6 - (${10} << 24 | ${11} << 16 | ${12} << 8 | ${13}))) "$1"
}
copy_modules() { # dest-root names...
	dest=$1; shift
	closure "$@" | sort -u | while read -r f; do
		t=$dest/usr/lib/modules/$KVER/${f#"$M"/}
		mkdir -p "${t%/*}"
		cp "$f" "$t"
		case $t in *.ko) unsign "$t" ;; esac
	done
	for x in modules.order modules.builtin modules.builtin.modinfo; do
		[ -f "$M/$x" ] && cp "$M/$x" "$dest/usr/lib/modules/$KVER/"
	done
	"$BB" depmod -b "$dest" "$KVER" || die "depmod failed"
}
ALL=$(sed -n 's/#.*//; s/^initramfs://; s/^[[:space:]]*//; s/[[:space:]]*$//; /./p' "$RECIPE_DIR/modules.txt")
INITRD_MODS=$(sed -n 's/#.*//; s/^initramfs:[[:space:]]*//p' "$RECIPE_DIR/modules.txt" | tr -d ' \t')
copy_modules "$S" $ALL
echo "tiny: $(find "$S/usr/lib/modules" -name '*.ko*' | wc -l) kernel modules kept"

# --- the files of the recipe, vmenv-nocloud --------------------------------------------
cp -R "$RECIPE_DIR/files/." "$S/"
cp "$COMMON_DIR/nocloud/vmenv-nocloud" "$S/usr/sbin/vmenv-nocloud"
# Vagrant's insecure public keys: vmenv-nocloud authorizes them on a seedless first boot
mkdir -p "$S/usr/share/vmenv-nocloud"
cat "$COMMON_DIR/vagrant-keys/vagrant.pub.ed25519" "$COMMON_DIR/vagrant-keys/vagrant.pub.rsa" \
	>"$S/usr/share/vmenv-nocloud/vagrant-insecure.pub"
chmod 0644 "$S/usr/share/vmenv-nocloud/vagrant-insecure.pub"
chmod 0755 "$S/usr/sbin/vmenv-nocloud" "$S/etc/init.d/"* "$S/usr/libexec/vmenv/"* \
	"$S/etc/udhcpc/default.script" "$S/etc/acpi/"*
chmod 0440 "$S/etc/sudoers" "$S/etc/sudoers.d/"*

# --- accounts: root and vagrant, neither with a password ---------------------------------
cat >"$S/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
vagrant:x:1000:1000:vagrant:/home/vagrant:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$S/etc/group" <<'EOF'
root:x:0:
adm:x:4:vagrant
tty:x:5:
disk:x:6:
kmem:x:15:
dialout:x:20:
cdrom:x:24:
sudo:x:27:vagrant
audio:x:29:
video:x:44:
shadow:x:42:
users:x:100:
vagrant:x:1000:
nogroup:x:65534:
EOF
sed 's/^\([^:]*\):.*/\1:*:::::::/' "$S/etc/passwd" >"$S/etc/shadow"
sed 's/^\([^:]*\):[^:]*:[^:]*:\(.*\)/\1:!::\2/' "$S/etc/group" >"$S/etc/gshadow"
chmod 0644 "$S/etc/passwd" "$S/etc/group"
chmod 0640 "$S/etc/shadow" "$S/etc/gshadow"
chgrp 42 "$S/etc/shadow" "$S/etc/gshadow"
mkdir -p "$S/home/vagrant/.ssh"
chmod 0755 "$S/home/vagrant"
chmod 0700 "$S/home/vagrant/.ssh"
chown -R 1000:1000 "$S/home/vagrant"
ln -sf /proc/self/mounts "$S/etc/mtab"

# --- the initramfs: busybox, /init and the modules that mount the root ---------------
mkdir -p "$I/bin" "$I/dev" "$I/proc" "$I/sys" "$I/run" "$I/root" "$I/usr"
cp "$BB" "$I/bin/busybox"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -s busybox "$I/bin/$a"; done
ln -s bin "$I/sbin"
ln -s ../bin "$I/usr/bin"
ln -s ../bin "$I/usr/sbin"
ln -s usr/lib "$I/lib"
cp "$RECIPE_DIR/initramfs/init" "$I/init"
chmod 0755 "$I/init"
mknod -m 600 "$I/dev/console" c 5 1 2>/dev/null || :
copy_modules "$I" $INITRD_MODS
if command -v zstd >/dev/null 2>&1; then compress="zstd -q -19 -T0"; else compress="gzip -9"; fi
(cd "$I" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | $compress) >"$S/boot/initrd.img"
echo "tiny: initramfs $(wc -c <"$S/boot/initrd.img") bytes ($compress)"

# --- replace the extracted tree with the new root ---------------------------------------
# /dev, /proc and /sys are left alone (mmdebstrap mounts things there while hooks run).
# When mmdebstrap runs this as a hook, its clean-up step (apt-get update and clean on
# the root) needs /etc/apt, dpkg's status and apt's directories: they stay, emptied of
# package lists and .debs (any cache hook ran before this one).
keep=" dev proc sys "
if [ -n "${MMDEBSTRAP_HOOK:-}" ]; then
	keep="$keep etc/apt var/lib/dpkg "
	mkdir -p "$S/var/lib/apt/lists/partial" "$S/var/cache/apt/archives/partial" "$S/var/log/apt"
fi
mounts=$(awk -v r="$ROOT/" 'substr($2, 1, length(r)) == r { print substr($2, length(r) + 1) }' /proc/mounts)
for m in $mounts; do
	case " $m" in " dev/"*|" dev"|" proc"*|" sys"*) ;; *) die "something is mounted on $ROOT/$m; not replacing the root" ;; esac
done
mkdir -p "$WORK/keep"
for k in $keep; do
	case $k in dev|proc|sys) continue ;; esac
	[ -e "$ROOT/$k" ] || continue
	mkdir -p "$WORK/keep/${k%/*}"
	mv "$ROOT/$k" "$WORK/keep/$k"
done
for e in "$ROOT"/* "$ROOT"/.[!.]*; do
	[ -e "$e" ] || [ -L "$e" ] || continue
	case ${e##*/} in dev|proc|sys) continue ;; esac
	rm -rf --one-file-system "$e"
done
for e in "$S"/* "$S"/.[!.]*; do
	[ -e "$e" ] || [ -L "$e" ] || continue
	case ${e##*/} in dev|proc|sys) mkdir -p "$ROOT/${e##*/}"; continue ;; esac
	mv "$e" "$ROOT/"
done
for k in $keep; do
	[ -e "$WORK/keep/$k" ] || continue
	mkdir -p "$ROOT/${k%/*}"
	rm -rf --one-file-system "${ROOT:?}/$k"
	mv "$WORK/keep/$k" "$ROOT/$k"
done
chmod 0755 "$ROOT"
echo "tiny: root file system $(du -sk --one-file-system "$ROOT" | cut -f1) KiB"
