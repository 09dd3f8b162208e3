#!/bin/bash
# The installed DKMS tree builds vmir.ko the way dkms does: the source
# tree copied to DKMS_TREE/vmir/VERSION/build, dkms.conf read with
# kernel_source_dir and dkms_tree set, its MAKE[0] run; the module lands
# at BUILT_MODULE_LOCATION with the version of the Makefile and the alias
# of its generic netlink family (which loads it on the helper's first
# request); CLEAN removes it again.
. "$(dirname "$0")/lib.sh"
kver=$(ls -1 /lib/modules 2>/dev/null | grep -- '-amd64$' | sort -V | tail -n 1)
kdir=/lib/modules/$kver/build
[ -n "$kver" ] && [ -f "$kdir/Makefile" ] ||
	skip "no -amd64 kernel headers in /lib/modules (scripts/deps kernel installs them)"
need_tools modinfo

root=$tmp/root
step "make install DESTDIR=$root PREFIX=/usr"
stage /usr "$root"
src=$root/usr/src/vmir-$version
[ -f "$src/dkms.conf" ] || fail "no dkms.conf in $src"
find "$src" -name '*.o' -o -name '*.ko' -o -name '*.mod*' | grep . &&
	fail "build products in the DKMS tree"

dkms_tree=$tmp/dkms
build=$dkms_tree/vmir/$version/build
mkdir -p "${build%/build}"
cp -a "$src" "$build"

step "dkms.conf's MAKE[0] against $kver"
(
	set -e
	kernel_source_dir=$kdir
	kernelver=$kver
	cd "$build"
	. ./dkms.conf
	[ "$PACKAGE_NAME" = vmir ] && [ "$PACKAGE_VERSION" = "$version" ] ||
		{ echo "dkms.conf names $PACKAGE_NAME $PACKAGE_VERSION" >&2; exit 1; }
	[ "$AUTOINSTALL" = yes ] || { echo "AUTOINSTALL is not yes" >&2; exit 1; }
	echo "${MAKE[0]}"
	eval "${MAKE[0]}" >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log" >&2; exit 1; }
	echo "$build/${BUILT_MODULE_LOCATION[0]}${BUILT_MODULE_NAME[0]}.ko" >"$tmp/ko"
	echo "$CLEAN" >"$tmp/clean"
) || fail "the DKMS build failed"
ko=$(cat "$tmp/ko")
[ -f "$ko" ] || fail "no module at BUILT_MODULE_LOCATION: $ko"
v=$(modinfo -F version "$ko")
[ "$v" = "$version" ] || fail "modinfo version '$v', want $version"
modinfo -F alias "$ko" | grep -qx 'net-pf-16-proto-16-family-vmir' ||
	fail "no alias of the generic netlink family vmir: $(modinfo -F alias "$ko")"
[ "$(modinfo -F vermagic "$ko" | cut -d' ' -f1)" = "$kver" ] ||
	fail "built for $(modinfo -F vermagic "$ko"), not $kver"

step "CLEAN"
(cd "$build" && kernel_source_dir=$kdir && eval "$(cat "$tmp/clean")") \
	>"$tmp/clean.log" 2>&1 || { cat "$tmp/clean.log" >&2; fail "CLEAN failed"; }
[ -e "$ko" ] && fail "CLEAN left $ko"
echo ok
