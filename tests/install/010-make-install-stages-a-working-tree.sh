#!/bin/bash
# make install DESTDIR=... PREFIX=/usr stages every file where it belongs;
# a program built with pkg-config against the staged header and library
# (shared and static) runs against the staged servers on loopback; the
# installed example configuration is one vmirctl reads; make uninstall
# leaves no file behind.
. "$(dirname "$0")/lib.sh"
need_tools pkg-config readelf cc
root=$tmp/root

step "make install DESTDIR=$root PREFIX=/usr"
stage /usr "$root"

step "every file in its place"
dk=usr/src/vmir-$version
for f in usr/bin/vmirctl usr/sbin/vmir-helper usr/sbin/vmir-versiond \
	 usr/sbin/vmir-chunkd; do
	[ -f "$root/$f" ] && [ -x "$root/$f" ] || fail "$f missing or not executable"
done
for f in usr/lib/libvmir.so.0 usr/lib/libvmir.a usr/include/vmir/libvmir.h \
	 usr/include/vmir/uapi/linux/vmir.h usr/lib/pkgconfig/vmir.pc \
	 usr/share/man/man8/vmirctl.8 usr/share/man/man8/vmir-helper.8 \
	 usr/share/man/man8/vmir-versiond.8 usr/share/man/man8/vmir-chunkd.8 \
	 usr/share/man/man5/vmir.conf.5 \
	 usr/lib/systemd/system/vmir-versiond.service \
	 usr/lib/systemd/system/vmir-chunkd@.service \
	 usr/lib/systemd/system/vmir-helper.service \
	 usr/lib/modules-load.d/vmir.conf \
	 usr/share/bash-completion/completions/vmirctl \
	 etc/vmir/vmir.conf.example \
	 $dk/dkms.conf $dk/Kbuild $dk/kmod/Kbuild $dk/kmod/vmir_main.c \
	 $dk/kmod/vmir_dev.h $dk/include/uapi/linux/vmir.h; do
	[ -f "$root/$f" ] || fail "$f not installed"
