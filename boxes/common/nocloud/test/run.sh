#!/bin/sh
# Tests vmenv-nocloud: feeds each sample seed in cases/ to the script in a dry run
# (VMENV_NOCLOUD_ROOT=<fake root> --print) and compares what it printed, the files it
# wrote and its log with cases/<name>/expected; parses each yaml/<name>.yaml with
# --dump-yaml and compares with yaml/<name>.expected.
#
#   run.sh [--shell sh|busybox|PATH] [--update] [NAME...]
#
# --shell busybox runs the script with `busybox sh` and a PATH holding nothing but
# busybox applets (awk, sed, grep...), as in the tiny box. --update rewrites the
# expected files from the current output (review the diff before committing).
#
# A case is a folder: seed/ (meta-data, user-data, network-config), optionally
# seed2/, seed3/ (later boots with these seeds), root/ (files added to the fake
# root), env (VAR=value lines), transform ("crlf", "bom": applied to the seed files),
# bin/ (programs put first on PATH, e.g. a stand-in for useradd), boots (the boots in
# order, one a line: a seed folder's name, "none" for a boot without a seed, or
# "sh FILE" to run FILE of the case with ROOT set to the fake root between boots).
# Without boots: seed, seed2, seed3 as they exist; without any, one boot with no seed.
# Every fake root has Vagrant's insecure keys where the boxes install them
# (usr/share/vmenv-nocloud/vagrant-insecure.pub; usr/ is not listed in the transcript).
set -u
here=$(cd "$(dirname "$0")" && pwd)
script=$here/../vmenv-nocloud
keys=$here/../../vagrant-keys
shell=sh
update=0
names=
while [ $# -gt 0 ]; do
	case $1 in
	--shell) shell=$2; shift ;;
	--update) update=1 ;;
	-h|--help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) names="$names $1" ;;
	esac
	shift
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nocloud-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

case $shell in
busybox)
	bb=$(command -v busybox) || { echo "run.sh: busybox is not installed" >&2; exit 2; }
	mkdir "$tmp/bin"
	for a in $("$bb" --list); do ln -s "$bb" "$tmp/bin/$a"; done
	SH="$tmp/bin/sh"
	TPATH=$tmp/bin ;;
sh) SH=/bin/sh; TPATH=$PATH ;;
*) SH=$shell; TPATH=$PATH ;;
esac

# the fake root every case starts from: an image with root and the default user
base_root() {
	mkdir -p "$1/etc/sudoers.d" "$1/home/vagrant" "$1/root"
	printf 'root:x:0:0:root:/root:/bin/sh\nvagrant:x:1000:1000:vagrant:/home/vagrant:/bin/sh\n' >"$1/etc/passwd"
	printf 'root:x:0:\nadm:x:4:\nsudo:x:27:\nstaff:x:50:\nvagrant:x:1000:\n' >"$1/etc/group"
	printf 'root:*:::::::\nvagrant:*:::::::\n' >"$1/etc/shadow"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\ttiny\n' >"$1/etc/hosts"
	echo tiny >"$1/etc/hostname"
	mkdir -p "$1/usr/share/vmenv-nocloud"
	cat "$keys/vagrant.pub.ed25519" "$keys/vagrant.pub.rsa" >"$1/usr/share/vmenv-nocloud/vagrant-insecure.pub"
}

# runs the script; output and exit status into the case's transcript
invoke() { # root seed-dir-or-empty
	(
		export PATH="$TPATH" VMENV_NOCLOUD_ROOT="$1" VMENV_NOCLOUD_IFACES="eth0=52:54:00:12:34:56"
		[ -d "$case/bin" ] && PATH="$case/bin:$PATH"
		if [ -f "$case/env" ]; then
			while IFS= read -r l; do [ -n "$l" ] && export "${l%%=*}=${l#*=}"; done <"$case/env"
		fi
		if [ -n "$2" ]; then exec "$SH" "$script" --seed "$2" --print
		else exec "$SH" "$script" --print; fi
	) 2>"$tmp/stderr"
	echo "exit $?"
}

transcript() { # case-dir root
	case=$1 root=$2
	n=0
	if [ -f "$case/boots" ]; then boots=$(cat "$case/boots")
	else boots=$(for s in seed seed2 seed3; do [ -d "$case/$s" ] && echo "$s"; done); fi
	while IFS= read -r s; do
		case $s in
		'') continue ;;
		none) n=$((n + 1)); echo "== boot $n (no seed)"; invoke "$root" ""; continue ;;
		'sh '*) echo "== ${s#sh }"; ROOT=$root "$SH" "$case/${s#sh }" 2>&1; echo "exit $?"; continue ;;
		esac
		n=$((n + 1))
		rm -rf "$tmp/$s"; cp -R "$case/$s" "$tmp/$s"
		for f in "$tmp/$s"/*; do
			for t in $(cat "$case/transform" 2>/dev/null); do
				case $t in
				crlf) sed 's/$/\r/' "$f" >"$f.t" && mv "$f.t" "$f" ;;
				bom) { printf '\357\273\277'; cat "$f"; } >"$f.t" && mv "$f.t" "$f" ;;
				esac
			done
		done
		echo "== boot $n ($s)"
		invoke "$root" "$tmp/$s"
	done <<EOF
$boots
EOF
	if [ "$n" = 0 ]; then echo "== boot 1 (no seed)"; invoke "$root" ""; fi
	echo "== files"
	(cd "$root" && find . \( -path ./var/log -o -path ./usr \) -prune -o \( -type d -o -type f \) -print | sort | while IFS= read -r f; do
		[ "$f" = . ] && continue
		if [ -d "$f" ]; then echo "d $(stat -c %a "$f") ${f#./}"; continue; fi
		echo "f $(stat -c %a "$f") ${f#./}"
		sed 's/^/  /' "$f"
	done)
	echo "== log"
	sed 's/^[0-9-]* [0-9:]* //' "$root/var/log/vmenv-nocloud.log" 2>/dev/null
}

fail=0 total=0
check() { # name expected-file actual-file
	total=$((total + 1))
	if [ "$update" = 1 ]; then
		cp "$3" "$2"; echo "updated $1"
	elif [ ! -f "$2" ]; then
		echo "not ok $1: no expected file ${2#$here/}"; fail=$((fail + 1))
	elif diff -u "$2" "$3" >"$tmp/diff"; then
		echo "ok $1"
	else
		echo "not ok $1"; sed 's/^/    /' "$tmp/diff"; fail=$((fail + 1))
	fi
}

want() { [ -z "$names" ] && return 0; for w in $names; do [ "$w" = "$1" ] && return 0; done; return 1; }

for case in "$here"/cases/*/; do
	case=${case%/}
	name=${case##*/}
	want "$name" || continue
	root=$tmp/root-$name
	base_root "$root"
	[ -d "$case/root" ] && cp -R "$case/root/." "$root/"
	transcript "$case" "$root" >"$tmp/out" 2>&1
	check "$name" "$case/expected" "$tmp/out"
done

for y in "$here"/yaml/*.yaml; do
	[ -f "$y" ] || continue
	name=yaml/$(basename "$y" .yaml)
	want "$name" || continue
	{ PATH=$TPATH "$SH" "$script" --dump-yaml "$y" 2>&1; echo "exit $?"; } >"$tmp/out"
	check "$name" "${y%.yaml}.expected" "$tmp/out"
done

[ "$total" -gt 0 ] || { echo "run.sh: no test matched" >&2; exit 2; }
echo "$((total - fail))/$total passed ($shell)"
[ "$fail" = 0 ]
