#!/bin/bash
# The bash completion of vmirctl offers exactly the commands of vmirctl's
# command table, each command's own options, paths where a FILE or DIR
# goes, and finds the command after --conf FILE.
. "$(dirname "$0")/lib.sh"
make -s -C "$top" all >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log" >&2; fail "make all"; }
vmirctl=$top/build/bin/vmirctl
. "$top/tools/bash-completion/vmirctl"
complete -p vmirctl | grep -q -- '-F _vmirctl' || fail "no completion registered for vmirctl"

# comp WORD...: the completions of the last word, sorted, one per line
comp() {
	COMP_WORDS=("$vmirctl" "$@")
	COMP_CWORD=$#
	COMPREPLY=()
	_vmirctl
	printf '%s\n' "${COMPREPLY[@]}" | sort
}
# the table as --help prints it: command, then its arguments
table=$("$vmirctl" --help | awk '/^commands:/ { c = 1; next } c && /^$/ { exit } c')
cmds=$(awk '{ print $1 }' <<<"$table" | sort)
[ "$(wc -l <<<"$cmds")" -ge 10 ] || fail "vmirctl --help lists too few commands"

step "commands"
[ "$(comp "")" = "$cmds" ] || fail "commands offered: $(comp "" | tr '\n' ' '), table: $(tr '\n' ' ' <<<"$cmds")"
[ "$(comp im)" = import ] || fail "'im' completes to '$(comp im)'"
[ "$(comp --conf x.conf im)" = import ] || fail "the command after --conf FILE is not found"
comp -- | grep -qx -- --conf || fail "global option --conf not offered"

step "the options of every command"
for c in $cmds; do
	want=$(grep -E "^  $c " <<<"$table" | grep -oE -- '\[?--[a-z][a-z-]*' | tr -d '[' | sort -u)
	got=$(comp "$c" --)
	for o in $want; do
		grep -qx -- "$o" <<<"$got" || fail "'$c --' does not offer $o (got: $(tr '\n' ' ' <<<"$got"))"
	done
	for o in $got; do
		[ "$o" = --json ] && continue
		grep -qx -- "$o" <<<"$want" || fail "'$c --' offers $o, not an option of $c"
	done
done
comp create x -- | grep -qx -- --size || fail "create: --size not offered"

step "paths"
p=$tmp/paths
mkdir -p "$p/d1" && : >"$p/f1"
[ "$(comp import img "$p/")" = "$(printf '%s\n' "$p/d1" "$p/f1")" ] ||
	fail "import FILE does not complete paths: $(comp import img "$p/")"
[ "$(comp attach img --mirror "$p/")" = "$p/d1" ] ||
	fail "attach --mirror DIR does not complete directories only: $(comp attach img --mirror "$p/")"
[ -z "$(comp create img --size "")" ] || fail "create --size offers something"
[ "$(comp --conf "$p/f")" = "$p/f1" ] || fail "--conf does not complete files"
[ -z "$(comp import img "$p/f1" "$p/")" ] || fail "import offers a third argument"
echo ok
