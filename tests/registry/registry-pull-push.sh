#!/usr/bin/env bash
# forge pull / push / tag against Debian's docker-registry on 127.0.0.1, and
# interop with skopeo both ways: skopeo sees forge's digest, forge pulls what
# skopeo pushed (gzip and zstd), an index gives the host's platform, a second
# push asks only HEADs, another repository mounts, large blobs go in chunks;
# remote refs in run/inspect/export and in a spec's from:.
source "$FORGE_SRC/tests/integration/lib.sh"
source "$FORGE_SRC/tests/registry/lib-registry.sh"
need_registry
need_root
command -v skopeo >/dev/null || { echo "SKIP: skopeo is not installed" >&2; exit 77; }

start_registry r1
LOG=$T/r1/log
# requests the registry logged since mark_log
mark_log() { LOGMARK=$(wc -c <"$LOG"); }
requests() { tail -c +$((LOGMARK + 1)) "$LOG" | grep -ao '"[A-Z]\+ /v2/[^ ]*' | tr -d '"'; }

spec=$FORGE_SRC/specs/examples/hello.yaml
d=$(f build -q "$spec")

# push: skopeo sees the digest forge has
pushed=$(f push -q hello "$REG/team/hello:v1")
[ "$pushed" = "$d" ] || fail "push printed $pushed, built $d"
sd=$(skopeo inspect --tls-verify=false "docker://$REG/team/hello:v1" | jq -r .Digest)
[ "$sd" = "$d" ] || fail "skopeo sees $sd, forge pushed $d"
skopeo copy -q --src-tls-verify=false "docker://$REG/team/hello:v1" "oci:$T/sk-oci:v1" || fail "skopeo copy of forge's push"
skopeo inspect "oci:$T/sk-oci:v1" | jq -e '.Layers | length == 2' >/dev/null || fail "skopeo's copy has 2 layers"

# a second push with every blob present: HEADs and the manifest only
mark_log
f push -q hello "$REG/team/hello:v1" >/dev/null
requests >"$T/req2"
grep -q '^HEAD /v2/team/hello/blobs/' "$T/req2" || { cat "$T/req2"; fail "no HEAD on the second push"; }
! grep -Eq '^(POST|PATCH)|^PUT /v2/team/hello/blobs' "$T/req2" || { cat "$T/req2"; fail "second push uploaded"; }
[ "$(grep -c '^HEAD' "$T/req2")" -eq 3 ] || { cat "$T/req2"; fail "expected 3 HEADs (config + 2 layers)"; }

# another repository of the same registry: blobs are mounted, not uploaded
mark_log
f push -q hello "$REG/other/hello:v1" >/dev/null
requests >"$T/req3"
[ "$(grep -c '^POST /v2/other/hello/blobs/uploads/?mount=sha256:.*&from=team/hello' "$T/req3")" -eq 3 ] ||
	{ cat "$T/req3"; fail "expected 3 mounts"; }
! grep -Eq '^(PATCH|PUT) /v2/other/hello/blobs' "$T/req3" || fail "mounted blobs were uploaded"

# --compression gzip with small chunks: POST + PATCH... + PUT ?digest=
mark_log
gz=$(FORGE_REGISTRY_CHUNK_SIZE=256K f push -q --compression gzip hello "$REG/team/hello:gz")
requests >"$T/req4"
[ "$(grep -c '^PATCH /v2/team/hello/blobs/uploads/' "$T/req4")" -ge 4 ] || { cat "$T/req4"; fail "no chunked upload"; }
grep -q '^PUT /v2/team/hello/blobs/uploads/.*digest=sha256' "$T/req4" || fail "no closing PUT ?digest="
skopeo inspect --raw --tls-verify=false "docker://$REG/team/hello:gz" |
	jq -e '[.layers[].mediaType] | all(. == "application/vnd.oci.image.layer.v1.tar+gzip")' >/dev/null ||
	fail "gzip push has non-gzip layers"
