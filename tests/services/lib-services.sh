# Shared by the services tests (sourced, bash): an image with busybox and the
# test helper, built into the test store.
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" || exit 1
need_root
: "${FORGE_TESTHELPER:?}"
need_busybox

# svc_context DIR: the spec's context (busybox .deb, helper, links)
svc_context() {
	bb_context "$1" sh cat sleep echo seq ls grep id hostname
	cp "$FORGE_TESTHELPER" "$1/th"
}

# svc_spec DIR NAME [VM_KEY...]: DIR/NAME.yaml; with VM_KEYs ("memory: 256M"),
# a vm: section with them (see vm_spec)
svc_spec() {
	local dir=$1 name=$2 spec=bb_spec
	shift 2
	[ $# -eq 0 ] || spec=vm_spec
	"$spec" "$name" "$@" >"$dir/$name.yaml" <<'YAML'
  - files:
      - {src: th, dest: /bin/th, mode: "0755"}
      - {src: links/, dest: /bin/}
  - run: "mkdir -p /etc /tmp; echo 'alice:x:1000:1001::/:/bin/sh' >> /etc/passwd; echo 'alice:x:1001:' >> /etc/group"
config:
  cmd: [/bin/sh, -c, "echo image-cmd; sleep 1000"]
  env: {PATH: /bin:/usr/bin:/sbin:/usr/sbin, FROM_IMAGE: image}
YAML
}
