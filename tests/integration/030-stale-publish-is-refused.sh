#!/bin/bash
# A publish built on a version that is no longer the latest is refused,
# never merged; content stays the winner's.
. "$(dirname "$0")/lib.sh"
cluster_up

make_image "$tmp/a.img" $((1024 * 1024 + 5))
vmirctl import img "$tmp/a.img" --chunk-size 64K || fail "import"
"$top/build/itest/publish_race" img || fail "publish race"
vmirctl --json versions img | python3 -c 'import json,sys; v=json.load(sys.stdin); assert [x["version"] for x in v] == [1, 2, 3], v' ||
	fail "unexpected versions"
echo ok
