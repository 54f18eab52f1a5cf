#!/bin/bash
# An image's config is data, not authority: "dev.forge" container.mounts and
# network in an imported image give it neither host paths nor the host
# network, on `forge run` or carried on by `from:`. A spec's container.mounts
# src stays inside its build context (check and build: exit 2, SPEC:LINE:COL).
source "$(dirname "$0")/../runtime/lib-run.sh" || exit 1
source "$(dirname "$0")/lib-oci.sh" || exit 1
command -v jq >/dev/null || { echo "SKIP: jq is not installed" >&2; exit 77; }

hostnet=$(readlink /proc/self/ns/net)
mkdir -p "$ROOTFS/host"
oci_layout "$T/evil" "$ROOTFS" '. + {"dev.forge": {container: {mounts: [{src: "/", dest: "/host"}], network: "host"}}}'
f import "$T/evil" --tag evil:latest >/dev/null || fail "import the hostile layout"

check_confined() { # IMAGE: neither the host's / nor its network
	local out
	out=$(f run "$1" -- /bin/sh -c 'readlink /proc/self/ns/net; /bin/th mounts; /bin/th write /host/'"${T#/}"'/pwned x') || true
	! grep -qxF "$hostnet" <<<"$out" || fail "$1: the image got the host network"
	! grep -q ' /host ' <<<"$out" || fail "$1: the image got a mount on /host: $(grep ' /host ' <<<"$out")"
	[ ! -e "$T/pwned" ] || fail "$1: the image wrote the host's $T/pwned"
}
check_confined evil

# from: carries the config on, but not the mounts or the network
mkdir -p "$T/ctx"
printf 'forge: 1\nname: child\nfrom: evil\nconfig:\n  cmd: ["true"]\n' >"$T/ctx/child.yaml"
f build -q "$T/ctx/child.yaml" >/dev/null || fail "build from: evil"
check_confined child
! f inspect child | grep -q '"mounts"\|"network"' || fail "from: carried mounts or network on: $(f inspect child)"

# a spec's own mounts and network hold when that spec is run (its context)
mkdir -p "$T/ctx/data"
echo in-context >"$T/ctx/data/file"
cat >"$T/ctx/own.yaml" <<YAML
forge: 1
name: own
from: evil
container:
  network: host
  mounts:
    - {src: ./data, dest: /data, ro: true}
YAML
out=$(f run "$T/ctx/own.yaml" -- /bin/sh -c 'readlink /proc/self/ns/net; /bin/th read /data/file')
expect_line "$out" "$hostnet"
expect_line "$out" "in-context"
# ... and the image built from it carries neither
check_confined own

# container.mounts src outside the context: check and build say where (exit 2)
ln -s /etc "$T/ctx/etc-link"
for src in / ../ etc-link "$T"; do
	printf 'forge: 1\nname: bad\ncontainer:\n  mounts:\n    - {src: %s, dest: /x}\n' "$src" >"$T/ctx/bad.yaml"
	for cmd in check build; do
		err=$(f "$cmd" "$T/ctx/bad.yaml" 2>&1) && st=0 || st=$?
		[ "$st" = 2 ] || fail "forge $cmd with mounts src '$src' exited $st: $err"
		grep -qF "$T/ctx/bad.yaml:5:" <<<"$err" || fail "forge $cmd: no SPEC:LINE:COL for src '$src': $err"
		grep -q "outside the build context" <<<"$err" || fail "forge $cmd: '$src': $err"
	done
done
f images | grep -q '^bad' && fail "a rejected spec was stored"

# an image's Hostname cannot add lines to /etc/hosts
oci_layout "$T/evilhost" "$ROOTFS" '.config.Hostname = "x\n10.9.9.9 bank.example"'
f import "$T/evilhost" --tag evilhost:latest >/dev/null || fail "import"
err=$(f run evilhost -- /bin/th read /etc/hosts 2>&1) && st=0 || st=$?
[ "$st" = 125 ] || fail "an image Hostname with a newline ran (status $st): $err"
! grep -q bank <<<"$err" || fail "the image's Hostname reached /etc/hosts: $err"
echo PASS
