# SPDX-License-Identifier: GPL-2.0
# Shared setup of the install tests: the integration tests' (the checkout
# in $top, a scratch $tmp removed at exit, a local cluster in $cluster
# stopped at exit, fail/skip/step), the version the Makefile gives, and
# make install.
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
version=$(sed -n 's/^VMIR_VERSION[ \t]*:=[ \t]*//p' "$top/Makefile")
[ -n "$version" ] || fail "no VMIR_VERSION in $top/Makefile"

# stage PREFIX DESTDIR [VAR=VALUE...]: make install into DESTDIR
stage() {
	local prefix=$1 dest=$2
	shift 2
	make -s -C "$top" install PREFIX="$prefix" DESTDIR="$dest" "$@" \
		>"$tmp/install.log" 2>&1 ||
		{ cat "$tmp/install.log" >&2; fail "make install PREFIX=$prefix DESTDIR=$dest $*"; }
}

# need_tools TOOL...: install what scripts/deps lists when one is missing
need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null && continue
		"$top/scripts/deps" user >&2 || true
		command -v "$t" >/dev/null ||
			skip "$t not installed and not installable (run scripts/deps user as root)"
	done
}
