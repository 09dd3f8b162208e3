#!/bin/bash
# A client with the wrong cluster key is refused with a clear error; a key
# file readable by others is refused by servers and clients.
. "$(dirname "$0")/lib.sh"
cluster_up

vmirctl list >/dev/null || fail "list with the right key"
vmirctl keygen "$tmp/other.key" || fail "keygen"
[ "$(stat -c %a "$tmp/other.key")" = 600 ] || fail "keygen mode"
sed "s|^key = .*|key = $tmp/other.key|" "$VMIR_CONF" >"$tmp/bad.conf"
if vmirctl --conf "$tmp/bad.conf" list 2>"$tmp/err"; then
	fail "wrong key accepted"
fi
cat "$tmp/err"
grep -qi "key" "$tmp/err" || fail "error does not mention the key"
grep -q "authentication failed" "$cluster/versiond/log" || fail "server did not log the refusal"

step "key with mode 0644"
chmod 644 "$tmp/other.key"
if vmir-chunkd --listen 127.0.0.1:0 --dir "$tmp/c" --key "$tmp/other.key" 2>"$tmp/err"; then
	fail "server started with a 0644 key"
fi
grep -q "chmod 600" "$tmp/err" || { cat "$tmp/err"; fail "no hint to chmod 600"; }
echo ok
