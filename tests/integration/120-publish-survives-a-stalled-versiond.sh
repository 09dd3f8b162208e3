#!/bin/bash
# A PUBLISH that gets no answer is sent again with the same publish token:
# vmir-versiond stopped (SIGSTOP) across an import's PUBLISH for longer
# than timeout_ms, then resumed (SIGCONT), applies the first PUBLISH and
# answers the retry with that version. The import succeeds once, and
# exactly one new version exists.
. "$(dirname "$0")/lib.sh"
cluster_up
sed -i 's/^\[cluster\]$/[cluster]\ntimeout_ms = 700/' "$VMIR_CONF"
grep -q '^timeout_ms = 700' "$VMIR_CONF" || fail "cannot set timeout_ms"
vpid=$(cat "$cluster/versiond/pid")
vport=${vport:-$(sed 's/.*://' "$cluster/versiond/addr")}
resume() { kill -CONT "$vpid" 2>/dev/null; }
trap 'resume; cleanup' EXIT

make_image "$tmp/a.img" $((1024 * 1024))
vmirctl import img "$tmp/a.img" >/dev/null || fail "import v1"
# the new version: large enough that its upload outlasts the steps below
head -c $((96 * 1024 * 1024)) /dev/urandom >"$tmp/b.img"

step "import v2; stop versiond once its chunks upload (LOOKUP done)"
before=$(objects_on_disk)
vmirctl -v import img "$tmp/b.img" >"$tmp/import.out" 2>"$tmp/import.err" &
ipid=$!
for i in $(seq 1 500); do
	[ "$(objects_on_disk)" -gt "$before" ] && break
	kill -0 "$ipid" 2>/dev/null || break
	sleep 0.01
done
kill -STOP "$vpid" || fail "cannot stop versiond"
kill -0 "$ipid" 2>/dev/null || { resume; fail "import ended before versiond was stopped"; }

step "wait for the PUBLISH to reach the stopped versiond, then past timeout_ms"
for i in $(seq 1 1000); do
	# bytes waiting in versiond's end of a connection: the PUBLISH
	ss -tnH state established "( sport = :$vport )" | awk '$1 > 0 { f = 1 } END { exit !f }' && break
	kill -0 "$ipid" 2>/dev/null || break
	sleep 0.01
done
kill -0 "$ipid" 2>/dev/null || { resume; fail "import ended while versiond was stopped: $(cat "$tmp/import.err")"; }
sleep 1.1
resume

wait "$ipid" || fail "import failed: $(tail -n 5 "$tmp/import.err")"
grep -q "sending it again with the same token" "$tmp/import.err" ||
	fail "the PUBLISH was not retried (versiond was not stalled across it?)"
cat "$tmp/import.out"
vmirctl --json versions img | python3 -c 'import json,sys; v=json.load(sys.stdin); assert [x["version"] for x in v] == [1, 2], v' ||
	fail "not exactly one new version: $(vmirctl versions img)"
vmirctl export img "$tmp/out" >/dev/null || fail "export"
cmp "$tmp/b.img" "$tmp/out" || fail "version 2 differs from the import"
echo ok
