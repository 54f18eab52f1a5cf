#!/bin/bash
# The services parity suite (parity.sh) against --as container on the host.
source "$(dirname "$0")/lib-services.sh" || exit 1
svc_context "$T/ctx"
svc_spec "$T/ctx" svcimg
f build -q "$T/ctx/svcimg.yaml" >/dev/null
st=0
KIND=container IMAGE=svcimg F="$FORGE --store $STORE" WAIT_STEPS=100 sh "$(dirname "$0")/parity.sh" || st=$?
[ "$st" -eq 0 ] || fail "$st parity check(s) failed for containers"
echo PASS
