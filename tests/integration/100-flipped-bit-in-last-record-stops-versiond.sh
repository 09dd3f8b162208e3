#!/bin/bash
# A complete log record that fails its checksum is corruption, never a torn
# write: one flipped bit in the last record stops vmir-versiond (the log is
# left as it was); a truncated last record is still dropped at start; with
# --recover-log versiond cuts the bad record after keeping a copy, and the
# cut version's number is not given out again.
. "$(dirname "$0")/lib.sh"
cluster_up
log=$cluster/versiond/data/versiond.log
vlog=$cluster/versiond/log

latest() {
	vmirctl --json info img | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'
}

make_image "$tmp/a.img" $((2 * 1024 * 1024 + 7))
vmirctl import img "$tmp/a.img" >/dev/null || fail "import v1"
dd if=/dev/urandom of="$tmp/a.img" bs=64K count=2 seek=3 conv=notrunc status=none
vmirctl import img "$tmp/a.img" >/dev/null || fail "import v2"
vmir-cluster stop "$cluster" versiond
cp "$log" "$tmp/good.log"

# offset and length of the last record (header: magic, type, reserved, len)
read -r last_off last_len < <(python3 - "$log" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
off = 16
while off < len(b):
    n = 12 + struct.unpack_from("<I", b, off + 8)[0] + 16
    last = off
    off += n
print(last, len(b) - last)
PY
)

step "one flipped bit in the last record: versiond refuses to start"
python3 - "$log" "$last_off" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(path, "rb").read())
b[off + 40] ^= 0x08		# inside the payload
open(path, "wb").write(b)
PY
cp "$log" "$tmp/bad.log"
if vmir-cluster start "$cluster" versiond 2>/dev/null; then
	fail "versiond started on a log whose last record is corrupt"
fi
grep -q "versiond.log: the last record, at offset $last_off .*fails its check" "$vlog" ||
	fail "no error naming the log and offset $last_off: $(tail -n 3 "$vlog")"
grep -q -- "--recover-log" "$vlog" || fail "the error does not name --recover-log"
cmp -s "$log" "$tmp/bad.log" || fail "the refused log was changed"

step "a truncated last record (a torn append) is dropped at start"
head -c $(( $(stat -c %s "$tmp/good.log") - 9 )) "$tmp/good.log" >"$log"
vmir-cluster start "$cluster" versiond || fail "versiond refused a torn tail"
grep -q "dropping an incomplete record at the end of the log ($((last_len - 9)) bytes at offset $last_off)" "$vlog" ||
	fail "no warning about the dropped record"
[ "$(latest)" = 1 ] || fail "latest is not 1 after dropping the torn v2"
vmir-cluster stop "$cluster" versiond

step "--recover-log cuts the corrupt record, keeps a copy, skips its number"
cp "$tmp/bad.log" "$log"
vmir-cluster start "$cluster" versiond --recover-log ||
	fail "versiond did not start with --recover-log"
copies=("$log".cut-*)
[ ${#copies[@]} = 1 ] && [ -f "${copies[0]}" ] || fail "no copy of the cut bytes"
grep -qF "are kept in ${copies[0]}" "$vlog" || fail "the copy's name was not printed"
[ "$(stat -c %s "${copies[0]}")" = "$last_len" ] || fail "copy has the wrong size"
cmp -s "${copies[0]}" <(tail -c "$last_len" "$tmp/bad.log") || fail "copy differs from the cut bytes"
[ "$(latest)" = 1 ] || fail "latest is not 1 after the cut"
echo changed >>"$tmp/a.img"
vmirctl import img "$tmp/a.img" >/dev/null || fail "import after recovery"
v=$(latest)
[ "$v" -gt 2 ] || fail "version $v after recovery: the cut version 2's number was reused"

step "the recovery is durable: a plain restart keeps the numbers"
vmir-cluster stop "$cluster" versiond
vmir-cluster start "$cluster" versiond || fail "plain restart after recovery"
[ "$(latest)" = "$v" ] || fail "latest changed across a restart"
vmirctl export img "$tmp/out" || fail "export"
cmp "$tmp/a.img" "$tmp/out" || fail "content of version $v differs"
echo ok
