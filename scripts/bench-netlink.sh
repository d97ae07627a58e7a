#!/usr/bin/env bash
# Micro-benchmark of the netlink module against iproute2 (root only).
# Creates one named network namespace for the "pod" and removes it on every
# exit path, including failures and Ctrl-C. ROUNDS=200 by default.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench-netlink: needs root (creates network namespaces)" >&2
    exit 1
fi

# Everything happens in a private network and mount namespace: the named
# namespace lives on a tmpfs there, so the host's /run/netns is untouched.
if [ "${BENCH_INNER:-}" != 1 ]; then
    cargo build --release --example netlink_bench
    BENCH_INNER=1 exec unshare --net --mount --propagation private "$0" "$@"
fi
mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns
ip link set lo up

NS="ccni-bench-$$"
CHILD=""
cleanup() {
    if [ -n "$CHILD" ]; then kill "$CHILD" 2>/dev/null || true; wait "$CHILD" 2>/dev/null || true; fi
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
# In the background + wait, so a signal runs the trap at once instead of
# after the benchmark finishes.
cargo run --release --example netlink_bench -- "$NS" "${ROUNDS:-200}" &
CHILD=$!
wait "$CHILD"
