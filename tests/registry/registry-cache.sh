#!/usr/bin/env bash
# forge build --cache-to / --cache-from through docker-registry: a second
# machine (an empty store) builds nothing the first built, each layer
# "cached (registry)", same image digest; it downloads only the layers the
# image needs and pushes nothing the registry has; a changed layer is built
# again, its parents still come from the registry; a cache ref that does not
# exist yet is no error; an artifact that lies about a layer is refused;
# --cache-to merges with the cache already at the ref (two specs, one ref;
# the newest entries kept, the oldest dropped beyond the cap) and does not
# overwrite an image.
source "$FORGE_SRC/tests/integration/lib.sh"
source "$FORGE_SRC/tests/registry/lib-registry.sh"
need_registry
need_root

start_registry r1
LOG=$T/r1/log
mark_log() { LOGMARK=$(wc -c <"$LOG"); }
requests() { tail -c +$((LOGMARK + 1)) "$LOG" | grep -ao '"[A-Z]\+ /v2/[^ ]*' | tr -d '"'; }

c=$T/ctx
bb_context "$c"
sh_link_tar "$c/sh.tar"
echo one >"$c/one.txt"
echo two >"$c/two.txt"
cat >"$c/spec.yaml" <<'Y'
forge: 1
name: cached
layers:
  - deb: bb.deb
  - archive: sh.tar
  - files: [{src: one.txt, dest: /etc/one.txt}]
  - run: /bin/busybox mkdir -p /var && /bin/busybox cat /etc/one.txt > /var/copy
  - files: [{src: two.txt, dest: /etc/two.txt}]
config:
  entrypoint: [/bin/sh, -c]
  cmd: ["cat /var/copy /etc/two.txt"]
Y
CR=$REG/cache/app:buildcache
# machine A: no cache there yet (not an error), builds and exports
"$FORGE" --store "$T/a" build --cache-from "$CR" --cache-to "$CR" "$c/spec.yaml" >"$T/a.out"
[ "$(grep -c ' built ' "$T/a.out")" -eq 5 ] || { cat "$T/a.out"; fail "A built $(grep -c ' built ' "$T/a.out") layers"; }
da=$(tail -n1 "$T/a.out")
skopeo inspect --raw --tls-verify=false "docker://$CR" >"$T/art.json"
jq -e '.config.mediaType == "application/vnd.dev.forge.cache.config.v1+json" and (.layers | length == 5)' "$T/art.json" >/dev/null ||
	{ cat "$T/art.json"; fail "cache artifact"; }

# machine B: an empty store, every layer from the registry
mark_log
"$FORGE" --store "$T/b" build --cache-from "$CR" "$c/spec.yaml" >"$T/b.out"
[ "$(grep -c 'cached (registry)' "$T/b.out")" -eq 5 ] || { cat "$T/b.out"; fail "B did not take all 5 layers from the registry"; }
! grep -q ' built ' "$T/b.out" || fail "B built a layer"
[ "$(tail -n1 "$T/b.out")" = "$da" ] || fail "B's image $(tail -n1 "$T/b.out") differs from A's $da"
[ "$("$FORGE" --store "$T/b" run cached)" = "$(printf 'one\ntwo')" ] || fail "B's image runs"
[ "$(requests | grep -c '^GET /v2/cache/app/blobs/')" -eq 6 ] || { requests; fail "B should fetch the config and 5 layers"; }
"$FORGE" --store "$T/b" store verify >/dev/null

# B exports again: every blob is there, nothing uploaded
mark_log
"$FORGE" --store "$T/b" build -q --cache-from "$CR" --cache-to "$CR" "$c/spec.yaml" >/dev/null
requests >"$T/req"
! grep -Eq '^(PATCH|POST) ' "$T/req" || { cat "$T/req"; fail "re-export uploaded blobs"; }

# machine C: the last layer changed: built; the four below come from the registry
echo three >"$c/two.txt"
"$FORGE" --store "$T/c" build --cache-from "$CR" "$c/spec.yaml" >"$T/c.out"
[ "$(grep -c 'cached (registry)' "$T/c.out")" -eq 4 ] && [ "$(grep -c ' built ' "$T/c.out")" -eq 1 ] ||
	{ cat "$T/c.out"; fail "C: expected 4 from the registry, 1 built"; }
grep '\[5/5\]' "$T/c.out" | grep -q ' built ' || fail "C built another layer than the changed one"

# --no-cache ignores the registry too
"$FORGE" --store "$T/d" build --no-cache --cache-from "$CR" "$c/spec.yaml" >"$T/d.out"
! grep -q 'registry' "$T/d.out" || fail "--no-cache used the registry cache"

# an artifact that lies: its config says layer 1 has another size than the
# manifest's descriptor: that entry is not used (the layer is built), the
# others still are
cfgd=$(jq -r .config.digest "$T/art.json")
curl -fsS "http://$REG/v2/cache/app/blobs/$cfgd" | jq -c '.layers[0].size += 1' >"$T/liecfg.json"
put_blob() { # FILE: monolithic upload into cache/app, prints the digest
	local dg loc
	dg=sha256:$(sha256sum "$1" | cut -d' ' -f1)
	loc=$(curl -fsS -o /dev/null -D - -X POST "http://$REG/v2/cache/app/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
	case $loc in http*) ;; *) loc=http://$REG$loc ;; esac
	curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$loc&digest=$dg" >/dev/null
	echo "$dg"
}
liecfg=$(put_blob "$T/liecfg.json")
jq -c --arg d "$liecfg" --argjson n "$(wc -c <"$T/liecfg.json")" '.config.digest = $d | .config.size = $n' "$T/art.json" >"$T/lieman.json"
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$T/lieman.json" \
	"http://$REG/v2/cache/app/manifests/lies" >/dev/null
