#!/usr/bin/env python3
"""How the cost of contrail-k8s-cni grows, next to Debian's ptp + host-local
doing the equivalent veth work in the same run.

Run by scripts/bench.sh inside a private network and mount namespace (it
builds the binaries, mounts a tmpfs on /run/netns and brings lo up); this
script starts the agent simulators, creates every namespace it uses and
leaves the rest to the namespaces' end. Measured, in this order:

  1. 1, 4 and 8 interfaces per pod (ours only: the simulator's --networks
     gives extra VMIs; ptp configures one interface per call);
  2. a burst of 20 pods at once: wall time of 20 parallel ADDs, then of
     20 parallel DELs;
  3. CNI 1.1 GC of 50 stale pods (cni.dev/valid-attachments lists one live
     pod) against one DEL;
  4. ADD/DEL median and p90 with 0, 250 and 1000 existing pods on the node:
     our population for our rows, ptp's for ptp's (both live in the same
     host namespace, so each sees its own state and the kernel sees both);
  5. peak RSS of every sequential call (ru_maxrss via scripts/spawn-rss.c:
     forked from Python the number would include Python's own RSS).

Times are wall clock per exec, from the launcher's fork of the plugin to
its reaped exit (the same for both; bursts: from Python's spawn). It
prints a table with the goals ("ok" / "MISSED") and the same table as
markdown for README (also written to BENCH_MD, default target/bench.md).
Sequential calls wait BENCH_SETTLE_MS (default 20) before starting, so
that the kernel's deferred work of the previous call (a deleted veth is
torn down after DEL returns) is not charged to the next one, whichever
plugin made it. Environment: BENCH_ROUNDS (rounds per row, default 40),
BENCH_POPULATIONS (default "0,250,1000"), BENCH_BURST_ROUNDS (5),
BENCH_GC_ROUNDS (3), BENCH_SETTLE_MS, BENCH_MD; BENCH_LOG_LEVEL (our
plugin's log level, default info) and BENCH_KEEP_LOGS (a directory to
copy its logs to, e.g. to read the per-step durations at debug).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "40"))
POPULATIONS = [int(p) for p in os.environ.get("BENCH_POPULATIONS", "0,250,1000").split(",")]
BURST = 20
BURST_ROUNDS = int(os.environ.get("BENCH_BURST_ROUNDS", "5"))
GC_STALE = 50
GC_ROUNDS = int(os.environ.get("BENCH_GC_ROUNDS", "3"))
SETTLE = int(os.environ.get("BENCH_SETTLE_MS", "20")) / 1000
OURS = sys.argv[1]
WORK = sys.argv[2]
SPAWN = sys.argv[3]
SIM = sys.argv[4]
MD_OUT = os.environ.get("BENCH_MD", "target/bench.md")
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "info")
KEEP_LOGS = os.environ.get("BENCH_KEEP_LOGS")
PTP_DIR = "/usr/lib/cni"
PTP = os.path.join(PTP_DIR, "ptp")
SIZE_BUDGET = 921_600
RSS_BUDGET_MIB = 1.5

rss = {"ours": [], "ptp": []}


def fail(msg):
    sys.exit(f"bench: {msg}")


def run(binary, env, stdin, kind=None):
    """One plugin call through the launcher; returns seconds from its fork
    of the plugin to the reaped exit (the launcher's own start is not
    counted: see scripts/spawn-rss.c)."""
    p = subprocess.run([SPAWN, binary], env=env, input=stdin.encode(), capture_output=True)
    err = p.stderr.decode().strip().splitlines()
    if p.returncode != 0 or not err:
        fail(f"{binary} {env.get('CNI_COMMAND')} failed ({p.returncode}): "
             f"{p.stdout.decode()} {p.stderr.decode()}")
    kib, _, us = err[-1].split()
    if kind:
        rss[kind].append(int(kib))
    return int(us) / 1e6


def netns_add(names):
    """Creates named namespaces with one `ip -batch` process. They are
    never deleted during the run: destroying a namespace is deferred kernel
    work that would slow whatever is measured next. They all go when the
    private mount namespace of scripts/bench.sh ends."""
    if names:
        cmds = "".join(f"netns add bench-{n}\n" for n in names)
        subprocess.run(["ip", "-batch", "-"], input=cmds.encode(), check=True)


class Node:
    """One agent simulator and the node file pointing our plugin at it."""

    def __init__(self, tag, networks, port):
        self.tag = tag
        self.dir = os.path.join(WORK, tag)
        os.makedirs(os.path.join(self.dir, "net.d"))
        conf = {"cniVersion": "1.1.0", "name": "contrail-k8s-cni", "type": "contrail-k8s-cni",
                "contrail": {"config-dir": f"{self.dir}/ports/vm", "log-file": f"{self.dir}/cni.log",
                             "log-level": LOG_LEVEL, "vrouter-port": port}}
        with open(os.path.join(self.dir, "net.d/10-contrail.conf"), "w") as f:
            json.dump(conf, f)
        self.sim = subprocess.Popen([SIM, "--listen", f"127.0.0.1:{port}", "--networks", str(networks)],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.sim.stdout.readline().decode()
        if "listening" not in line:
            fail(f"simulator for {tag} did not start: {line!r}")

    def stop(self):
        self.sim.kill()
        self.sim.wait()
        if KEEP_LOGS:
            os.makedirs(KEEP_LOGS, exist_ok=True)
            shutil.copy(os.path.join(self.dir, "cni.log"), os.path.join(KEEP_LOGS, f"{self.tag}.log"))


BASE_ENV = {"PATH": os.environ["PATH"], "CNI_PATH": PTP_DIR, "CNI_IFNAME": "eth0"}
OURS_CONF = json.dumps({"cniVersion": "1.0.0", "name": "contrail-k8s-cni", "type": "contrail-k8s-cni"})
PTP_CONF = json.dumps({"cniVersion": "1.0.0", "name": "benchnet", "type": "ptp", "mtu": 1500,
                       "ipam": {"type": "host-local", "subnet": "10.99.0.0/16",
                                "dataDir": f"{WORK}/host-local"}})


def call(kind, cmd, pod, node=None, record=True):
    """ADD or DEL of pod `pod` (its namespace is bench-<pod>)."""
    env = dict(BASE_ENV, CNI_COMMAND=cmd, CNI_CONTAINERID=f"c-{pod}",
               CNI_NETNS=f"/run/netns/bench-{pod}",
               CNI_ARGS=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={pod}")
    if kind == "ours":
        env["CONTRAIL_CNI_CONF_DIRS"] = f"{node.dir}/net.d"
        return run(OURS, env, OURS_CONF, "ours" if record else None)
    return run(PTP, env, PTP_CONF, "ptp" if record else None)


def spawn(kind, cmd, pod, node=None):
    """Starts a call without waiting (bursts): the plugin directly."""
    env = dict(BASE_ENV, CNI_COMMAND=cmd, CNI_CONTAINERID=f"c-{pod}",
               CNI_NETNS=f"/run/netns/bench-{pod}",
               CNI_ARGS=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={pod}")
    if kind == "ours":
        env["CONTRAIL_CNI_CONF_DIRS"] = f"{node.dir}/net.d"
    p = subprocess.Popen([OURS if kind == "ours" else PTP], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write((OURS_CONF if kind == "ours" else PTP_CONF).encode())
    p.stdin.close()
    return p


def wait_all(procs):
    for p in procs:
        out = p.stdout.read()
        err = p.stderr.read()
        if p.wait() != 0:
            fail(f"burst call failed: {out.decode()} {err.decode()}")


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def ms(v):
    return v * 1000


def add_del_rounds(kinds, tag, rounds, nodes):
    """Interleaved rounds of ADD then DEL on fresh pods; {kind: (adds, dels)}."""
    pods = {k: [f"{tag}-{k}-{i}" for i in range(rounds)] for k in kinds}
    netns_add([p for k in kinds for p in pods[k]])
    res = {k: ([], []) for k in kinds}
    for i in range(rounds):
        order = kinds if i % 2 == 0 else list(reversed(kinds))
        for k in order:
            pod = pods[k][i]
            time.sleep(SETTLE)
            res[k][0].append(call(k, "ADD", pod, nodes.get(k)))
            time.sleep(SETTLE)
            res[k][1].append(call(k, "DEL", pod, nodes.get(k)))
    return res


def interfaces(nodes_by_count):
    """ADD/DEL of pods with 1, 4 and 8 interfaces (ours), round-robin so
    that every count sees the same machine; {count: (adds, dels)}."""
    rounds = ROUNDS // 2
    pods = {c: [f"if{c}-{i}" for i in range(rounds)] for c in nodes_by_count}
    netns_add([p for c in pods for p in pods[c]])
    out = {c: ([], []) for c in nodes_by_count}
    for i in range(rounds):
        for c, node in nodes_by_count.items():
            time.sleep(SETTLE)
            out[c][0].append(call("ours", "ADD", pods[c][i], node))
            time.sleep(SETTLE)
            out[c][1].append(call("ours", "DEL", pods[c][i], node))
    return out


def burst(kind, node):
    """Wall time of BURST parallel ADDs, then of their DELs; lists of s."""
    adds, dels = [], []
    for r in range(BURST_ROUNDS):
        pods = [f"burst{r}-{kind}-{i}" for i in range(BURST)]
        netns_add(pods)
        time.sleep(SETTLE)
        t = time.perf_counter()
        wait_all([spawn(kind, "ADD", p, node) for p in pods])
        adds.append(time.perf_counter() - t)
        time.sleep(SETTLE)
        t = time.perf_counter()
        wait_all([spawn(kind, "DEL", p, node) for p in pods])
        dels.append(time.perf_counter() - t)
    return adds, dels


def gc(node):
    """GC of GC_STALE stale pods while one pod stays valid; list of s."""
    times = []
    for r in range(GC_ROUNDS):
        live = f"gclive{r}"
        stale = [f"gc{r}-{i}" for i in range(GC_STALE)]
        netns_add([live] + stale)
        for p in [live] + stale:
            call("ours", "ADD", p, node, record=False)
        conf = json.dumps({"cniVersion": "1.1.0", "name": "contrail-k8s-cni", "type": "contrail-k8s-cni",
                           "cni.dev/valid-attachments": [{"containerID": f"c-{live}", "ifname": "eth0"}]})
        env = dict(BASE_ENV, CNI_COMMAND="GC", CONTRAIL_CNI_CONF_DIRS=f"{node.dir}/net.d")
        time.sleep(SETTLE)
        times.append(run(OURS, env, conf, "ours"))
        left = os.listdir(f"{node.dir}/ports/vm")
        if left != [f"k8s__bench__{live}"]:
            fail(f"GC left {left}")
        call("ours", "DEL", live, node, record=False)
    return times


def settle():
    """Between phases: let deferred kernel work (veth teardown) finish."""
    time.sleep(1)


def populate(kind, node, start, end):
    """Adds pods start..end-1 of `kind`'s standing population."""
    pods = [f"pop-{kind}-{i}" for i in range(start, end)]
    netns_add(pods)
    for p in pods:
        call(kind, "ADD", p, node, record=False)


