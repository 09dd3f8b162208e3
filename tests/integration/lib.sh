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
