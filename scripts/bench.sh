#!/usr/bin/env bash
# make bench: ADD/DEL latency and peak RSS of the static binary against the
# simulator, next to Debian's ptp + host-local, in one run, inside private
# namespaces (nothing on the host is touched).
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
sim_pid=""
cleanup() {
    [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null || true
    for ns in $(ip netns list | awk '/^bench-/{print $1}'); do ip netns del "$ns" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
ip link set lo up
mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns
mkdir -p "$work/net.d"
cat > "$work/net.d/10-contrail.conf" <<JSON
{"cniVersion":"1.0.0","name":"contrail-k8s-cni","type":"contrail-k8s-cni",
 "contrail":{"config-dir":"$work/ports/vm","log-file":"$work/cni.log","log-level":"info"}}
JSON
target/release/vrouter-agent-sim --listen 127.0.0.1:9091 > "$work/sim.out" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do grep -q listening "$work/sim.out" 2>/dev/null && break; sleep 0.05; done
python3 scripts/bench.py target/static/contrail-k8s-cni "$work" target/spawn-rss