def main():
    nodes = {1: Node("n1", 0, 9091), 4: Node("n4", 3, 9092), 8: Node("n8", 7, 9093)}
    try:
        report(nodes)
    finally:
        for n in nodes.values():
            n.stop()


def report(nodes):
    node = nodes[1]
    t0 = time.time()
    ifs = interfaces(nodes)
    settle()
    b = {}
    for k in ("ours", "ptp"):
        b[k] = burst(k, node if k == "ours" else None)
        settle()
    gct = gc(node)
    settle()
    pops = {}
    have = 0
    for pop in POPULATIONS:
        populate("ours", node, have, pop)
        populate("ptp", None, have, pop)
        have = max(have, pop)
        settle()
        pops[pop] = add_del_rounds(["ours", "ptp"], f"p{pop}", ROUNDS, {"ours": node})
    elapsed = time.time() - t0

    size = os.path.getsize(OURS)
    rows = []  # (label, ours, ptp or None, ratio text, goal text)

    def fmt(v):
        return f"{v:.2f}"

    for pop in POPULATIONS:
        for op, idx in (("ADD", 0), ("DEL", 1)):
            o, p = pops[pop]["ours"][idx], pops[pop]["ptp"][idx]
            for name, q in (("median", 0.5), ("p90", 0.9)):
                ov, pv = ms(pct(o, q)), ms(pct(p, q))
                goal = ""
                if op == "ADD" and name == "median":
                    goal = "<= 0.6 x ptp " + ("ok" if ov <= 0.6 * pv else "MISSED")
                rows.append((f"{op} {name}, {pop} pods (ms)", fmt(ov), fmt(pv), f"{ov / pv:.2f}", goal))
    lo, hi = min(POPULATIONS), max(POPULATIONS)
    og = ms(pct(pops[hi]["ours"][0], 0.5) - pct(pops[lo]["ours"][0], 0.5))
    pg = ms(pct(pops[hi]["ptp"][0], 0.5) - pct(pops[lo]["ptp"][0], 0.5))
    rows.append((f"ADD median growth {lo} -> {hi} pods (ms)", f"{og:+.2f}", f"{pg:+.2f}", "",
                 "below ptp's " + ("ok" if og < pg else "MISSED")))
    del1 = ms(pct(ifs[1][1], 0.5))
    for count in sorted(ifs):
        a, d = ifs[count]
        rows.append((f"ADD median, {count} interface(s) (ms)", fmt(ms(pct(a, 0.5))), "", "", ""))
        goal = ""
        if count == 8:
            goal = "<= 1.5 x 1-if DEL " + ("ok" if ms(pct(d, 0.5)) <= 1.5 * del1 else "MISSED")
        rows.append((f"DEL median, {count} interface(s) (ms)", fmt(ms(pct(d, 0.5))), "",
                     f"{ms(pct(d, 0.5)) / del1:.2f}" if count > 1 else "", goal))
    for i, op in enumerate(("ADD", "DEL")):
        o, p = ms(statistics.median(b["ours"][i])), ms(statistics.median(b["ptp"][i]))
        rows.append((f"burst of {BURST}: all {op}s, wall (ms)", fmt(o), fmt(p), f"{o / p:.2f}", ""))
    g = ms(statistics.median(gct))
    rows.append((f"GC of {GC_STALE} stale pods (ms)", fmt(g), "", f"{g / del1:.2f}",
                 "<= 3 x one DEL " + ("ok" if g <= 3 * del1 else "MISSED")))
    orss, prss = max(rss["ours"]) / 1024, max(rss["ptp"]) / 1024
    rows.append(("peak RSS (MiB)", fmt(orss), fmt(prss), f"{orss / prss:.2f}",
                 f"<= {RSS_BUDGET_MIB} MiB " + ("ok" if orss <= RSS_BUDGET_MIB else "MISSED")))
    rows.append(("static binary (bytes)", f"{size:,}", "", "",
                 f"<= {SIZE_BUDGET:,} " + ("ok" if size <= SIZE_BUDGET else "MISSED")))

    print(f"\n{ROUNDS} interleaved rounds per population row, {ROUNDS // 2} per interface row, "
          f"{BURST_ROUNDS} bursts, {GC_ROUNDS} GCs; {elapsed:.0f} s; binary {OURS}")
    w = max(len(r[0]) for r in rows) + 2
    print(f"{'':{w}}{'contrail-k8s-cni':>18}{'ptp+host-local':>16}{'ratio':>8}   goal")
    for label, o, p, ratio, goal in rows:
        print(f"{label:{w}}{o:>18}{p:>16}{ratio:>8}   {goal}")
    print("(ratio: ours / ptp, or against the 1-interface DEL for interface and GC rows;")
    print(" ptp cannot configure several interfaces per call nor GC; its RSS is ptp's own process,")
    print(" host-local runs as its child and is not counted)")
    missed = sum(1 for r in rows if r[4].endswith("MISSED"))
    print(f"goals: {sum(1 for r in rows if r[4].endswith('ok'))} ok, {missed} MISSED")

    md = ["| | contrail-k8s-cni | ptp + host-local | ratio | goal |", "| --- | --- | --- | --- | --- |"]
    for label, o, p, ratio, goal in rows:
        md.append(f"| {label} | {o} | {p} | {ratio} | {goal} |")
    text = "\n".join(md) + "\n"
    os.makedirs(os.path.dirname(MD_OUT) or ".", exist_ok=True)
    with open(MD_OUT, "w") as f:
        f.write(text)
    print(f"\nREADME table (also in {MD_OUT}):\n")
    print(text)


if __name__ == "__main__":
    main()
