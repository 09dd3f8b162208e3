# SPDX-License-Identifier: GPL-2.0
# Sourced by the device tests (tests/kernel/device/NNN-name): the genl test
# library (scratch dir, fail/skip, wait_for, cleanup), plus a cluster on the
# guest's loopback (scratch on tmpfs) and a vmir-helper.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

BIN=$top/build/bin
PATH=$BIN:$top/tools:$PATH
for b in vmirctl vmir-helper vmir-chunkd vmir-versiond; do
	[ -x "$BIN/$b" ] || fail "$BIN/$b missing: run make first"
done
# the cluster lives on loopback (vm-run brings it up; a guest of another
# harness may not)
ip link set lo up 2>/dev/null || fail "cannot bring loopback up (ip link set lo up)"
cl=$scratch/cluster
hlog=$scratch/helper.log
export VMIR_CONF=$cl/vmir.conf
vmir_helper_pid=

dev_cleanup() {
	local rc=$?
	if [ $rc -ne 0 ] && [ -f "$hlog" ]; then
		echo "--- helper log (last 30 lines)"
		tail -n 30 "$hlog"
	fi
	[ -n "$vmir_helper_pid" ] && kill -9 "$vmir_helper_pid" 2>/dev/null
	# devices a failed test left attached; detached ones just fail here
	[ -f "$scratch/attached" ] && test_devs="$test_devs $(cat "$scratch/attached")"
	vmir-cluster down "$cl" >/dev/null 2>&1
	cleanup
}
trap dev_cleanup EXIT

# cluster_up [CHUNK_SIZE]: 3 chunk servers, R=2
cluster_up() {
	vmir-cluster up "$cl" --chunk-servers 3 --replicas 2 \
		--chunk-size "${1:-64K}" >"$scratch/cluster.log" 2>&1 ||
		{ cat "$scratch/cluster.log"; fail "vmir-cluster up failed"; }
}

# helper_start: run vmir-helper until it has registered ($HELPER_ARGS:
# more options)
helper_start() {
	# shellcheck disable=SC2086
	vmir-helper --conf "$VMIR_CONF" --mirror-root "$scratch/mirrors" \
		--reg-dir "$scratch/reg" --timeout-ms "${HELPER_TIMEOUT_MS:-60000}" \
		${HELPER_ARGS:-} >>"$hlog" 2>&1 &
	vmir_helper_pid=$!
	helper_pids="$helper_pids $vmir_helper_pid"
	wait_for "grep -q 'registered with the vmir module' $hlog" 10 ||
		fail "vmir-helper did not register"
	: >"$hlog.mark"
}

helper_kill9() {
	kill -9 "$vmir_helper_pid"
	wait "$vmir_helper_pid" 2>/dev/null
	helper_pids=$(echo " $helper_pids " | sed "s/ $vmir_helper_pid / /")
	sed -i 's/registered with the vmir module/(registered before)/' "$hlog"
	vmir_helper_pid=
}

# attach REF [ARGS...]: prints the device path, remembers it for cleanup
attach() {
	local dev
	dev=$(vmirctl attach "$@") || fail "vmirctl attach $* failed"
	case $dev in /dev/vmir[0-9]*) ;; *) fail "attach printed '$dev'" ;; esac
	# attach runs in $(...): record the device in a file, not a variable
	echo "${dev#/dev/vmir}" >>"$scratch/attached"
	wait_for "[ -b $dev ]" 5 || fail "$dev did not appear"
	echo "$dev"
}

detach() {
	vmirctl detach "$1" || fail "vmirctl detach $1 failed"
	test_devs=$(echo " $test_devs " | sed "s/ ${1#/dev/vmir} / /")
}

# jfield DEV KEY: one field of vmirctl status --json
jfield() {
	vmirctl status "$1" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# import_image NAME FILE: prints NAME@VER
import_image() {
	vmirctl import "$1" "$2" >"$scratch/import.log" 2>&1 ||
		{ cat "$scratch/import.log"; fail "vmirctl import $1 $2 failed"; }
}

# write_at FILE_OR_DEV OFFSET LEN SEED: deterministic bytes at OFFSET
write_at() {
	python3 - "$@" <<'PY'
import os, sys, random
path, off, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = random.Random(seed).randbytes(n)
fd = os.open(path, os.O_WRONLY)
os.pwrite(fd, data, off)
os.fsync(fd)
os.close(fd)
PY
}