[ "$(skopeo inspect --tls-verify=false "docker://$REG/team/hello:gz" | jq -r .Digest)" = "$gz" ] || fail "gzip digest"
expect_status 2 f push --compression lz4 hello "$REG/team/hello:x"

# forge pulls what skopeo pushed: gzip (an OCI export) and zstd
f export hello --format oci -o "$T/oci" >/dev/null
# (each into a registry of its own: skopeo reuses blobs it knows a registry
# has, whatever their compression)
REG1=$REG
start_registry r2
REGG=$REG
start_registry r3
REGZ=$REG
REG=$REG1
skopeo copy -q --dest-tls-verify=false "oci:$T/oci:hello:latest" "docker://$REGG/sk/gzip:1"
skopeo copy -q --dest-tls-verify=false --dest-compress --dest-compress-format zstd "oci:$T/oci:hello:latest" "docker://$REGZ/sk/zstd:1"
diffs=$(f inspect hello | jq -c '[.layers[].diff_id]')
for repo in gzip zstd; do
	s2=$T/st-$repo
	REG=$REGG
	[ $repo = zstd ] && REG=$REGZ
	want=$(skopeo inspect --tls-verify=false "docker://$REG/sk/$repo:1" | jq -r .Digest)
	got=$("$FORGE" --store "$s2" pull -q "$REG/sk/$repo:1")
	[ "$got" = "$want" ] || fail "pull $repo: $got, skopeo says $want"
	[ "$("$FORGE" --store "$s2" inspect "$repo:1" | jq -c '[.layers[].diff_id]')" = "$diffs" ] || fail "pull $repo: diff_ids"
	mt=$("$FORGE" --store "$s2" inspect "$repo:1" | jq -r '.layers[0].media_type')
	case $repo in gzip) [ "$mt" = application/vnd.oci.image.layer.v1.tar+gzip ] ;; zstd) [ "$mt" = application/vnd.oci.image.layer.v1.tar+zstd ] ;; esac ||
		fail "pull $repo: media type $mt"
	out=$("$FORGE" --store "$s2" run "$repo:1" -- registry)
	[ "$out" = "hello from forge, registry!" ] || fail "pulled $repo image runs: $out"
	"$FORGE" --store "$s2" store verify >/dev/null || fail "verify after pull $repo"
done
REG=$REG1
# on a terminal: a line per layer and a status line redrawn below them
script -qec "$FORGE --store $T/st-tty pull $REGG/sk/gzip:1" /dev/null >"$T/tty.out" 2>&1 || fail "pull on a terminal"
grep -aq 'layers  .* / ' "$T/tty.out" || { cat -v "$T/tty.out"; fail "no status line on a terminal"; }
[ "$(grep -ac 'layer [12]/2 sha256:.* done' "$T/tty.out")" -eq 2 ] || { cat -v "$T/tty.out"; fail "no per-layer lines on a terminal"; }
"$FORGE" --store "$T/st-tty2" pull "$REGG/sk/gzip:1" 2>"$T/notty.err" >/dev/null
! grep -aq 'layers  ' "$T/notty.err" || fail "status line when not a terminal"
[ "$(grep -c '^layer [12]/2 sha256:.* done$' "$T/notty.err")" -eq 2 ] || fail "per-layer lines when not a terminal"

# a second pull downloads no blob
LOG=$T/r2/log
mark_log
"$FORGE" --store "$T/st-gzip" pull -q "$REGG/sk/gzip:1" >/dev/null
requests >"$T/req"
! grep -q '/blobs/' "$T/req" || fail "second pull fetched blobs"
LOG=$T/r1/log

