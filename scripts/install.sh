#!/usr/bin/env bash
# Installs the plugin binary atomically (temp file + rename, so a running
# kubelet never executes a half-copied file) into $DESTDIR$PREFIX/bin and
# writes an example conflist unless one exists. Other plugins are untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/opt/cni}
DESTDIR=${DESTDIR:-}
CONFDIR=${CONFDIR:-/etc/cni/net.d}
bin="target/release/contrail-k8s-cni"
[[ -f target/static/contrail-k8s-cni ]] && bin="target/static/contrail-k8s-cni"
[[ -x $bin ]] || { echo "build first: make build" >&2; exit 1; }

bindir="$DESTDIR$PREFIX/bin"
install -d -m 0755 "$bindir"
tmp="$bindir/.contrail-k8s-cni.tmp.$$"
install -m 0755 "$bin" "$tmp"
mv -f "$tmp" "$bindir/contrail-k8s-cni"
echo "installed $bindir/contrail-k8s-cni ($(stat -c %s "$bindir/contrail-k8s-cni") bytes)"

confdir="$DESTDIR$CONFDIR"
install -d -m 0755 "$confdir"
if compgen -G "$confdir/*contrail*.conflist" >/dev/null || compgen -G "$confdir/*contrail.conf" >/dev/null \
    || compgen -G "$confdir/*tf-cni.conf" >/dev/null; then
    echo "kept the existing contrail configuration in $confdir"
else
    tmp="$confdir/.10-contrail.conflist.tmp.$$"
    umask 077
    cat > "$tmp" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "contrail-k8s-cni",
  "plugins": [
    {
      "type": "contrail-k8s-cni",
      "contrail": {
        "cluster-name": "k8s",
        "meta-plugin": "multus",
        "vrouter-ip": "127.0.0.1",
        "vrouter-port": 9091,
        "config-dir": "/var/lib/contrail/ports/vm",
        "poll-timeout": 3,
        "poll-retries": 20,
        "log-file": "/var/log/contrail/cni/opencontrail.log",
        "log-level": "info",
        "mtu": 1500
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
    mv -f "$tmp" "$confdir/10-contrail.conflist"
    echo "wrote $confdir/10-contrail.conflist"
fi