echo two >"$c/two.txt"
"$FORGE" --store "$T/f" build --cache-from "$REG/cache/app:lies" "$c/spec.yaml" >"$T/f.out"
grep '\[1/5\]' "$T/f.out" | grep -q ' built ' || { cat "$T/f.out"; fail "a lying entry was used"; }
[ "$(grep -c 'cached (registry)' "$T/f.out")" -eq 4 ] || { cat "$T/f.out"; fail "the honest entries were not used"; }

# --cache-to merges with the artifact already there: two specs export to the
# same ref, an empty store takes the layers of both from it
mkdir -p "$T/m"
for n in 1 2 3 4 5; do echo "merge $n" >"$T/m/f$n.txt"; done
printf 'forge: 1\nname: ma\nlayers:\n' >"$T/m/a.yaml"
for n in 1 2 3; do printf '  - files: [{src: f%s.txt, dest: /a%s}]\n' $n $n >>"$T/m/a.yaml"; done
printf 'forge: 1\nname: mb\nlayers:\n' >"$T/m/b.yaml"
for n in 4 5; do printf '  - files: [{src: f%s.txt, dest: /b%s}]\n' $n $n >>"$T/m/b.yaml"; done
CM=$REG/cache/merged:c
keys() { # the artifact's keys, oldest first
	local cd
	cd=$(skopeo inspect --raw --tls-verify=false "docker://$CM" | jq -r .config.digest)
	curl -fsS "http://$REG/v2/cache/merged/blobs/$cd" | jq -r '.layers[].key'
}
"$FORGE" --store "$T/ma" build -q --cache-to "$CM" "$T/m/a.yaml" >/dev/null
keys >"$T/keys-a"
"$FORGE" --store "$T/mb" build -q --cache-to "$CM" "$T/m/b.yaml" >/dev/null
keys >"$T/keys-ab"
[ "$(wc -l <"$T/keys-a")" -eq 3 ] && [ "$(wc -l <"$T/keys-ab")" -eq 5 ] ||
	{ cat "$T/keys-ab"; fail "the second export did not keep the first's keys"; }
[ "$(head -n3 "$T/keys-ab")" = "$(cat "$T/keys-a")" ] || fail "the first build's keys are not first (oldest)"
"$FORGE" --store "$T/mc" build --cache-from "$CM" "$T/m/a.yaml" >"$T/mc-a.out"
"$FORGE" --store "$T/mc" build --cache-from "$CM" "$T/m/b.yaml" >"$T/mc-b.out"
[ "$(grep -c 'cached (registry)' "$T/mc-a.out")" -eq 3 ] || { cat "$T/mc-a.out"; fail "merged cache: spec a"; }
[ "$(grep -c 'cached (registry)' "$T/mc-b.out")" -eq 2 ] || { cat "$T/mc-b.out"; fail "merged cache: spec b"; }
# a build that makes a key again moves it to the newest; beyond the cap the
# oldest go: with 4 entries, a's 3 (newest) and b's second layer stay
FORGE_REGISTRY_CACHE_ENTRIES=4 "$FORGE" --store "$T/ma" build -q --cache-to "$CM" "$T/m/a.yaml" >/dev/null
keys >"$T/keys-cap"
[ "$(wc -l <"$T/keys-cap")" -eq 4 ] || { cat "$T/keys-cap"; fail "cap of 4 entries"; }
[ "$(tail -n3 "$T/keys-cap")" = "$(cat "$T/keys-a")" ] || fail "a's keys are not the newest"
[ "$(head -n1 "$T/keys-cap")" = "$(sed -n 5p "$T/keys-ab")" ] || fail "the oldest entry was not the one dropped"
skopeo inspect --raw --tls-verify=false "docker://$CM" | jq -e '.layers | length == 4' >/dev/null ||
	fail "the manifest still lists a dropped layer"
"$FORGE" --store "$T/md" build --cache-from "$CM" "$T/m/b.yaml" >"$T/md.out"
grep '\[1/2\]' "$T/md.out" | grep -q ' built ' && grep '\[2/2\]' "$T/md.out" | grep -q 'cached (registry)' ||
	{ cat "$T/md.out"; fail "after the cap: b's first layer built, its second from the registry"; }

# an artifact that is not a cache, a bad ref

f build -q "$FORGE_SRC/specs/examples/hello.yaml" >/dev/null
f push -q hello "$REG/cache/img:v1" >/dev/null
expect_status 1 "$FORGE" --store "$T/e" build --cache-from "$REG/cache/img:v1" "$c/spec.yaml"
# --cache-to does not overwrite an image with a cache
imgd=$(skopeo inspect --tls-verify=false "docker://$REG/cache/img:v1" | jq -r .Digest)
"$FORGE" --store "$T/ma" build -q --cache-to "$REG/cache/img:v1" "$T/m/a.yaml" 2>"$T/err" >/dev/null &&
	fail "--cache-to overwrote an image"
grep -q 'not a forge cache' "$T/err" || { cat "$T/err"; fail "--cache-to onto an image: $(cat "$T/err")"; }
[ "$(skopeo inspect --tls-verify=false "docker://$REG/cache/img:v1" | jq -r .Digest)" = "$imgd" ] ||
	fail "the image at the --cache-to ref changed"
expect_status 2 "$FORGE" --store "$T/e" build --cache-from notaregistry "$c/spec.yaml"
echo ok
