//! Micro-benchmark: what one pod's interface setup costs through our
//! netlink module versus iproute2, in the same run on the same kernel.
//!
//! Usage (root): `netlink_bench <named-netns> [rounds]`; `make bench-netlink`
//! creates and removes the named namespace. The process first moves into a
//! private network namespace (the "host"), so nothing touches the real host.
//!
//! One round = veth with the peer born in the pod namespace as eth0, an
//! address on eth0, both ends up, a default route in the pod, then delete.
//! Ours also counts opening the host socket, the namespace and the pod
//! socket, as the plugin does on every ADD. iproute2 pays one process per
//! operation (and `ip -n` a mount namespace with a fresh /sys each time).
//! Deleting a veth waits for RCU grace periods in the kernel and dominates
//! both sides, so a "setup only" line and our per-step breakdown follow.
//!
//! Then teardown: 1, 4 and 8 veths (peers in the pod) deleted one by one
//! and with `Socket::delete_links` (one kernel batch), and what the batch's
//! verifying link dump costs with 1000 veths on the node.

use contrail_cni::ids::IfName;
use contrail_cni::netlink::{Address, LinkUpdate, Route, Socket, VethRequest};
use contrail_cni::netns::NetNs;
use std::error::Error;
use std::os::fd::BorrowedFd;
use std::process::Command;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error>>;

const POD_ADDR: &str = "10.77.0.2";
const GATEWAY: &str = "10.77.0.1";

/// Steps of one round, for the per-step breakdown.
const STEPS: [&str; 7] = [
    "open sockets+netns",
    "create veth",
    "get links",
    "add address",
    "links up",
    "add route",
    "delete veth",
];

fn ours(ns_path: &str, steps: &mut [Vec<Duration>; 7]) -> Res<()> {
    let mut t = Instant::now();
    let mut lap = |i: usize, steps: &mut [Vec<Duration>; 7]| {
        steps[i].push(t.elapsed());
        t = Instant::now();
    };
    let (vh, eth0) = (IfName::parse("vhbench")?, IfName::parse("eth0")?);
    let mut host = Socket::new()?;
    let ns = NetNs::open(ns_path)?;
    let mut pod = ns.socket()?;
    lap(0, steps);
    host.create_veth(&veth(&vh, &eth0, &ns))?;
    lap(1, steps);
    let h = host.link_by_name(&vh)?.ok_or("no host end")?;
    let p = pod.link_by_name(&eth0)?.ok_or("no pod end")?;
    lap(2, steps);
    pod.add_address(&Address {
        index: p.index,
        net: format!("{POD_ADDR}/24").parse()?,
    })?;
    lap(3, steps);
    host.update_link(h.index, &UP)?;
    pod.update_link(p.index, &UP)?;
    lap(4, steps);
    pod.add_route(&Route {
        dst: None,
        gateway: Some(GATEWAY.parse()?),
        oif: p.index,
        onlink: false,
    })?;
    lap(5, steps);
    host.delete_link(h.index)?;
    lap(6, steps);
    Ok(())
}

const UP: LinkUpdate = LinkUpdate {
    up: Some(true),
    mtu: None,
    mac: None,
    alias: None,
    group: None,
};

fn ns_fd(ns: &NetNs) -> BorrowedFd<'_> {
    ns.fd()
}

fn veth<'a>(name: &'a IfName, peer: &'a IfName, ns: &'a NetNs) -> VethRequest<'a> {
    VethRequest {
        name,
        mtu: None,
        mac: None,
        up: false,
        group: None,
        peer_name: peer,
        peer_mtu: None,
        peer_mac: None,
        peer_netns_fd: Some(ns_fd(ns)),
    }
}

/// Creates veths `{prefix}{i}` with peers `{prefix}p{i}` in `ns`; their indexes.
fn make_veths(host: &mut Socket, ns: &NetNs, prefix: &str, count: usize) -> Res<Vec<u32>> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let (a, b) = (
            IfName::parse(&format!("{prefix}{i}"))?,
            IfName::parse(&format!("{prefix}p{i}"))?,
        );
        host.create_veth(&veth(&a, &b, ns))?;
        out.push(host.link_by_name(&a)?.ok_or("veth vanished")?.index);
    }
    Ok(out)
}

/// Teardown of `k` veths: one by one, then in one batch. (median, p90)s.
fn teardown(ns: &NetNs, k: usize, rounds: usize) -> Res<[(Duration, Duration); 2]> {
    let mut host = Socket::new()?;
    let (mut each, mut batch) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let links = make_veths(&mut host, ns, "td", k)?;
        let t = Instant::now();
        for &i in &links {
            host.delete_link(i)?;
        }
        each.push(t.elapsed());
        let links = make_veths(&mut host, ns, "td", k)?;
        let t = Instant::now();
        let done = host.delete_links(&links)?;
        batch.push(t.elapsed());
        if done.deleted != k || (k > 1 && !done.batched) {
            return Err(format!("batch of {k}: {done:?}").into());
        }
    }
    Ok([stats(each), stats(batch)])
}

