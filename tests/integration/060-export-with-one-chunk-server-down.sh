#!/bin/bash
# With R=2 and one of three chunk servers stopped, import, clone and export
# still work and are byte-identical.
. "$(dirname "$0")/lib.sh"
cluster_up --chunk-servers 3 --replicas 2

make_image "$tmp/a.img" $((11 * 1024 * 1024 + 1))
vmirctl import img "$tmp/a.img" || fail "import"
vmir-cluster stop "$cluster" chunkd.1
vmirctl export img "$tmp/a.out" || fail "export with chunkd.1 down"
cmp "$tmp/a.img" "$tmp/a.out" || fail "export differs"

step "import while down, then read it back with another server down"
make_image "$tmp/b.img" $((5 * 1024 * 1024))
dd if=/dev/urandom of="$tmp/b.img" bs=1M count=2 conv=notrunc status=none
vmirctl import img2 "$tmp/b.img" || fail "import with chunkd.1 down"
vmir-cluster start "$cluster" chunkd.1 || fail "restart chunkd.1"
vmir-cluster stop "$cluster" chunkd.3
vmirctl export img2 "$tmp/b.out" || fail "export with chunkd.3 down"
cmp "$tmp/b.img" "$tmp/b.out" || fail "img2 differs"
echo ok