done
for f in "$top"/kmod/*.[ch]; do
	case $f in *.mod.c) continue ;; esac
	cmp -s "$f" "$root/$dk/kmod/${f##*/}" || fail "DKMS tree lacks kmod/${f##*/}"
done
[ "$(readlink "$root/usr/lib/libvmir.so")" = libvmir.so.0 ] ||
	fail "usr/lib/libvmir.so is not a link to libvmir.so.0"
readelf -d "$root/usr/lib/libvmir.so.0" | grep -q 'SONAME.*\[libvmir\.so\.0\]' ||
	fail "libvmir.so.0 has no soname libvmir.so.0"
grep -q '^vmir$' "$root/usr/lib/modules-load.d/vmir.conf" ||
	fail "modules-load.d/vmir.conf does not load vmir"
grep -rIn '@[A-Z][A-Z]*@' "$root" && fail "placeholders left in installed files"
grep -q "^ExecStart=/usr/sbin/vmir-helper --conf /etc/vmir/vmir.conf" \
	"$root/usr/lib/systemd/system/vmir-helper.service" ||
	fail "vmir-helper.service does not run /usr/sbin/vmir-helper"
grep -q "^PACKAGE_VERSION=\"$version\"$" "$root/$dk/dkms.conf" ||
	fail "dkms.conf does not say version $version"

step "pkg-config against the staged tree"
export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_PATH=$root/usr/lib/pkgconfig
# /usr/lib and /usr/include are system directories pkg-config drops
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
[ "$(pkg-config --modversion vmir)" = "$version" ] ||
	fail "pkg-config --modversion vmir: '$(pkg-config --modversion vmir 2>&1)', want $version"
cflags=$(pkg-config --cflags vmir) || fail "pkg-config --cflags vmir"
libs=$(pkg-config --libs vmir) || fail "pkg-config --libs vmir"
slibs=$(pkg-config --static --libs vmir) || fail "pkg-config --static --libs vmir"
echo "cflags: $cflags"
echo "libs: $libs"
[[ " $cflags " == *" -I$root/usr/include/vmir "* ]] || fail "cflags lack the staged include dir"
[[ " $libs " == *" -L$root/usr/lib "* ]] || fail "libs lack the staged lib dir"

step "a program against the staged header and library"
cat >"$tmp/prog.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <libvmir.h>

int main(int argc, char **argv)
{
	struct vmir_version_info vi;
	struct vmir_image_info *imgs;
	struct vmir_client *c;
	size_t n, i;

	if (vmir_client_open(argv[1], &c)) {
		fprintf(stderr, "open: %s\n", vmir_client_error(NULL));
		return 1;
	}
	if (vmir_image_create(c, argv[2], 1 << 20, 0, &vi) ||
	    vmir_image_list(c, &imgs, &n)) {
		fprintf(stderr, "%s\n", vmir_client_error(c));
		return 1;
	}
	for (i = 0; i < n; i++)
		printf("%s %llu\n", imgs[i].name,
		       (unsigned long long)imgs[i].size);
	free(imgs);
	vmir_client_close(c);
	return argc == 3 ? 0 : 2;
}
C
cc -Wall -Werror $cflags -o "$tmp/prog" "$tmp/prog.c" $libs ||
	fail "cannot build a program with pkg-config --cflags --libs vmir"
# the static library: libvmir.a by name, the rest as pkg-config says
cc -Wall -Werror $cflags -o "$tmp/prog.static" "$tmp/prog.c" \
	${slibs/-lvmir/-l:libvmir.a} ||
	fail "cannot build a program with pkg-config --static --libs vmir"
export LD_LIBRARY_PATH=$root/usr/lib
ldd "$tmp/prog" | grep -q "libvmir.so.0 => $root/usr/lib/libvmir.so.0" ||
	fail "prog does not load the staged libvmir.so.0: $(ldd "$tmp/prog")"
ldd "$tmp/prog.static" | grep -q libvmir && fail "prog.static loads libvmir"

step "the staged servers on loopback, the staged vmirctl"
bin=$tmp/bin
mkdir -p "$bin"
ln -s "$root"/usr/sbin/vmir-versiond "$root"/usr/sbin/vmir-chunkd \
      "$root"/usr/bin/vmirctl "$bin/"
VMIR_BIN=$bin "$top/tools/vmir-cluster" up "$cluster" --chunk-servers 2 \
	--replicas 2 >/dev/null || fail "the staged servers did not start"
"$tmp/prog" "$cluster/vmir.conf" shared >"$tmp/out" || fail "prog failed"
grep -qx "shared 1048576" "$tmp/out" || fail "prog did not list its image: $(cat "$tmp/out")"
"$tmp/prog.static" "$cluster/vmir.conf" static >"$tmp/out" || fail "prog.static failed"
grep -qx "static 1048576" "$tmp/out" || fail "prog.static did not list its image"

# the example configuration, with this cluster's addresses
conf=$tmp/etc/vmir.conf
mkdir -p "$tmp/etc"
cp "$cluster/cluster.key" "$tmp/etc/cluster.key"
vaddr=$(sed -n 's/^addr = //p' "$cluster/vmir.conf")
servers=$(sed -n 's/^servers = //p' "$cluster/vmir.conf")
sed -e "s/^addr = .*/addr = $vaddr/" -e "s/^servers = .*/servers = $servers/" \
	"$root/etc/vmir/vmir.conf.example" >"$conf"
"$root/usr/bin/vmirctl" --conf "$conf" list >"$tmp/out" ||
	fail "the staged vmirctl cannot use the example configuration"
grep -q '^shared ' "$tmp/out" && grep -q '^static ' "$tmp/out" ||
	fail "vmirctl list misses the programs' images: $(cat "$tmp/out")"

step "make uninstall leaves no file"
make -s -C "$top" uninstall PREFIX=/usr DESTDIR="$root" >"$tmp/uninstall.log" 2>&1 ||
	{ cat "$tmp/uninstall.log" >&2; fail "make uninstall"; }
left=$(find "$root" ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
[ -d "$root/$dk" ] && fail "make uninstall left the DKMS tree's directories"
[ -d "$root/usr/include/vmir" ] && fail "make uninstall left usr/include/vmir"

step "make uninstall keeps what it did not install"
stage /usr "$root"
echo mine >"$root/etc/vmir/vmir.conf"
make -s -C "$top" uninstall PREFIX=/usr DESTDIR="$root" >/dev/null 2>&1 ||
	fail "make uninstall (second)"
[ "$(find "$root" ! -type d)" = "$root/etc/vmir/vmir.conf" ] ||
	fail "make uninstall removed a vmir.conf it did not install, or left its own"
echo ok