fn ip(args: &[&str]) -> Res<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        return Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// Runs the iproute2 round; records how long the setup part took.
fn iproute2(ns: &str, setup: &mut Vec<Duration>) -> Res<()> {
    let t = Instant::now();
    ip(&[
        "link", "add", "vhbench", "type", "veth", "peer", "name", "eth0", "netns", ns,
    ])?;
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{POD_ADDR}/24"),
        "dev",
        "eth0",
    ])?;
    ip(&["link", "set", "vhbench", "up"])?;
    ip(&["-n", ns, "link", "set", "eth0", "up"])?;
    ip(&[
        "-n", ns, "route", "add", "default", "via", GATEWAY, "dev", "eth0",
    ])?;
    setup.push(t.elapsed());
    setup.push(t.elapsed());
    ip(&["link", "del", "vhbench"])?;
    Ok(())
}

fn timed(f: impl FnOnce() -> Res<()>) -> Res<Duration> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

/// (median, p90) of the samples.
fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let ns = args
        .next()
        .ok_or("usage: netlink_bench <named-netns> [rounds]")?;
    let rounds: usize = args.next().map_or(Ok(200), |r| r.parse())?;
    if rounds == 0 {
        return Err("rounds must be > 0".into());
    }
    let ns_path = format!("/run/netns/{ns}");

    // A private "host" namespace for the whole run (single-threaded here,
    // so the whole process moves).
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
    ip(&["link", "set", "lo", "up"])?;

    let mut steps: [Vec<Duration>; 7] = Default::default();
    let mut b_setup = Vec::with_capacity(rounds + 1);
    // Warm-up: page cache, binary, first-use kernel paths.
    ours(&ns_path, &mut steps)?;
    iproute2(&ns, &mut b_setup)?;

    let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds {
        // Alternate which goes first so neither always runs on a warm cache.
        if i % 2 == 0 {
            a.push(timed(|| ours(&ns_path, &mut steps))?);
            b.push(timed(|| iproute2(&ns, &mut b_setup))?);
        } else {
            b.push(timed(|| iproute2(&ns, &mut b_setup))?);
            a.push(timed(|| ours(&ns_path, &mut steps))?);
        }
    }
    let (am, a90) = stats(a);
    // Setup = everything but the delete (which waits for RCU grace periods
    // in the kernel and costs both sides the same).
    let a_setup: Vec<Duration> = (1..=rounds)
        .map(|i| steps[..6].iter().map(|s| s[i]).sum())
        .collect();
    let (asm, as90) = stats(a_setup);
    let (bsm, bs90) = stats(b_setup[1..].to_vec());
    // Drop the warm-up sample from the breakdown.
    let breakdown: Vec<(Duration, Duration)> =
        steps.into_iter().map(|v| stats(v[1..].to_vec())).collect();
    let (bm, b90) = stats(b);
    println!("netlink bench: {rounds} rounds of veth(peer in netns) + addr + up x2 + default route + delete");
    println!(
        "  contrail netlink : median {:8.3} ms   p90 {:8.3} ms",
        ms(am),
        ms(a90)
    );
    println!(
        "  iproute2 (6 ip)  : median {:8.3} ms   p90 {:8.3} ms",
        ms(bm),
        ms(b90)
    );
    println!("  ratio iproute2/ours (median): {:.1}x", ms(bm) / ms(am));
    println!("  setup only (no delete):");
    println!(
        "    contrail netlink : median {:8.3} ms   p90 {:8.3} ms",
        ms(asm),
        ms(as90)
    );
    println!(
        "    iproute2 (5 ip)  : median {:8.3} ms   p90 {:8.3} ms",
        ms(bsm),
        ms(bs90)
    );
    println!(
        "    ratio iproute2/ours (median): {:.1}x",
        ms(bsm) / ms(asm)
    );
    println!("  our steps (median / p90):");
    for (name, (m, p)) in STEPS.iter().zip(breakdown) {
        println!("    {name:<20} {:8.3} ms {:8.3} ms", ms(m), ms(p));
    }

    let ns = NetNs::open(&ns_path)?;
    let td_rounds = (rounds / 10).clamp(3, 20);
    println!("teardown of k veths (peers in the pod), {td_rounds} rounds, median / p90:");
    println!("    k   one by one            delete_links (batch)");
    for k in [1, 4, 8] {
        let [(em, e90), (bm, b90)] = teardown(&ns, k, td_rounds)?;
        println!(
            "  {k:>3} {:8.2} / {:7.2} ms   {:8.2} / {:7.2} ms",
            ms(em),
            ms(e90),
            ms(bm),
            ms(b90)
        );
    }

    // The batch verifies its group with a dump of every link: what does
    // that cost on a node with 1000 pods (1000 host-side veth ends)?
    let mut host = Socket::new()?;
    let node = make_veths(&mut host, &ns, "n", 1000)?;
    let mut dumps = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let n = host.links()?.len();
        dumps.push(t.elapsed());
        if n < 1000 {
            return Err(format!("dump saw {n} links").into());
        }
    }
    let (dm, d90) = stats(dumps);
    println!(
        "link dump with 1000 veths present: median {:.2} ms, p90 {:.2} ms",
        ms(dm),
        ms(d90)
    );
    println!("teardown with 1000 veths present:");
    for k in [1, 2, 8] {
        let [(em, _), (bm, _)] = teardown(&ns, k, td_rounds)?;
        println!(
            "  {k:>3} veths: one by one {:7.2} ms, delete_links {:7.2} ms",
            ms(em),
            ms(bm)
        );
    }
    let t = Instant::now();
    host.delete_links(&node)?;
    println!(
        "deleting the 1000 veths with one delete_links: {:.0} ms",
        ms(t.elapsed())
    );
    Ok(())
}
