#!/bin/bash
# Importing the same content twice, or cloning, adds no chunk objects; zero
# chunks are never stored; a clone is an independent image.
. "$(dirname "$0")/lib.sh"
cluster_up --chunk-servers 3 --replicas 2

make_image "$tmp/a.img" $((9 * 1024 * 1024 + 7))
vmirctl import base "$tmp/a.img" || fail "import"
n1=$(objects_on_disk)
[ "$n1" -gt 0 ] || fail "nothing stored"

step "re-import as a new version and as a new image"
vmirctl import base "$tmp/a.img" || fail "re-import"
vmirctl import other "$tmp/a.img" || fail "import other"
n2=$(objects_on_disk)
[ "$n2" -eq "$n1" ] || fail "re-import stored $((n2 - n1)) new objects"

step "clone"
vmirctl clone base@1 copy || fail "clone"
n3=$(objects_on_disk)
[ "$n3" -eq "$n1" ] || fail "clone stored $((n3 - n1)) new objects"
vmirctl export copy "$tmp/c.out" || fail "export clone"
cmp "$tmp/a.img" "$tmp/c.out" || fail "clone content differs"

step "all-zero image stores no object"
truncate -s 20M "$tmp/zero.img"
vmirctl import zero "$tmp/zero.img" || fail "import zero"
[ "$(objects_on_disk)" -eq "$n1" ] || fail "zero image stored objects"
vmirctl export zero "$tmp/z.out" || fail "export zero"
cmp "$tmp/zero.img" "$tmp/z.out" || fail "zero export differs"

step "deleting the clone leaves the source intact"
vmirctl rm copy || fail "rm clone"
vmirctl export base@1 "$tmp/a2.out" || fail "export after rm"
cmp "$tmp/a.img" "$tmp/a2.out" || fail "source changed"
if vmirctl export copy "$tmp/x" 2>/dev/null; then fail "deleted image still exports"; fi
echo ok
