#!/usr/bin/env bash
# A run: step's layer holds what the command changed and nothing of what
# forge made to run it: `true` over a base without /dev, /proc, /sys (nor
# /etc) gives an empty layer, over one with /etc too; a step that writes
# /etc/hosts writes the per-run file forge provides, which no layer keeps (as
# docker's build steps), but keeps the directory it made next to it; one that
# creates a directory next to forge's mount points keeps that directory.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
bb_context "$c"
mkdir -p "$c/etcbase/etc"
sh_link_tar "$c/sh.tar"
echo "root:x:0:0:root:/root:/bin/sh" >"$c/etcbase/etc/passwd"

# layer_list IMAGE INDEX: the layer's entries, one a line
layer_list() {
	local blob
	blob=$STORE/blobs/sha256/$(f inspect "$1" | jq -r ".layers[$2].digest" | cut -d: -f2)
	zstd -dc "$blob" | tar -t
}

# scratch + busybox: no /dev, /proc, /sys, /etc
cat >"$c/bare.yaml" <<'Y'
forge: 1
name: bare
layers:
  - deb: bb.deb
  - archive: sh.tar
  - run: "true"
  - run: busybox mkdir -p /etc /var/x && echo "192.0.2.1 h" >> /etc/hosts
Y
f build -q "$c/bare.yaml" >/dev/null || fail "bare: build"
list=$(layer_list bare 2)
[ -z "$list" ] || fail "bare: 'true' left entries in its layer:
$list"
list=$(layer_list bare 3 | sort)
[ "$list" = "$(printf 'var/\nvar/x/')" ] ||
	fail "bare: the /etc/hosts step's layer is not var/, var/x/:
$list"

# a base with /etc: still nothing
cat >"$c/etc.yaml" <<'Y'
forge: 1
name: withetc
layers:
  - deb: bb.deb
  - archive: sh.tar
  - files: [{src: etcbase/etc/, dest: /etc/}]
  - run: "true"
Y
f build -q "$c/etc.yaml" >/dev/null || fail "withetc: build"
list=$(layer_list withetc 3)
[ -z "$list" ] || fail "withetc: 'true' left entries in its layer:
$list"

# the image still runs: forge makes the mount points again at run time
out=$(f run withetc -- /bin/sh -c 'busybox ls -d /proc/self /sys /dev/null') || fail "run: $out"
echo "build-run-clean: ok"
