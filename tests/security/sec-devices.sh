#!/bin/bash
# crun's device policy: only the standard nodes work in a `run:` step and in a
# container. A node made with mknod (a build step has CAP_MKNOD, as Docker's)
# cannot be opened anywhere it can be written (/dev, the root, a layer), host
# devices are absent, and build steps and containers get a pids limit (2048
# by default, as podman; `pids:`/`memory:` on a run: layer).
source "$(dirname "$0")/../runtime/lib-run.sh" || exit 1

ctx=$T/ctx
mkdir -p "$ctx/bin"
cp "$FORGE_TESTHELPER" "$ctx/bin/th"
cp "$BUSYBOX" "$ctx/bin/sh"
cat >"$ctx/dev.yaml" <<'YAML'
forge: 1
name: devs
layers:
  - files:
      - {src: bin/th, dest: /bin/th, mode: "0755"}
      - {src: bin/sh, dest: /bin/sh, mode: "0755"}
  - run: >-
      /bin/th mknod /dev/kmsg2 c 1 11 > /r-dev;
      /bin/th mknod /kmsg-layer c 1 11 > /r-root;
      /bin/th open /dev/kmsg > /r-kmsg;
      /bin/th open /dev/kvm > /r-kvm;
      /bin/th open /dev/loop-control > /r-loop;
      echo x > /dev/null && /bin/th open /dev/zero > /r-null;
      /bin/th cgroup > /r-cg
  - run: /bin/th cgroup > /r-cg-set
    pids: 100
    memory: 64M
YAML
f build -q "$ctx/dev.yaml" >/dev/null || fail "build"
rd() { f run devs -- /bin/th read "$1"; }
# run: step: mknod works (CAP_MKNOD) but the node cannot be opened
expect_line "$(rd /r-dev)" "mknod=ok"
expect_line "$(rd /r-dev)" "open=EACCES"
expect_line "$(rd /r-root)" "open=EACCES"
# no host device is there
expect_line "$(rd /r-kmsg)" "open=ENOENT"
expect_line "$(rd /r-kvm)" "open=ENOENT"
expect_line "$(rd /r-loop)" "open=ENOENT"
# the standard ones work
expect_line "$(rd /r-null)" "open=ok"
# pids: the default, and a run: layer's own limits
expect_line "$(rd /r-cg)" "pids=2048"
expect_line "$(rd /r-cg-set)" "pids=100"
expect_line "$(rd /r-cg-set)" "memory=67108864"
# a node a layer brings cannot be opened in a container either
expect_line "$(f run devs -- /bin/th open /kmsg-layer)" "open=EACCES"

# containers: no CAP_MKNOD; nodes unusable anyway; standard nodes work
out=$(r -- /bin/th mknod /dev/kmsg2 c 1 11)
expect_line "$out" "mknod=EPERM"
expect_line "$(r -- /bin/th open /dev/kmsg)" "open=ENOENT"
for n in null zero full random urandom tty ptmx; do
	out=$(r -- /bin/th open /dev/$n)
	[ "$n" = tty ] && { expect_line "$out" "open=ENXIO"; continue; } # no controlling terminal
	expect_line "$out" "open=ok"
done
mounts=$(r -- /bin/th mounts)
grep -E '^tmpfs /dev tmpfs [^ ]*nodev' <<<"$mounts" >/dev/null || fail "/dev is not nodev: $(grep ' /dev ' <<<"$mounts")"
for d in / /dev/shm; do
	grep -E "^[^ ]+ $d [^ ]+ [^ ]*nodev" <<<"$mounts" >/dev/null || fail "$d is not nodev"
done
# pids: 2048 by default, --pids N, --pids -1 none
expect_line "$(r -- /bin/th cgroup)" "pids=2048"
expect_line "$(r --pids 77 -- /bin/th cgroup)" "pids=77"
expect_status 2 r --pids 0 -- /bin/th true
echo PASS
