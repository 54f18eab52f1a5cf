#!/usr/bin/env bash
# forge sbom: SPDX 2.3 and CycloneDX 1.5 of an image with packages and other
# inputs; the CycloneDX document passes the validator of the CycloneDX
# project's own library (installed by scripts/deps.sh).
source "$FORGE_TESTS/../integration/lib.sh"
source "$FORGE_TESTS/lib-repo.sh"

CDX=/var/cache/forge-test/cyclonedx
[ -d "$CDX/node_modules/@cyclonedx/cyclonedx-library" ] ||
	fail "the CycloneDX validator is missing: run scripts/deps.sh"

make_key
make_packages
r=$(pkgroot licensed 1:2.0-1)
mkdir -p "$r/usr/share/doc/licensed"
printf 'Format: copyright-format/1.0/\n\nFiles: *\nCopyright: 2026 tests\nLicense: Expat\n\nFiles: lib/*\nCopyright: 2026 tests\nLicense: GPL-2+\n' \
	>"$r/usr/share/doc/licensed/copyright"
mkpkg licensed 1:2.0-1 all
make_index
start_server
C=$T/ctx
echo hello >"$C/hello.txt"
write_spec s "http://127.0.0.1:$PORT" "  - packages: [app, licensed]" "    essential: false" \
	"  - files: [{src: hello.txt, dest: /etc/hello.txt}]"
f build -q "$C/s.yaml" >/dev/null || fail "build"

f sbom s >"$T/spdx.json" || fail "sbom"
f sbom s --format spdx -o "$T/spdx2.json" || fail "sbom -o"
cmp -s "$T/spdx.json" "$T/spdx2.json" || fail "-o wrote something else than stdout"
[ "$(jq -r .spdxVersion "$T/spdx.json")" = SPDX-2.3 ] || fail "spdxVersion"
[ "$(jq -r .dataLicense "$T/spdx.json")" = CC0-1.0 ] || fail "dataLicense"
for p in app libfoo1 pre-tool licensed; do
	sha=$(jq -r ".packages.layers[0].packages[] | select(.name==\"$p\") | .sha256" "$C/s.yaml.lock")
	got=$(jq -r ".packages[] | select(.name==\"$p\") | .checksums[0].checksumValue" "$T/spdx.json")
	[ "sha256:$got" = "$sha" ] || fail "SPDX: $p has checksum $got, the lock $sha"
done
[ "$(jq -r '.packages[] | select(.name=="licensed") | .externalRefs[0].referenceLocator' "$T/spdx.json")" = \
	"pkg:deb/debian/licensed@1%3A2.0-1?arch=all" ] || fail "purl"
[ "$(jq -r '.packages[] | select(.name=="licensed") | .licenseDeclared' "$T/spdx.json")" = "MIT AND GPL-2.0-or-later" ] ||
	fail "licence: $(jq -c '.packages[] | select(.name=="licensed")' "$T/spdx.json")"
[ "$(jq -r '.packages[] | select(.name=="app") | .licenseDeclared' "$T/spdx.json")" = NOASSERTION ] || fail "no licence known"
jq -e '.packages[] | select(.name=="files" or .primaryPackagePurpose=="FILE")' "$T/spdx.json" >/dev/null ||
	fail "SPDX: the files layer is not listed"
[ "$(jq '[.relationships[] | select(.relationshipType=="CONTAINS")] | length' "$T/spdx.json")" = \
	"$(jq '[.packages[]] | length - 1' "$T/spdx.json")" ] || fail "SPDX relationships"

f sbom s --format cyclonedx -o "$T/cdx.json" || fail "sbom cyclonedx"
[ "$(jq -r .specVersion "$T/cdx.json")" = 1.5 ] || fail "specVersion"
[ "$(jq -r '.components[] | select(.name=="libfoo1") | .purl' "$T/cdx.json")" = "pkg:deb/debian/libfoo1@2.0?arch=$ARCH" ] ||
	fail "CycloneDX purl"
[ "$(jq -r '[.components[] | select(.name=="licensed") | .licenses[].license.id] | join(" ")' "$T/cdx.json")" = \
	"MIT GPL-2.0-or-later" ] || fail "CycloneDX licences"
cat >"$T/validate.js" <<'JS'
const { Validation, Spec } = require(process.argv[2] + '/node_modules/@cyclonedx/cyclonedx-library');
const fs = require('fs');
new Validation.JsonStrictValidator(Spec.Version.v1dot5).validate(fs.readFileSync(process.argv[3], 'utf8')).then(
  e => { if (e === null) process.exit(0); console.error(JSON.stringify(e)); process.exit(1); },
  err => { console.error('validator: ' + err); process.exit(2); });
JS
node "$T/validate.js" "$CDX" "$T/cdx.json" || fail "the CycloneDX document is not valid"
# the validator does catch a broken document
jq '.components[0].hashes[0].alg = "SHA-257"' "$T/cdx.json" >"$T/bad.json"
! node "$T/validate.js" "$CDX" "$T/bad.json" 2>/dev/null || fail "the validator accepted a broken document"
# the same image, the same documents
[ "$(f sbom s --format cyclonedx)" = "$(cat "$T/cdx.json")" ] || fail "sbom is not stable"
expect_status 2 f sbom no-such-image 2>/dev/null
echo "pkg-sbom: ok"
