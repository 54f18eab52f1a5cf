#!/usr/bin/env bash
# Reproducibility: the same spec and inputs give the same digest in another
# directory, another store, under another umask, with files created in
# another order and with other mtimes. --check passes.
source "$FORGE_SRC/tests/integration/lib.sh"

mkctx() { # DIR ORDER
	local d=$1
	mkdir -p "$d/app/sub"
	if [ "$2" = fwd ]; then
		echo alpha >"$d/app/a.txt"; echo beta >"$d/app/sub/b.txt"; printf '#!/bin/sh\necho hi\n' >"$d/app/run.sh"
	else
		printf '#!/bin/sh\necho hi\n' >"$d/app/run.sh"; echo beta >"$d/app/sub/b.txt"; echo alpha >"$d/app/a.txt"
	fi
	chmod 755 "$d/app/run.sh"
	ln -sf a.txt "$d/app/link"
	mkdir -p "$d/arch/etc" && echo conf >"$d/arch/etc/x.conf"
	tar -C "$d/arch" -cf "$d/root.tar" etc
	cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$d/bb.deb"
	cat >"$d/spec.yaml" <<'Y'
forge: 1
name: repro
source_date_epoch: 1600000000
layers:
  - deb: bb.deb
  - archive: root.tar
    dest: /srv
  - files:
      - {src: app/, dest: /opt/app/}
      - {src: app/a.txt, dest: /etc/, mode: "0600", owner: "1000:1000"}
config:
  entrypoint: [/bin/busybox, sh]
  env: {A: "1"}
Y
}

mkctx "$T/one" fwd
d1=$(f build -q "$T/one/spec.yaml")

(umask 077 && mkctx "$T/two" rev)
# an archive is content: its modes are what it says, so both use the same one
cp "$T/one/root.tar" "$T/two/root.tar"
touch -d '2001-02-03 04:05:06' "$T/two/app/a.txt" "$T/two/app/sub"
touch -d '2030-01-01' "$T/two/app/run.sh"
d2=$("$FORGE" --store "$T/store2" build -q "$T/two/spec.yaml")
[ "$d1" = "$d2" ] || fail "digests differ: $d1 vs $d2"

# byte-identical layer blobs too
for l in $(f inspect repro | jq -r '.layers[].digest'); do
	cmp "$STORE/blobs/sha256/${l#sha256:}" "$T/store2/blobs/sha256/${l#sha256:}" || fail "layer $l differs"
done

# what the tar holds: sorted, clamped mtimes, numeric owners, normalised modes
zstd -dc "$STORE/blobs/sha256/$(f inspect repro | jq -r '.layers[2].digest' | cut -d: -f2)" >"$T/l3.tar"
tar --numeric-owner -tvf "$T/l3.tar" >"$T/l3.list"
grep -q -- '-rw------- 1000/1000 .* etc/a.txt' "$T/l3.list" || { cat "$T/l3.list"; fail "mode/owner of etc/a.txt"; }
grep -q -- '-rwxr-xr-x 0/0 .* opt/app/run.sh' "$T/l3.list" || fail "mode of run.sh"
grep -q -- 'opt/app/link -> a.txt' "$T/l3.list" || fail "symlink kept"
! grep -qv '2020-09-13' "$T/l3.list" || { cat "$T/l3.list"; fail "mtimes not clamped to source_date_epoch"; }
tar -tf "$T/l3.tar" >"$T/names"
sort -c "$T/names" 2>/dev/null || LC_ALL=C sort -c "$T/names" || fail "entries not sorted"

# SOURCE_DATE_EPOCH from the environment when the spec has none
sed -i '/source_date_epoch/d' "$T/one/spec.yaml"
d3=$(SOURCE_DATE_EPOCH=1600000000 f build -q "$T/one/spec.yaml")
[ "$d3" = "$d1" ] || fail "SOURCE_DATE_EPOCH from the environment not used"
d4=$(SOURCE_DATE_EPOCH=1500000000 f build -q "$T/one/spec.yaml")
[ "$d4" != "$d1" ] || fail "a different SOURCE_DATE_EPOCH gave the same image"

f build --check "$T/two/spec.yaml" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "--check failed on a reproducible spec"; }
grep -q "reproducible" "$T/check.out" || fail "--check says nothing"
echo "build-repro: ok"
