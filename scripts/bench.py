#!/usr/bin/env python3
"""ADD/DEL latency and peak RSS of contrail-k8s-cni next to Debian's ptp +
host-local doing the equivalent veth work, in the same run.

Run by scripts/bench.sh inside a private network and mount namespace (it
creates the pod namespaces, starts the simulator and cleans up). Each round:
a fresh pod namespace, ADD, DEL, for our plugin and for ptp, interleaved so
both see the same machine state. Times are wall-clock per exec. Peak RSS is
the plugin process's ru_maxrss, taken by scripts/spawn-rss.c (a tiny static
launcher: forked from Python the number would include Python's own RSS).
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "60"))
OURS = sys.argv[1]
WORK = sys.argv[2]
SPAWN = sys.argv[3]
PTP_DIR = "/usr/lib/cni"


def run(binary, env, stdin):
    """Runs one plugin invocation; returns (seconds, max_rss_kib, stdout)."""
    start = time.perf_counter()
    p = subprocess.run([SPAWN, binary], env=env, input=stdin.encode(), capture_output=True)
    elapsed = time.perf_counter() - start
    err = p.stderr.decode().strip().splitlines()
    if p.returncode != 0 or not err:
        sys.exit(f"{binary} failed ({p.returncode}): {p.stdout.decode()} {p.stderr.decode()}")
    rss_kib = int(err[-1].split()[0])
    return elapsed, rss_kib, p.stdout


def netns(name, action):
    subprocess.run(["ip", "netns", action, name], check=True)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    base = {"PATH": os.environ["PATH"], "CNI_PATH": PTP_DIR, "CNI_IFNAME": "eth0"}
    ours_env = dict(base, CONTRAIL_CNI_CONF_DIRS=f"{WORK}/net.d")
    ours_conf = json.dumps({"cniVersion": "1.0.0", "name": "contrail-k8s-cni", "type": "contrail-k8s-cni"})
    ptp_conf = json.dumps({"cniVersion": "1.0.0", "name": "benchnet", "type": "ptp", "mtu": 1500,
                           "ipam": {"type": "host-local", "subnet": "10.99.0.0/16",
                                    "dataDir": f"{WORK}/host-local"}})
    ptp = os.path.join(PTP_DIR, "ptp")
    res = {k: {"add": [], "del": [], "rss": []} for k in ("ours", "ptp")}
    for i in range(ROUNDS):
        for kind in ("ours", "ptp"):
            ns = f"bench-{kind}-{i}"
            netns(ns, "add")
            env = dict(ours_env if kind == "ours" else base,
                       CNI_CONTAINERID=f"bench{i}{kind}", CNI_NETNS=f"/run/netns/{ns}",
                       CNI_ARGS=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-{i}")
            binary, conf = (OURS, ours_conf) if kind == "ours" else (ptp, ptp_conf)
            t, rss, _ = run(binary, dict(env, CNI_COMMAND="ADD"), conf)
            res[kind]["add"].append(t)
            res[kind]["rss"].append(rss)
            t, rss, _ = run(binary, dict(env, CNI_COMMAND="DEL"), conf)
            res[kind]["del"].append(t)
            res[kind]["rss"].append(rss)
            netns(ns, "del")

    size = os.path.getsize(OURS)
    print(f"\n{ROUNDS} rounds each, interleaved; binary {OURS} ({size} bytes)")
    print(f"{'':22}{'contrail-k8s-cni':>18}{'ptp+host-local':>18}{'ratio':>9}   goal")
    for op, goal in (("add", 0.6), ("del", 0.8)):
        for name, q in (("median", 0.5), ("p90", 0.9)):
            o = pct(res["ours"][op], q) * 1000
            p = pct(res["ptp"][op], q) * 1000
            mark = (f"<= {goal}" + (" ok" if o / p <= goal else " MISSED")) if name == "median" else ""
            print(f"{op.upper() + ' ' + name + ' (ms)':22}{o:18.2f}{p:18.2f}{o / p:9.2f}   {mark}")
    o = max(res["ours"]["rss"]) / 1024
    p = max(res["ptp"]["rss"]) / 1024
    print(f"{'peak RSS (MiB)':22}{o:18.2f}{p:18.2f}{o / p:9.2f}   <= 1.5 MiB" + (" ok" if o <= 1.5 else " MISSED"))
    print("(ptp's RSS is ptp's own process; host-local runs as its child and is not counted;")
    print(" times include the launcher's fork+exec, the same for both)")


if __name__ == "__main__":
    main()