# uncompressed layers: a docker-archive imported (plain tars) goes out and
# comes back as it is
docker_archive hello plain:v1 "$T/plain.tar"
f import "$T/plain.tar" >/dev/null
f push -q plain:v1 "$REG/team/plain:v1" >/dev/null
"$FORGE" --store "$T/st-plain" pull -q "$REG/team/plain:v1" >/dev/null || fail "pull uncompressed"
[ "$("$FORGE" --store "$T/st-plain" inspect plain:v1 | jq -r '[.layers[].media_type] | unique | .[0]')" = application/vnd.oci.image.layer.v1.tar ] ||
	fail "uncompressed layers changed on the way"
[ "$("$FORGE" --store "$T/st-plain" run plain:v1 -- plain)" = "hello from forge, plain!" ] || fail "uncompressed image runs"

# by digest; a digest that is not the tag's; docker schema 2 from skopeo
got=$("$FORGE" --store "$T/st-dig" pull -q "$REG/team/hello@$d")
[ "$got" = "$d" ] || fail "pull by digest"
expect_status 1 "$FORGE" --store "$T/st-dig" pull -q "$REG/team/hello:v1@sha256:$(printf %064d 0)"
skopeo copy -q --dest-tls-verify=false --format v2s2 "oci:$T/oci:hello:latest" "docker://$REGG/sk/docker:1"
skopeo inspect --raw --tls-verify=false "docker://$REGG/sk/docker:1" | jq -e '.mediaType == "application/vnd.docker.distribution.manifest.v2+json"' >/dev/null
"$FORGE" --store "$T/st-docker" pull -q "$REGG/sk/docker:1" >/dev/null || fail "pull docker schema 2"
[ "$("$FORGE" --store "$T/st-docker" run docker:1 -- v2s2)" = "hello from forge, v2s2!" ] || fail "docker v2s2 image runs"

# an index: the host's platform is picked
mkdir -p "$T/ctx2" && echo other >"$T/ctx2/o.txt"
printf 'forge: 1\nname: other\nlayers:\n  - files: [{src: o.txt, dest: /o.txt}]\n' >"$T/ctx2/o.yaml"
d2=$(f build -q "$T/ctx2/o.yaml")
f push -q other "$REG/multi/img:arm" >/dev/null
f push -q hello "$REG/multi/img:amd" >/dev/null
sz() { skopeo inspect --raw --tls-verify=false "docker://$REG/multi/img:$1" | wc -c; }
cat >"$T/index.json" <<J
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$d2","size":$(sz arm),"platform":{"os":"linux","architecture":"arm64"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$d","size":$(sz amd),"platform":{"os":"linux","architecture":"amd64"}}]}
J
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary "@$T/index.json" \
	"http://$REG/v2/multi/img/manifests/multi" >/dev/null || fail "put index"
got=$("$FORGE" --store "$T/st-idx" pull -q "$REG/multi/img:multi")
[ "$got" = "$d" ] || fail "index: pulled $got, the amd64 image is $d (arm64: $d2)"

# remote refs in run / inspect / export: pulled first
[ "$("$FORGE" --store "$T/st-ref" inspect "$REG/team/hello:v1" | jq -r .digest)" = "$d" ] || fail "inspect remote"
[ "$("$FORGE" --store "$T/st-ref2" run "$REG/team/hello:v1" -- remote)" = "hello from forge, remote!" ] || fail "run remote"
"$FORGE" --store "$T/st-ref3" export "$REG/team/hello:v1" --format tar -o "$T/remote.tar" >/dev/null
tar -tf "$T/remote.tar" >"$T/remote.list"
grep -qx 'etc/greeting' "$T/remote.list" || fail "export remote"

# from: HOST/REPO:TAG in a spec
mkdir -p "$T/ctx3" && echo layered >"$T/ctx3/l.txt"
cat >"$T/ctx3/s.yaml" <<Y
forge: 1
name: onbase
from: $REG/team/hello:v1
layers:
  - files: [{src: l.txt, dest: /etc/l.txt}]
