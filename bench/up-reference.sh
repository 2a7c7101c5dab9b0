#!/usr/bin/env bash
# The reference for `vmenv up` of a new machine (bench/lifecycle.mjs): what a user would
# script with virsh and OpenSSH to get the same machine running and reachable.
#   1. a qcow2 overlay backed by the box's volume (vol-create-as --backing-vol)
#   2. the NoCloud seed ISO from the same documents, with the same tool, uploaded as a volume
#   3. `virsh define` of the same domain XML, `virsh start`
#   4. `virsh net-dhcp-leases --mac` every 100 ms until the MAC has an address
#   5. `ssh … true` from the guests' network namespace every 100 ms until it succeeds
# Both waits are bounded by REF_TIMEOUT seconds (default 180).
#
# usage: up-reference.sh URI POOL NAME BASE_VOLUME_PATH CAPACITY_BYTES SEED_DIR DOMAIN_XML NETWORK MAC NETNS USER KEY
set -euo pipefail
uri=$1 pool=$2 name=$3 base=$4 capacity=$5 seed_dir=$6 xml=$7 network=$8 mac=$9 netns=${10} user=${11} key=${12}
timeout=${REF_TIMEOUT:-180}

v() { virsh -q -c "$uri" "$@"; }

v vol-create-as "$pool" "$name.qcow2" "${capacity}b" --format qcow2 --backing-vol "$base" --backing-vol-format qcow2 >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
genisoimage -quiet -output "$tmp/seed.iso" -volid cidata -joliet -rock "$seed_dir"
v vol-create-as "$pool" "$name-seed.iso" "$(stat -c %s "$tmp/seed.iso")b" --format raw >/dev/null
v vol-upload --pool "$pool" "$name-seed.iso" "$tmp/seed.iso"

v define "$xml" >/dev/null
v start "$name" >/dev/null

deadline=$((SECONDS + timeout))
ip=
while :; do
  # `virsh net-dhcp-leases` columns: expiry date, expiry time, MAC, protocol, IP/prefix, hostname, client id.
  ip=$(v net-dhcp-leases "$network" --mac "$mac" | awk '$4 == "ipv4" { sub(/\/.*/, "", $5); print $5; exit }')
  [[ -n $ip ]] && break
  ((SECONDS < deadline)) || { echo "up-reference: no lease for $mac after ${timeout} s" >&2; exit 1; }
  sleep 0.1
done

until ip netns exec "$netns" ssh -F /dev/null -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10 \
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$user@$ip" true 2>/dev/null; do
  ((SECONDS < deadline)) || { echo "up-reference: no SSH on $ip after ${timeout} s" >&2; exit 1; }
  sleep 0.1
done
echo "$ip"
