#!/bin/bash
# A publish acknowledged by the version server survives kill -9 of it.
. "$(dirname "$0")/lib.sh"
cluster_up

make_image "$tmp/a.img" $((3 * 1024 * 1024 + 99))
vmirctl import img "$tmp/a.img" || fail "import"
dd if=/dev/urandom of="$tmp/a.img" bs=64K count=3 seek=7 conv=notrunc status=none
vmirctl import img "$tmp/a.img" || fail "import v2"
vmirctl clone img@2 twin || fail "clone"
vmir-cluster stop "$cluster" versiond --kill
vmir-cluster start "$cluster" versiond || fail "restart versiond"
vmirctl --json versions img | python3 -c 'import json,sys; v=json.load(sys.stdin); assert [x["version"] for x in v] == [1, 2], v' ||
	fail "versions lost"
vmirctl export twin "$tmp/t.out" || fail "export clone"
cmp "$tmp/a.img" "$tmp/t.out" || fail "clone differs"

step "a torn tail record is dropped at restart, state before it kept"
vmir-cluster stop "$cluster" versiond --kill
# a record header saying 255 bytes of payload, and 7 of them: an append
# cut by the crash
printf 'VREC\002\000\000\000\377\000\000\000partial' >>"$cluster/versiond/data/versiond.log"
vmir-cluster start "$cluster" versiond || fail "restart with torn tail"
vmirctl export img@2 "$tmp/b.out" || fail "export after torn tail"
cmp "$tmp/a.img" "$tmp/b.out" || fail "v2 differs after torn tail"
echo ok
