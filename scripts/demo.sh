#!/usr/bin/env bash
# make demo: the plugin's main job on its embedded defaults, end to end, in
# throwaway namespaces. Starts the vRouter agent simulator on loopback with
# a data plane, creates a pod network namespace, runs ADD through the real
# binary, shows the pod's addresses and routes, pings the gateway, runs DEL
# and shows that nothing is left. Nothing outside its own namespaces and a
# temporary directory is touched; without root it runs in a user namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh
[[ ${DEMO_INNER:-} == 1 ]] || cargo build --release --quiet
enter_private_namespaces DEMO_INNER "$@"

bin=target/release/contrail-k8s-cni
work=$(mktemp -d /tmp/contrail-demo.XXXXXX)
SIM_PID=""
cleanup() {
    [[ -n $SIM_PID ]] && kill "$SIM_PID" 2>/dev/null || true
    ip netns del demo-pod 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

private_netns_dir
ip netns add demo-pod

# The node file: where state and logs go (here, a temporary directory).
write_node_file "$work" debug
stdin='{"cniVersion":"1.0.0","name":"contrail-k8s-cni","type":"contrail-k8s-cni"}'

step "vRouter agent simulator on 127.0.0.1:9091 (with data plane)"
start_sim "$work/sim.out" --listen 127.0.0.1:9091 --dataplane --record "$work/requests.jsonl"
cat "$work/sim.out"

export CNI_CONTAINERID=demo-$$ CNI_NETNS=/run/netns/demo-pod CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin
export CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=demo-pod"

step "ADD (CNI_COMMAND=ADD $bin < config)"
start=$(date +%s%N)
result=$(CNI_COMMAND=ADD "$bin" <<<"$stdin")
echo "took $(( ($(date +%s%N) - start) / 1000000 )) ms"
echo "$result" | python3 -m json.tool

step "inside the pod: ip addr, ip route"
ip -n demo-pod -br addr
ip -n demo-pod route
gw=$(echo "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["gateway"])')

step "ping the gateway $gw from the pod"
ip netns exec demo-pod ping -c 3 -W 1 "$gw"

step "host side: the tap, the port file the agent reloads"
ip -br link | grep '^tap' || true
find "$work/ports/vm" -type f -exec sh -c 'echo "$1:"; cat "$1"; echo' _ {} \;

step "DEL"
CNI_COMMAND=DEL "$bin" <<<"$stdin"
echo "exit $?"

step "nothing left"
echo "host links:   $(ip -br link | awk '{print $1}' | tr '\n' ' ')"
echo "pod links:    $(ip -n demo-pod -br link | awk '{print $1}' | tr '\n' ' ')"
echo "port files:   $(find "$work/ports/vm" -type f 2>/dev/null | wc -l)"
echo "agent saw:    $(python3 -c 'import json,sys; print(", ".join(j["method"]+" "+j["path"] for j in map(json.loads, open(sys.argv[1]))))' "$work/requests.jsonl" 2>/dev/null || true)"
step "the plugin's log"
cat "$work/cni.log"
