#!/bin/bash
# kill -9 of a chunk server during an import: after restart no torn object
# is visible (every object file, raw or packed, hashes to its name) and
# data is intact.
. "$(dirname "$0")/lib.sh"
cluster_up --chunk-servers 3 --replicas 2

# half random (stored raw), half text (stored packed, as .z files)
{
	head -c $((48 * 1024 * 1024)) /dev/urandom
	seq 1 100000000 | head -c $((48 * 1024 * 1024))
} >"$tmp/a.img"
vmirctl import big "$tmp/a.img" --chunk-size 64K >"$tmp/import.log" 2>&1 &
ipid=$!
# let the import get going, then kill a chunk server hard
for i in $(seq 1 100); do
	[ "$(find "$cluster/chunkd.2/data" -type f | wc -l)" -gt 20 ] && break
	sleep 0.05
done
echo "killing chunkd.2 with $(find "$cluster/chunkd.2/data" -type f | wc -l) files stored"
vmir-cluster stop "$cluster" chunkd.2 --kill
wait $ipid
irc=$?
cat "$tmp/import.log"
vmir-cluster start "$cluster" chunkd.2 || fail "restart"

step "every stored object hashes to its name"
bad=$(python3 - "$cluster" <<'PY'
import glob, hashlib, os, subprocess, sys
bad = 0
for f in glob.glob(sys.argv[1] + "/chunkd.*/data/objects/*/*"):
    name = os.path.basename(f)
    if name.endswith(".z"):
        # a packed object: its name is the hash of what it unpacks to
        name = name[:-2]
        r = subprocess.run(["zstd", "-dcq", f], capture_output=True)
        data = r.stdout if r.returncode == 0 else b""
    else:
        with open(f, "rb") as fh:
            data = fh.read()
    if hashlib.blake2b(data, digest_size=32).hexdigest() != name:
        print("torn object:", f, file=sys.stderr)
        bad += 1
print(bad)
PY
)
[ $bad -eq 0 ] || fail "$bad torn objects"
packed=$(find "$cluster"/chunkd.*/data/objects -name '*.z' | wc -l)
[ "$packed" -gt 0 ] || fail "no object was stored packed"

step "import with one server killed still completed (R=2 of the other two)"
[ $irc -eq 0 ] || fail "import failed with exit $irc"
vmirctl export big "$tmp/a.out" || fail "export"
cmp "$tmp/a.img" "$tmp/a.out" || fail "export differs"
echo ok
