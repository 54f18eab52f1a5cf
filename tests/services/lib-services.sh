# Shared by the services tests (sourced, bash): an image with busybox and the
# test helper, built into the test store.
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" || exit 1
need_root
: "${FORGE_TESTHELPER:?}"
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || { echo "SKIP: $BUSYBOX (busybox-static) is missing" >&2; exit 77; }

# svc_context DIR: the spec's context (busybox .deb, helper, links)
svc_context() {
	local ctx=$1
	mkdir -p "$ctx/links"
	cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$ctx/bb.deb"
	cp "$FORGE_TESTHELPER" "$ctx/th"
	for a in sh cat sleep echo seq ls grep id hostname; do ln -sf busybox "$ctx/links/$a"; done
}

# svc_spec DIR NAME [EXTRA]: DIR/NAME.yaml (EXTRA appended: a vm: section)
svc_spec() {
	cat >"$1/$2.yaml" <<YAML
forge: 1
name: $2
source_date_epoch: 1700000000
layers:
  - deb: bb.deb
  - files:
      - {src: th, dest: /bin/th, mode: "0755"}
      - {src: links/, dest: /bin/}
  - run: "mkdir -p /etc /tmp; echo 'alice:x:1000:1001::/:/bin/sh' >> /etc/passwd; echo 'alice:x:1001:' >> /etc/group"
config:
  cmd: [/bin/sh, -c, "echo image-cmd; sleep 1000"]
  env: {PATH: /bin:/usr/bin:/sbin:/usr/sbin, FROM_IMAGE: image}
${3:-}
YAML
}
