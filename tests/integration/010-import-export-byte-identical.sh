#!/bin/bash
# import -> export is byte-identical for an unaligned image mixing zero and
# random regions; the export is sparse; every version stays standalone.
. "$(dirname "$0")/lib.sh"
cluster_up --chunk-servers 3 --replicas 2

size=$((37 * 1024 * 1024 + 12345))
make_image "$tmp/a.img" $size

step "import (chunk size 64K)"
vmirctl import img "$tmp/a.img" --chunk-size 64K || fail "import"
step "export latest"
vmirctl export img "$tmp/a.out" || fail "export"
cmp "$tmp/a.img" "$tmp/a.out" || fail "export differs from import"
[ "$(stat -c %s "$tmp/a.out")" -eq $size ] || fail "export size"
alloc=$(( $(stat -c %b "$tmp/a.out") * 512 ))
[ $alloc -lt $size ] || fail "export not sparse ($alloc bytes allocated of $size)"

step "second version: overwrite 1 MiB, import again"
cp "$tmp/a.img" "$tmp/b.img"
dd if=/dev/urandom of="$tmp/b.img" bs=1M seek=5 count=1 conv=notrunc status=none
vmirctl import img "$tmp/b.img" || fail "import v2"
vmirctl export img@2 "$tmp/b.out" || fail "export @2"
cmp "$tmp/b.img" "$tmp/b.out" || fail "v2 differs"
vmirctl export img@1 "$tmp/a2.out" || fail "export @1"
cmp "$tmp/a.img" "$tmp/a2.out" || fail "v1 changed after v2 was published"

step "versions and info"
vmirctl versions img | grep -q . || fail "versions"
vmirctl --json versions img | python3 -c 'import json,sys; v=json.load(sys.stdin); assert len(v) == 2, v' || fail "versions --json"
vmirctl info img@1 >/dev/null || fail "info"

step "a tiny image smaller than one chunk"
head -c 1000 /dev/urandom >"$tmp/tiny.img"
vmirctl import tiny "$tmp/tiny.img" || fail "import tiny"
vmirctl export tiny "$tmp/tiny.out" || fail "export tiny"
cmp "$tmp/tiny.img" "$tmp/tiny.out" || fail "tiny differs"
echo ok
