#!/usr/bin/env bash
# The kernel package of an image is data from the image: its boot/vmlinuz-*
# as a FIFO, a symlink to /dev/zero, or its boot/ a symlink to a host
# directory must give an error at once, not a hang or a host kernel.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root
export FORGE_VMINIT=${FORGE_VMINIT:-$FORGE_BUILD/runtime/init/forge-vminit}
command -v ar >/dev/null || { echo "SKIP: ar (binutils) is not installed" >&2; exit 77; }

HOST=$T/host
mkdir -p "$HOST/boot"
stand_in_kernel "$HOST/boot/vmlinuz-6.1.0-host"
mkdir -p "$T/ctx"
echo 'forge: 1' >"$T/empty.yaml"
mkdeb() { # NAME: builds $T/ctx/NAME.deb from $T/d-NAME
	local n=$1
	echo 2.0 >"$T/debian-binary"
	tar -C "$T/d-$n" -cf "$T/data.tar" .
	tar -cf "$T/control.tar" -C "$T" debian-binary
	rm -f "$T/ctx/$n.deb"
	(cd "$T" && ar rc "ctx/$n.deb" debian-binary control.tar data.tar)
}
mkdir -p "$T/d-fifo/boot" && mkfifo "$T/d-fifo/boot/vmlinuz-6.1.0-x"
mkdir -p "$T/d-zero/boot" && ln -s /dev/zero "$T/d-zero/boot/vmlinuz-6.1.0-x"
mkdir -p "$T/d-link" && ln -s "$HOST/boot" "$T/d-link/boot"
for n in fifo zero link; do
	mkdeb $n
	printf 'forge: 1\nname: k%s\nlayers:\n  - files:\n      - {src: %s.deb, dest: /k.deb}\nvm:\n  kernel:\n    deb: %s.deb\n' "$n" "$n" "$n" >"$T/ctx/$n.yaml"
	f build -q "$T/ctx/$n.yaml" >/dev/null || fail "build k$n"
	st=0
	timeout -k 5 30 "$FORGE" --store "$STORE" export "k$n" --format disk -o "$T/$n.img" >"$T/$n.out" 2>&1 || st=$?
	[ "$st" != 124 ] && [ "$st" != 137 ] || fail "kernel package with $n: export hangs"
	[ "$st" = 1 ] || { cat "$T/$n.out"; fail "kernel package with $n: exit $st, expected 1"; }
	grep -q "boot/vmlinuz" "$T/$n.out" || { cat "$T/$n.out"; fail "kernel package with $n: the error does not name boot/vmlinuz"; }
done
echo OK
