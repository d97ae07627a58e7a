#!/usr/bin/env bash
# Installs the plugin with its own installer, `contrail-k8s-cni install`:
# the binary is copied atomically into $DESTDIR$PREFIX/bin and the node
# configuration 10-contrail.conflist written into $DESTDIR$CONFDIR unless a
# contrail configuration is there. Extra arguments go to the installer
# (--force, --conf FILE, --dry-run; see docs/operations.md).
#
# The binary used is the newer of the static build (make static) and the
# release build; with neither, the release build is made first.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/opt/cni}
DESTDIR=${DESTDIR:-}
CONFDIR=${CONFDIR:-/etc/cni/net.d}
bin=target/release/contrail-k8s-cni
static=target/static/contrail-k8s-cni
if [[ -x $static && ! $static -ot $bin ]]; then
    bin=$static
elif [[ ! -x $bin ]]; then
    cargo build --release
fi
exec "$bin" install --bin-dir "$DESTDIR$PREFIX/bin" --conf-dir "$DESTDIR$CONFDIR" "$@"