Y
"$FORGE" --store "$T/st-from" build -q "$T/ctx3/s.yaml" >/dev/null || fail "build from remote"
[ "$("$FORGE" --store "$T/st-from" run onbase -- from)" = "hello from forge, from!" ] || fail "remote base runs"
"$FORGE" --store "$T/st-from" inspect onbase | jq -e '.layers | length == 3' >/dev/null || fail "3 layers on the remote base"
sed -i "s|from: .*|from: $REG/Team/hello:v1|" "$T/ctx3/s.yaml"
expect_status 2 "$FORGE" --store "$T/st-from" build -q "$T/ctx3/s.yaml"
out=$("$FORGE" --store "$T/st-from" build -q "$T/ctx3/s.yaml" 2>&1 || true)
[[ $out == *"s.yaml:3:7: 'from'"* ]] || fail "bad remote from: is not located: $out"

# forge lock pins the from: digest; a moved tag does not change a locked build
sed -i "s|from: .*|from: $REG/pin/base:v1|" "$T/ctx3/s.yaml"
f push -q hello "$REG/pin/base:v1" >/dev/null
"$FORGE" --store "$T/st-lock" lock "$T/ctx3/s.yaml" >/dev/null || fail "forge lock"
[ "$(jq -r .from.digest "$T/ctx3/s.yaml.lock")" = "$d" ] || { cat "$T/ctx3/s.yaml.lock"; fail "lock pin"; }
[ "$(jq -r .from.ref "$T/ctx3/s.yaml.lock")" = "$REG/pin/base:v1" ] || fail "lock ref"
f push -q other "$REG/pin/base:v1" >/dev/null   # the tag moves
"$FORGE" --store "$T/st-lock2" build -q --locked "$T/ctx3/s.yaml" >/dev/null || fail "locked build"
[ "$("$FORGE" --store "$T/st-lock2" inspect onbase | jq -r '.layers[0].digest')" = "$(f inspect hello | jq -r '.layers[0].digest')" ] ||
	fail "the locked build did not use the pinned base"
echo '{}' >"$T/ctx3/s.yaml.lock"
expect_status 2 "$FORGE" --store "$T/st-lock3" build -q --locked "$T/ctx3/s.yaml"
"$FORGE" --store "$T/st-lock3" build -q "$T/ctx3/s.yaml" >/dev/null || fail "unpinned build"
[ "$(jq -r .from.digest "$T/ctx3/s.yaml.lock")" = "$d2" ] || fail "the build did not pin the moved tag"
rm "$T/ctx3/s.yaml.lock"

# forge tag
f tag hello copy:v9
[ "$(f inspect copy:v9 | jq -r .digest)" = "$d" ] || fail "tag"
expect_status 2 f tag hello "$REG/x:y"
expect_status 2 f tag hello 'Bad:Name'
expect_status 1 f tag nosuch copy:v1

# failures: a clear message and a status
f pull "$REG/team/nosuch:v1" 2>"$T/err" && fail "pull of a missing repo succeeded"
grep -q "not found" "$T/err" || { cat "$T/err"; fail "missing image message"; }
expect_status 2 f pull 'nohost/x'
expect_status 2 f push hello 'hello:v2'
port=$(free_port)
expect_status 1 f pull "127.0.0.1:$port/x:y"
# podman pulls forge's push (zstd layers), where podman is installed (last:
# its pull teaches containers/image's blob cache about these layers)
if command -v podman >/dev/null; then
	pm() { timeout 120 podman --root "$T/podman" --runroot "$T/podman-run" --storage-driver vfs "$@"; }
	pm pull -q --tls-verify=false "$REG/team/hello:v1" >/dev/null || fail "podman pull of forge's push"
	pm images --digests --format '{{.Digest}}' | grep -qx "$d" || fail "podman sees another digest"
	pm rmi -a -f >/dev/null 2>&1 || true
fi

f store verify >/dev/null
echo ok
