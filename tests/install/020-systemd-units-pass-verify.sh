#!/bin/bash
# Every installed systemd unit passes systemd-analyze verify without a
# word: syntax, the programs its Exec lines name (installed under a
# scratch PREFIX), and its Documentation= man page (installed with it).
. "$(dirname "$0")/lib.sh"
need_tools systemd-analyze man

p=$tmp/prefix
step "make install PREFIX=$p SYSCONFDIR=$tmp/etc"
stage "$p" "" SYSCONFDIR="$tmp/etc" LDCONFIG=true
units=$p/lib/systemd/system
export MANPATH=$p/share/man
n=0
for u in "$units"/*.service; do
	case ${u##*/} in
	*@.service) u=${u%@.service}@data1.service ;;
	esac
	step "systemd-analyze verify ${u##*/}"
	systemd-analyze verify "$u" >"$tmp/verify.log" 2>&1
	rc=$?
	cat "$tmp/verify.log"
	[ $rc -eq 0 ] || fail "systemd-analyze verify ${u##*/} failed (exit $rc)"
	[ -s "$tmp/verify.log" ] && fail "systemd-analyze verify ${u##*/} warned"
	n=$((n + 1))
done
[ $n -eq 3 ] || fail "$n units installed, expected vmir-versiond, vmir-chunkd@ and vmir-helper"
grep -q "^ExecStart=$p/sbin/vmir-chunkd " "$units/vmir-chunkd@.service" ||
	fail "vmir-chunkd@.service does not run the installed vmir-chunkd"
echo ok
