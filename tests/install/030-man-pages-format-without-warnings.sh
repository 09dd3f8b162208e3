#!/bin/bash
# The man pages format without a warning (groff -ww, man --warnings), and
# each documents every command and option its program's --help lists.
. "$(dirname "$0")/lib.sh"
need_tools groff man
make -s -C "$top" all >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log" >&2; fail "make all"; }
man=$top/docs/man
bin=$top/build/bin

n=0
for page in "$man"/*.[0-9]; do
	step "${page##*/}"
	LC_ALL=C.UTF-8 groff -man -ww -z "$page" >"$tmp/warn" 2>&1
	LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
		man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>>"$tmp/warn" >/dev/null
	[ -s "$tmp/warn" ] && { cat "$tmp/warn"; fail "${page##*/} formats with warnings"; }
	n=$((n + 1))
done
for page in vmirctl.8 vmir-helper.8 vmir-versiond.8 vmir-chunkd.8 vmir.conf.5; do
	[ -f "$man/$page" ] || fail "no man page $page"
done

# documented: OPT as roff writes it (\-\-name)
documented() { grep -qF -- "${2//-/\\-}" "$man/$1"; }

step "every option of every program"
for prog in vmirctl vmir-helper vmir-versiond vmir-chunkd; do
	opts=$("$bin/$prog" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
	[ -n "$opts" ] || fail "$prog --help lists no option"
	for o in $opts; do
		documented "$prog.8" "$o" || fail "$prog.8 does not document $o"
	done
done

step "every vmirctl command"
cmds=$("$bin/vmirctl" --help | awk '/^commands:/ { c = 1; next } c && /^$/ { exit } c { print $1 }')
[ "$(wc -w <<<"$cmds")" -ge 10 ] || fail "vmirctl --help lists too few commands: $cmds"
for c in $cmds; do
	grep -qE "^\.BI? $c( |$)" "$man/vmirctl.8" || fail "vmirctl.8 does not document the command $c"
done

step "every key of vmir.conf"
keys=$(grep -oE 'strcmp\(name, "[a-z_]+"\)' "$top/common/conf.c" | cut -d'"' -f2)
[ "$(wc -w <<<"$keys")" -ge 6 ] || fail "common/conf.c names too few keys: $keys"
for k in $keys; do
	grep -q "^\.BI $k " "$man/vmir.conf.5" || fail "vmir.conf.5 does not document $k"
	grep -q "^$k = " "$top/docs/vmir.conf.example" || fail "vmir.conf.example lacks $k"
done
echo "ok ($n pages)"
