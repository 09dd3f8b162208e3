#!/bin/bash
# Bad CLI arguments, unknown images and unreachable servers give clear
# errors, non-zero exit, and lose nothing.
. "$(dirname "$0")/lib.sh"
cluster_up

make_image "$tmp/a.img" $((2 * 1024 * 1024))
vmirctl import img "$tmp/a.img" || fail "import"

expect_err() {	# expect_err PATTERN CMD...
	local pat=$1; shift
	if "$@" >"$tmp/out" 2>"$tmp/err"; then fail "succeeded: $*"; fi
	grep -qiE "$pat" "$tmp/err" || { cat "$tmp/err"; fail "no '$pat' in error of: $*"; }
	echo "ok: $* -> $(head -n 1 "$tmp/err")"
}
expect_err "nosuch" vmirctl export nosuch "$tmp/x"
expect_err "img@9|version" vmirctl export img@9 "$tmp/x"
expect_err "size" vmirctl create x --size 12Q
expect_err "chunk" vmirctl create x --size 1M --chunk-size 3000
expect_err "exist" vmirctl create img --size 1M
expect_err "name" vmirctl create 'bad/name' --size 1M
expect_err "no-such-file|No such file" vmirctl import y "$tmp/no-such-file"
expect_err "exist" vmirctl clone img img
expect_err "usage|unknown" vmirctl frobnicate
expect_err "usage|missing|argument" vmirctl import
expect_err "VMIR_CONF|--conf" env -u VMIR_CONF vmirctl list
expect_err "nosuch" vmirctl profile nosuch
expect_err "img@9|version" vmirctl profile img@9
expect_err "chunks" vmirctl profile img --chunks many
expect_err "no value" vmirctl attach img --no-prefetch=1

step "unreachable version server"
sed -e "s|^addr = .*|addr = 127.0.0.1:1|" -e "s|^key = .*|key = $cluster/cluster.key|" \
	"$VMIR_CONF" >"$tmp/unreach.conf"
expect_err "127.0.0.1:1" vmirctl --conf "$tmp/unreach.conf" list

step "a version without a profile says so"
vmirctl profile img | grep -q "no profile" || fail "vmirctl profile of a new image"

step "nothing was lost"
vmirctl export img "$tmp/a.out" || fail "export"
cmp "$tmp/a.img" "$tmp/a.out" || fail "image changed"
[ "$(vmirctl --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
	fail "failed commands left images behind"
echo ok
