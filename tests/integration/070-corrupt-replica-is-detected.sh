#!/bin/bash
# A corrupted object on one replica is detected by its hash and the other
# replica serves the read: the corrupted bytes never reach the caller.
. "$(dirname "$0")/lib.sh"
cluster_up --chunk-servers 3 --replicas 2

head -c $((4 * 1024 * 1024)) /dev/urandom >"$tmp/a.img"
vmirctl import img "$tmp/a.img" --chunk-size 64K || fail "import"
n=0
for f in $(find "$cluster/chunkd.2/data/objects" -type f); do
	printf '\xff\x00\xff' | dd of="$f" bs=1 seek=17 conv=notrunc status=none
	n=$((n + 1))
done
[ $n -gt 0 ] || fail "chunkd.2 holds no object to corrupt"
echo "corrupted $n objects on chunkd.2"
vmirctl export img "$tmp/a.out" 2>"$tmp/err" || { cat "$tmp/err"; fail "export"; }
cmp "$tmp/a.img" "$tmp/a.out" || fail "corrupted bytes reached the export"
echo ok
