#!/bin/bash
# A CREATE or CLONE that gets no answer is sent again with the same token,
# as a PUBLISH is: vmir-versiond stopped (SIGSTOP) across the import of a
# new image and across a clone for longer than timeout_ms, then resumed
# (SIGCONT), applies the first request and answers the retry with the
# image it made. Each command succeeds once; no "exists" error, no second
# image.
. "$(dirname "$0")/lib.sh"
cluster_up
versiond_stall_setup

images() {
	vmirctl --json list | python3 -c 'import json,sys; print(sorted(i["name"] for i in json.load(sys.stdin)))'
}

step "import of a new image; versiond stopped once its chunks upload"
head -c $((96 * 1024 * 1024)) /dev/urandom >"$tmp/a.img"
vmirctl -v import img "$tmp/a.img" >"$tmp/out" 2>"$tmp/err" &
ipid=$!
versiond_stop_when_uploading $ipid
versiond_stalled $ipid "import" "$tmp/err"
[ "$(images)" = "['img']" ] || fail "images after the import: $(images)"
vmirctl export img "$tmp/x" >/dev/null || fail "export"
cmp "$tmp/a.img" "$tmp/x" || fail "img differs from the import"

step "clone with versiond stopped across its CLONE"
kill -STOP "$vpid" || fail "cannot stop versiond"
vmirctl -v clone img vm >"$tmp/out" 2>"$tmp/err" &
versiond_stalled $! "clone" "$tmp/err"
[ "$(images)" = "['img', 'vm']" ] || fail "images after the clone: $(images)"
vmirctl info vm | grep -q "^parent: *img@1" || fail "vm's parent is not img@1"
echo ok
