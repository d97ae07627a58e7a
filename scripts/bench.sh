#!/usr/bin/env bash
# make bench: how the cost of the static binary grows (populations, interfaces
# per pod, bursts, GC, peak RSS) next to Debian's ptp + host-local, in one
# run, inside private namespaces (nothing on the host is touched). The
# README table is printed at the end and written to target/bench.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${BENCH_INNER:-} != 1 ]]; then
    scripts/static.sh >/dev/null
    cargo build --release --quiet --bin vrouter-agent-sim
    gcc -O2 -static -o target/spawn-rss scripts/spawn-rss.c
    export BENCH_INNER=1
    exec unshare --net --mount --propagation private "$0" "$@"
fi
work=$(mktemp -d /tmp/contrail-bench.XXXXXX)
# The pod namespaces are bind mounts on a tmpfs of this private mount
# namespace: they (and every link in them) go when it ends.
trap 'rm -rf "$work"' EXIT
ip link set lo up
mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns
python3 scripts/bench.py target/static/contrail-k8s-cni "$work" target/spawn-rss \
    target/release/vrouter-agent-sim
