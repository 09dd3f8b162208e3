#!/bin/bash
# A PUBLISH that gets no answer is sent again with the same publish token:
# vmir-versiond stopped (SIGSTOP) across an import's PUBLISH for longer
# than timeout_ms, then resumed (SIGCONT), applies the first PUBLISH and
# answers the retry with that version. The import succeeds once, and
# exactly one new version exists.
. "$(dirname "$0")/lib.sh"
cluster_up
versiond_stall_setup

make_image "$tmp/a.img" $((1024 * 1024))
vmirctl import img "$tmp/a.img" >/dev/null || fail "import v1"
# the new version: large enough that its upload outlasts the steps below
head -c $((96 * 1024 * 1024)) /dev/urandom >"$tmp/b.img"

step "import v2; stop versiond once its chunks upload, resume it past timeout_ms"
vmirctl -v import img "$tmp/b.img" >"$tmp/import.out" 2>"$tmp/import.err" &
ipid=$!
versiond_stop_when_uploading $ipid
versiond_stalled $ipid "import" "$tmp/import.err"
cat "$tmp/import.out"
vmirctl --json versions img | python3 -c 'import json,sys; v=json.load(sys.stdin); assert [x["version"] for x in v] == [1, 2], v' ||
	fail "not exactly one new version: $(vmirctl versions img)"
vmirctl export img "$tmp/out" >/dev/null || fail "export"
cmp "$tmp/b.img" "$tmp/out" || fail "version 2 differs from the import"
echo ok
