#!/bin/bash
# The environment workloads expect, as podman gives it: HOME (the image's
# passwd; else /root for root, / for others), HOSTNAME, TERM with -t,
# container=forge, docker's default PATH; /etc/hosts, /etc/hostname and
# /etc/resolv.conf made per run. A hostname cannot inject lines into
# /etc/hosts; a FIFO or /dev/zero as the image's /etc/passwd cannot hang.
source "$(dirname "$0")/../runtime/lib-run.sh" || exit 1

out=$(r -- /bin/th env)
expect_line "$out" "HOME=/root"
expect_line "$out" "HOSTNAME=forge"
expect_line "$out" "container=forge"
expect_line "$out" "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
! grep -q '^TERM=' <<<"$out" || fail "TERM set without a terminal"
expect_line "$(r --user alice -- /bin/th env HOME)" "HOME=/home/alice"
expect_line "$(r --user 1000 -- /bin/th env HOME)" "HOME=/home/alice"
expect_line "$(r --user 4242 -- /bin/th env HOME)" "HOME=/"
expect_line "$(r --hostname web1 -- /bin/th env HOSTNAME)" "HOSTNAME=web1"
# the image's and -e values win
expect_line "$(r -e HOME=/srv -e container=other -- /bin/th env)" "HOME=/srv"
expect_line "$(r -e container=other -- /bin/th env container)" "container=other"
# no passwd at all: /root for root, / for others
nopw=$T/nopw
mkdir -p "$nopw/bin"
cp "$FORGE_TESTHELPER" "$nopw/bin/th"
expect_line "$("$FORGE" run --rootfs "$nopw" -- /bin/th env HOME)" "HOME=/root"
expect_line "$("$FORGE" run --rootfs "$nopw" --user 7:7 -- /bin/th env HOME)" "HOME=/"
if command -v script >/dev/null; then
	out=$(script -qec "$FORGE run --rootfs $ROOTFS -t -- /bin/th env TERM" /dev/null | tr -d '\r\0' | sed 's/\^@//g')
	expect_line "$out" "TERM=xterm"
fi

# /etc files: made per run, over the image's
out=$(r --hostname web1 -- /bin/sh -c 'cat /etc/hostname; cat /etc/hosts')
expect_line "$out" "web1"
grep -qE '^127\.0\.0\.1[[:space:]]+localhost' <<<"$out" || fail "no localhost in /etc/hosts: $out"
grep -qE '^[0-9.]+[[:space:]]+web1$' <<<"$out" || fail "the hostname is not in /etc/hosts: $out"
out=$(r -- /bin/th read /etc/resolv.conf)
! grep -q '^nameserver' <<<"$out" || fail "--network none has a name server: $out"
if [ -f /etc/resolv.conf ]; then
	[ "$(r --network host -- /bin/th read /etc/resolv.conf)" = "$(cat /etc/resolv.conf)" ] ||
		fail "--network host: not the host's resolv.conf"
fi
# nothing is written to the image (the rootfs is the lower layer)
[ ! -e "$ROOTFS/etc/hostname" ] && [ ! -e "$ROOTFS/etc/hosts" ] || fail "/etc files written into the image"
# an image whose /etc/resolv.conf is a dangling symlink still runs
ln -s ../run/systemd/resolve/stub-resolv.conf "$ROOTFS/etc/resolv.conf"
expect_line "$(r -- /bin/th echo ok)" "ok"
rm "$ROOTFS/etc/resolv.conf"

# run: steps get the files too, but they stay out of the layer: no empty
# mount points left, the image's own file untouched, a step's writes to
# them not kept, its other /etc files kept
ctx=$T/ctx
mkdir -p "$ctx/bin" "$ctx/etc"
cp "$FORGE_TESTHELPER" "$ctx/bin/th"
cp "$BUSYBOX" "$ctx/bin/sh"
echo image-hosts >"$ctx/etc/hosts"
# etc_spec FILE NAME RUN [ENTRY...]: a spec of the helper and a shell, the
# files: ENTRYs, then a run: step RUN
etc_spec() {
	local file=$1 name=$2 run=$3
	shift 3
	{
		printf 'forge: 1\nname: %s\nlayers:\n  - files:\n' "$name"
		printf '      - %s\n' '{src: bin/th, dest: /bin/th, mode: "0755"}' '{src: bin/sh, dest: /bin/sh, mode: "0755"}' "$@"
		printf '  - run: %s\n' "$run"
	} >"$file"
}
etc_spec "$ctx/a.yaml" etc-a '/bin/th read /etc/hosts > /seen-hosts; echo 127.0.0.9 step >> /etc/hostname'
f build -q "$ctx/a.yaml" >/dev/null || fail "build etc-a"
f export etc-a --format tar -o "$T/a.tar" >/dev/null
! tar tf "$T/a.tar" | grep -q '^etc' || fail "a run: step left /etc mount points: $(tar tf "$T/a.tar" | grep ^etc)"
tar xOf "$T/a.tar" ./seen-hosts 2>/dev/null | grep -q localhost || tar xOf "$T/a.tar" seen-hosts | grep -q localhost ||
	fail "the run: step had no /etc/hosts"
etc_spec "$ctx/b.yaml" etc-b 'echo 127.0.0.9 step >> /etc/hosts; echo kept > /etc/mine' '{src: etc/hosts, dest: /etc/hosts}'
f build -q "$ctx/b.yaml" >/dev/null || fail "build etc-b"
f export etc-b --format dir -o "$T/b" >/dev/null
[ "$(cat "$T/b/etc/hosts")" = image-hosts ] || fail "the image's /etc/hosts changed: $(cat "$T/b/etc/hosts")"
[ "$(cat "$T/b/etc/mine")" = kept ] || fail "a run: step's own /etc file was lost"
[ ! -e "$T/b/etc/hostname" ] || fail "an empty /etc/hostname mount point was left"

# hostname injection: refused, from the command line (a usage error, 2) or an
# image (125)
for h in $'evil\n10.0.0.1 bank' 'a b' '-x' "$(printf 'x%.0s' $(seq 64))"; do
	expect_status 2 r --hostname "$h" -- /bin/th true 2>/dev/null
done

# the image's /etc/passwd as a FIFO or /dev/zero: a clear error, no hang
rm "$ROOTFS/etc/passwd"
mkfifo "$ROOTFS/etc/passwd"
err=$(timeout 20 "$FORGE" run --rootfs "$ROOTFS" --user alice -- /bin/th true 2>&1) && st=0 || st=$?
[ "$st" = 125 ] || fail "a FIFO as /etc/passwd: status $st: $err"
grep -q "/etc/passwd.*not a regular file" <<<"$err" || fail "a FIFO as /etc/passwd: $err"
expect_line "$(timeout 20 "$FORGE" run --rootfs "$ROOTFS" -- /bin/th env HOME)" "HOME=/root"
rm "$ROOTFS/etc/passwd"
ln -s /dev/zero "$ROOTFS/etc/passwd"
expect_status 125 timeout 20 "$FORGE" run --rootfs "$ROOTFS" --user alice -- /bin/th true
leftover_check
echo PASS
