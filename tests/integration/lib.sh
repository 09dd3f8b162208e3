# SPDX-License-Identifier: GPL-2.0
# Shared setup for integration tests: a scratch directory, a real local
# cluster on loopback (tools/vmir-cluster), cleanup on exit.
set -u
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$top/build/bin
PATH=$bin:$top/tools:$PATH
export PATH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmir-test.XXXXXX")
cluster=$tmp/cluster
export VMIR_CONF=$cluster/vmir.conf

cleanup() {
	[ -d "$cluster" ] && vmir-cluster down "$cluster" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skipped: $*"; exit 77; }
step() { echo "== $*"; }

cluster_up() {
	vmir-cluster up "$cluster" "$@" >/dev/null || fail "cluster did not start"
}

# total objects over all chunk servers, from the on-disk stores
objects_on_disk() {
	find "$cluster"/chunkd.*/data/objects -type f 2>/dev/null | wc -l
}

# make_image FILE SIZE_BYTES: zero and random regions, seeded, not
# chunk-aligned
make_image() {
	python3 - "$1" "$2" <<'PY'
import random, sys
path, size = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1234)
with open(path, "wb") as f:
    f.truncate(size)
    off = 0
    while off < size:
        n = min(size - off, rnd.choice([4096, 65536, 300000, 1 << 20]))
        if rnd.random() < 0.55:
            f.seek(off)
            f.write(rnd.randbytes(n))
        off += n
PY
}

# --- a version server stalled across one request (tests 120, 130) ------

# versiond_stall_setup: requests time out after 700 ms; versiond_resume
# runs at exit too
versiond_stall_setup() {
	sed -i 's/^\[cluster\]$/[cluster]\ntimeout_ms = 700/' "$VMIR_CONF"
	grep -q '^timeout_ms = 700' "$VMIR_CONF" || fail "cannot set timeout_ms"
	vpid=$(cat "$cluster/versiond/pid")
	vport=$(sed 's/.*://' "$cluster/versiond/addr")
	trap 'versiond_resume; cleanup' EXIT
}

versiond_resume() { kill -CONT "$vpid" 2>/dev/null; }

# versiond_stop_when_uploading PID: stop versiond once PID (an import)
# has stored its first object (its LOOKUP is done by then)
versiond_stop_when_uploading() {
	local pid=$1 before i
	before=$(objects_on_disk)
	for i in $(seq 1 500); do
		[ "$(objects_on_disk)" -gt "$before" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	kill -STOP "$vpid" || fail "cannot stop versiond"
	kill -0 "$pid" 2>/dev/null ||
		{ versiond_resume; fail "PID $pid ended before versiond was stopped"; }
}

# versiond_stalled PID WHAT ERRFILE: versiond is stopped; wait until PID's
# request waits in it, let timeout_ms pass, resume it; PID must succeed
# by a retry with the same token (its stderr in ERRFILE says so)
versiond_stalled() {
	local pid=$1 what=$2 err=$3 i
	for i in $(seq 1 1000); do
		# bytes waiting in versiond's end of a connection: the request
		ss -tnH state established "( sport = :$vport )" |
			awk '$1 > 0 { f = 1 } END { exit !f }' && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	kill -0 "$pid" 2>/dev/null ||
		{ versiond_resume; fail "$what ended while versiond was stopped: $(cat "$err")"; }
	sleep 1.1
	versiond_resume
	wait "$pid" || fail "$what failed: $(tail -n 5 "$err")"
	grep -q "sending it again with the same token" "$err" ||
		fail "the request of $what was not sent again (versiond not stalled across it?)"
}
