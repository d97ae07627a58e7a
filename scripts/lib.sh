# Shared by scripts/demo.sh and scripts/bench.sh (sourced, not run): the
# private namespaces, the node file and the agent simulator.

# Re-executes the calling script inside private network and mount
# namespaces (a user namespace too when not root), once: `$1` names the
# variable that marks the inner run.
enter_private_namespaces() {
    local marker=$1
    shift
    [[ ${!marker:-} == 1 ]] && return 0
    export "$marker=1"
    if [[ $(id -u) -eq 0 ]]; then
        exec unshare --net --mount --propagation private "$0" "$@"
    fi
    exec unshare --user --map-root-user --net --mount --propagation private "$0" "$@"
}

# `ip netns add` needs a writable /run/netns: a tmpfs in our mount
# namespace (on /run itself when /run/netns cannot be created, as in a user
# namespace). Also brings lo up.
private_netns_dir() {
    ip link set lo up
    if [[ -d /run/netns ]] || mkdir -p /run/netns 2>/dev/null; then
        mount -t tmpfs tmpfs /run/netns
    else
        mount -t tmpfs tmpfs /run && mkdir -p /run/netns
    fi
}

# Writes the node file `$1/net.d/10-contrail.conf` with state and log under
# `$1`, log level `$2` (default info), and exports CONTRAIL_CNI_CONF_DIRS.
write_node_file() {
    local work=$1 level=${2:-info}
    mkdir -p "$work/net.d"
    cat > "$work/net.d/10-contrail.conf" <<JSON
{"cniVersion":"1.0.0","name":"contrail-k8s-cni","type":"contrail-k8s-cni",
 "contrail":{"config-dir":"$work/ports/vm","log-file":"$work/cni.log","log-level":"$level"}}
JSON
    export CONTRAIL_CNI_CONF_DIRS="$work/net.d"
}

# Starts the agent simulator with the given arguments, its output in
# `$1`, and waits until it listens; the pid is in SIM_PID.
start_sim() {
    local out=$1
    shift
    target/release/vrouter-agent-sim "$@" > "$out" 2>&1 &
    SIM_PID=$!
    for _ in $(seq 100); do
        grep -q listening "$out" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "the agent simulator did not start: $(cat "$out")" >&2
    return 1
}
