#!/bin/bash
# Image identities are never reused: after a clone's source image is
# deleted and a new image takes its name, the clone's parent still names
# the deleted source (by its image id, flagged deleted), not the new image
# with unrelated content; across a restart of the version server too.
. "$(dirname "$0")/lib.sh"
cluster_up

field() {	# field NAME[@V] KEY: a field of vmirctl --json info
	vmirctl --json info "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

make_image "$tmp/a.img" $((1024 * 1024 + 5))
vmirctl import src "$tmp/a.img" >/dev/null || fail "import src"
vmirctl clone src vm >/dev/null || fail "clone"
src_id=$(field src image_id)
[ "$(field vm parent_image_id)" = "$src_id" ] || fail "clone's parent is not src's id"
[ "$(field vm parent_deleted)" = False ] || fail "live parent flagged deleted"

step "delete src, import unrelated content under the same name"
vmirctl rm src >/dev/null || fail "delete src"
head -c 300000 /dev/urandom >"$tmp/b.img"
vmirctl import src "$tmp/b.img" >/dev/null || fail "import new src"
new_id=$(field src image_id)
[ "$new_id" != "$src_id" ] || fail "the new src got the deleted image's id $src_id"

for when in before after; do
	step "the clone's parent is the deleted image ($when a versiond restart)"
	[ "$(field vm parent_image_id)" = "$src_id" ] ||
		fail "clone's parent id is $(field vm parent_image_id), not $src_id"
	[ "$(field vm parent_deleted)" = True ] || fail "parent not flagged deleted"
	vmirctl info vm | grep -q "^parent: *src@1 (deleted image, id $src_id)" ||
		fail "info does not say the parent was deleted: $(vmirctl info vm | grep parent)"
	vmirctl versions vm | grep -q "src@1 (deleted image, id $src_id)" ||
		fail "versions does not say the parent was deleted"
	vmir-cluster stop "$cluster" versiond
	vmir-cluster start "$cluster" versiond || fail "restart versiond"
done
vmirctl export vm "$tmp/vm.out" >/dev/null || fail "export clone"
cmp "$tmp/a.img" "$tmp/vm.out" || fail "clone content changed"
echo ok
