//! Benchmark: one ADD's conversation with the agent (simulator), with one
//! kept-alive connection per process versus a connection per request.
//!
//! Usage (root, in a private network namespace so the simulator's loopback
//! is the benchmark's own):
//!
//! ```sh
//! cargo build --release --example agent_bench --bin vrouter-agent-sim
//! unshare --net sh -c 'ip link set lo up && target/release/examples/agent_bench 300 3'
//! ```
//!
//! Arguments: rounds (default 300) and VMIs per pod (default 3). Each round
//! is what one plugin process does for ADD and DEL: a new client, `GET
//! /vm-cfg`, one `POST /vm` per VMI, `GET /vm/<vm>`, `DELETE /vm/<vm>`;
//! both variants run in turn, against the same simulator.

use contrail_cni::agent::{Agent, PortRequest};
use contrail_cni::deadline::Deadline;
use contrail_cni::ids::{ContainerId, IfName, Uuid, VmName};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn conversation(addr: SocketAddr, keep_alive: bool, pod: &str) -> Res<Duration> {
    let start = Instant::now();
    let deadline = Deadline::after(Duration::from_secs(10));
    let agent = Agent::with_keep_alive(addr, Duration::from_secs(1), keep_alive);
    let vm_name = VmName::parse(pod)?;
    let vmis = agent.poll_vm_cfg(&vm_name, &deadline)?;
    for (i, v) in vmis.iter().enumerate() {
        let req = PortRequest {
            vm_uuid: v.vm_uuid.clone(),
            vm_name: vm_name.clone(),
            host_ifname: IfName::parse(&format!("tap{i}"))?,
            vn_uuid: v.vn_id.clone(),
            vmi_uuid: v.id.clone(),
            vm_id: ContainerId::parse("bench")?,
            vm_ifname: IfName::parse(&format!("eth{i}"))?,
            vm_namespace: "/proc/1/ns/net".into(),
        };
        agent.post_vm(&req, &deadline)?;
    }
    let ids: Vec<&Uuid> = vmis.iter().map(|v| &v.id).collect();
    agent.poll_vm(&vmis[0].vm_uuid, &ids, &deadline)?;
    agent.delete_vm(&vmis[0].vm_uuid, &deadline)?;
    Ok(start.elapsed())
}

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().map_or(Ok(300), |s| s.parse())?;
    let vmis: usize = args.get(1).map_or(Ok(3), |s| s.parse())?;
    let sim_path = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .ok_or("no target directory")?
        .join("vrouter-agent-sim");
    let mut sim = Command::new(&sim_path)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--networks",
            &(vmis - 1).to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", sim_path.display()))?;
    let mut line = String::new();
    BufReader::new(sim.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or("unexpected simulator output")?
        .parse()?;
    let requests = 1 + vmis + 2;
    let mut times = [Vec::new(), Vec::new()];
    // Warm-up, then both variants in turn so both see the same machine.
    for i in 0..rounds + 20 {
        for (k, keep_alive) in [(0, true), (1, false)] {
            let t = conversation(addr, keep_alive, &format!("k8s__bench__p{k}-{i}"))?;
            if i >= 20 {
                times[k].push(t);
            }
        }
    }
    let _ = sim.kill();
    let _ = sim.wait();
    println!("{rounds} rounds, {vmis} VMIs, {requests} requests per round");
    for (k, name) in [(0, "kept-alive connection"), (1, "connection per request")] {
        let v = &mut times[k];
        let (p50, p90, p99) = (pct(v, 0.5), pct(v, 0.9), pct(v, 0.99));
        println!(
            "{name:>24}: p50 {:>7.1} us  p90 {:>7.1} us  p99 {:>7.1} us  ({:.1} us per request at p50)",
            p50.as_secs_f64() * 1e6,
            p90.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            p50.as_secs_f64() * 1e6 / requests as f64
        );
    }
    Ok(())
}
