# SPDX-License-Identifier: GPL-2.0
# Sourced by the kernel tests (tests/kernel/<group>/NNN-name). On the host
# a test re-runs itself in the QEMU guest through vm-run; in the guest
# (VMIR_VM=1, vmir.ko loaded) it gets a scratch directory on tmpfs and
# these helpers. Exit 0 = pass, 77 = skip, anything else = fail.
set -u
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [ -z "${VMIR_VM:-}" ]; then
	exec "$top/tests/kernel/vm-run" "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" "$@"
fi

VG=$top/build/kernel/vmir-genl-test
scratch=$(mktemp -d /tmp/vmir-test.XXXXXX)
helper_pids=
test_devs=
test_mounts=		# mounted on test devices: undone before they go
test_mirror_mounts=	# holding mirrors: undone after the devices went
test_loops=		# loop devices: detached last

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "# $*"; }

[ -x "$VG" ] || fail "$VG missing (vm-run builds it from tests/kernel/lib/vmir-genl-test.c)"
grep -q '^vmir ' /proc/modules || fail "vmir.ko is not loaded"

cleanup() {
	local p d
	for p in $helper_pids; do kill "$p" 2>/dev/null; done
	for p in $helper_pids; do wait "$p" 2>/dev/null; done
	# filesystems on the test's devices first
	for d in $test_mounts; do umount "$d" 2>/dev/null; done
	# Removing fails parked requests, so background I/O can end.
	for d in $test_devs; do "$VG" remove --dev "$d" >/dev/null 2>&1; done
	for p in $(jobs -p); do kill "$p" 2>/dev/null; done
	wait
	# then what held the mirrors
	for d in $test_mirror_mounts; do umount "$d" 2>/dev/null; done
	for d in $test_loops; do losetup -d "$d" 2>/dev/null; done
	rm -rf "$scratch"
}
trap cleanup EXIT

# scratch_disk: prints the virtio disk vm-run added (--scratch-disk or
# --disk, serial vmir-scratch), waiting up to 5 s for it to appear
scratch_disk() {
	local s i
	modprobe virtio_blk 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		for s in /sys/block/vd*/serial; do
			[ -r "$s" ] && [ "$(cat "$s")" = vmir-scratch ] &&
				{ echo "/dev/$(basename "$(dirname "$s")")"; return 0; }
		done
		sleep 0.1
	done
	return 1
}

# mkimage FILE BYTES: random bytes, with every 4th 64K block zero (so
# zero chunks exist at 64K and smaller chunk sizes).
mkimage() {
	local f=$1 bytes=$2 i
	head -c "$bytes" /dev/urandom >"$f" || fail "cannot create $f"
	for ((i = 3; i * 65536 < bytes; i += 4)); do
		dd if=/dev/zero of="$f" bs=65536 seek=$i count=1 conv=notrunc \
			status=none
	done
	truncate -s "$bytes" "$f"
}

# add_dev ARGS...: ADD_DEVICE through the test client; prints the id and
# remembers it for cleanup.
add_dev() {
	local id
	id=$("$VG" add "$@") || fail "add $* failed"
	test_devs="$test_devs $id"
	wait_for "[ -b /dev/vmir$id ]" 5 || fail "/dev/vmir$id did not appear"
	echo "$id"
}

remove_dev() {
	"$VG" remove --dev "$1" || fail "remove of device $1 failed"
	test_devs=$(echo " $test_devs " | sed "s/ $1 / /")
}

# wait_for CONDITION SECONDS: poll a shell condition every 20 ms, for
# SECONDS times VMIR_TIME_SCALE (a slower guest kernel sets it).
wait_for() {
	local cond=$1 limit=$(( $2 * 50 * ${VMIR_TIME_SCALE:-1} )) i
	for ((i = 0; i < limit; i++)); do
		eval "$cond" && return 0
		sleep 0.02
	done
	return 1
}

# start_helper ARGS...: run the test client's helper mode in the
# background until it has registered; sets helper_pid.
start_helper() {
	local ready=$scratch/helper-ready.$RANDOM
	"$VG" helper --ready-file "$ready" "$@" &
	helper_pid=$!
	helper_pids="$helper_pids $helper_pid"
	wait_for "[ -f $ready ]" 10 || fail "helper did not register"
}

stop_helper() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	helper_pids=$(echo " $helper_pids " | sed "s/ $1 / /")
}

# status_field DEV NAME: one value of GET_STATUS.
status_field() {
	"$VG" status --dev "$1" | sed -n "s/^$2=//p"
}

# state_field DEV NAME: present/dirty/commit ranges of GET_STATE.
state_field() {
	"$VG" state --dev "$1" | sed -n "s/^$2=//p"
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# count_lines PATTERN FILE
count_lines() {
	grep -c -- "$1" "$2" 2>/dev/null || true
}
