//! The fault catalogue: every failure of ADD ends in a CNI error with
//! nothing left behind (no link in either namespace, no port file, no agent
//! subscription), and a later ADD or DEL works.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const UUID: &str = "0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0";

/// Nothing leaked (see `common::assert_no_leak`), and every successful
/// POST /vm was followed by a DELETE.
fn assert_no_leak(node: &Node, pod: &NsFd, sim: Option<&Sim>) {
    common::assert_no_leak(&node.ports_dir(), Some(pod));
    if let Some(sim) = sim {
        let text = std::fs::read_to_string(&sim.record).unwrap_or_default();
        let posted = text
            .lines()
            .any(|l| l.contains("\"POST\"") && l.contains("\"status\":200"));
        if posted {
            assert!(
                sim.count("DELETE", "/vm/") > 0,
                "subscription left: {:?}",
                sim.requests()
            );
        }
    }
}

#[test]
fn agent_down_for_the_whole_deadline() {
    if !setup() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let node = Node::with(port, json!({"poll-timeout": 1, "poll-retries": 2}));
    let pod = NsFd::new();
    let r = node.call("ADD", "c", &pod.path, "down").run();
    assert_eq!(r.code(), 11, "{r:?}");
    assert!(
        r.msg().contains(&format!("127.0.0.1:{port}")),
        "names the agent: {r:?}"
    );
    assert!(
        r.msg().contains("k8s__default__down"),
        "names the VM: {r:?}"
    );
    assert!(r.elapsed < Duration::from_secs(4), "{:?}", r.elapsed);
    assert_no_leak(&node, &pod, None);
    assert!(node.log().contains("k8s__default__down"), "logged");
}

#[test]
fn vm_cfg_incomplete_until_the_deadline() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--networks", "1", "--fault", "vm-cfg:partial"]);
    let node = Node::with(sim.port, json!({"poll-timeout": 1, "poll-retries": 2}));
    let pod = NsFd::new();
    let r = node.call("ADD", "c", &pod.path, "partial").run();
    assert_eq!(r.code(), 11, "{r:?}");
    assert!(
        sim.count("GET", "/vm-cfg/") > 2,
        "retried with sleeps, not once"
    );
    assert!(
        sim.count("GET", "/vm-cfg/") < 40,
        "no tight loop: {}",
        sim.count("GET", "/vm-cfg/")
    );
    assert_eq!(sim.count("POST", "/vm"), 0);
    assert_no_leak(&node, &pod, Some(&sim));
}

#[test]
fn post_answered_500_rolls_back_and_a_retry_succeeds() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--networks", "1", "--fault", "post:500=1"]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let r = node.call("ADD", "c-post", &pod.path, "post").run();
    assert!(!r.ok());
    assert!(r.msg().contains("POST"), "{r:?}");
    assert_no_leak(&node, &pod, Some(&sim));
    // kubelet retries the same sandbox: it works now.
    node.call("ADD", "c-post", &pod.path, "post")
        .run()
        .assert_ok();
    assert_eq!(pod.link_names().len(), 2);
    node.call("DEL", "c-post", &pod.path, "post")
        .run()
        .assert_ok();
    assert_no_leak(&node, &pod, Some(&sim));
}

#[test]
fn vm_never_ready_rolls_back_the_subscription() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--fault", "vm:404"]);
    let node = Node::with(sim.port, json!({"poll-timeout": 1, "poll-retries": 2}));
    let pod = NsFd::new();
    let r = node.call("ADD", "c", &pod.path, "noip").run();
    assert_eq!(r.code(), 11, "{r:?}");
    assert_eq!(sim.count("POST", "/vm"), 1);
    assert_eq!(sim.count("DELETE", "/vm/"), 1, "subscription removed");
    assert_no_leak(&node, &pod, Some(&sim));
}

#[test]
fn garbage_json_from_the_agent() {
    if !setup() {
        return;
    }
    for fault in ["vm-cfg:garbage", "vm:garbage"] {
        let sim = Sim::start(&["--fault", fault]);
        let node = Node::with(sim.port, json!({"poll-timeout": 1, "poll-retries": 2}));
        let pod = NsFd::new();
        let r = node.call("ADD", "c", &pod.path, "garbage").run();
        assert_eq!(r.code(), 11, "{fault}: {r:?}");
        assert_no_leak(&node, &pod, Some(&sim));
    }
}

#[test]
fn agent_that_never_answers_ends_within_the_deadline() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--fault", "vm-cfg:hang"]);
    let node = Node::with(sim.port, json!({"poll-timeout": 1, "poll-retries": 2}));
    let pod = NsFd::new();
    let r = node.call("ADD", "c", &pod.path, "hang").run();
    assert_eq!(r.code(), 11, "{r:?}");
    // One deadline for the whole ADD: poll budget 2 s + the 2 s margin,
    // then the rollback and process start.
    assert!(r.elapsed < Duration::from_millis(4800), "{:?}", r.elapsed);
    assert_no_leak(&node, &pod, Some(&sim));
}

#[test]
fn agent_not_ready_for_three_polls_costs_milliseconds_not_seconds() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--fault", "vm-cfg:404=3"]);
    let node = Node::with(sim.port, json!({"poll-timeout": 3, "poll-retries": 20}));
    let pod = NsFd::new();
    let r = node.call("ADD", "c", &pod.path, "slow").run();
    r.assert_ok();
    // The reference sleeps poll-timeout (3 s) after each 404: 9 s here.
    assert!(r.elapsed < Duration::from_millis(1000), "{:?}", r.elapsed);
    assert_eq!(sim.count("GET", "/vm-cfg/"), 4);
    node.call("DEL", "c", &pod.path, "slow").run().assert_ok();
}

#[test]
fn host_name_already_taken_fails_without_touching_the_other_link() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--vm-uuid", UUID]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let tap = contrail_cni::vif::names::tap_name(
        &contrail_cni::ids::Uuid::parse(UUID).unwrap(),
        &contrail_cni::ids::IfName::parse("eth0").unwrap(),
    )
    .to_string();
    ip(&[
        "link",
        "add",
        &tap,
        "type",
        "veth",
        "peer",
        "name",
        "someone-else",
    ]);
    let r = node.call("ADD", "c", &pod.path, "taken").run();
    assert!(!r.ok(), "{r:?}");
    assert!(r.msg().contains(&tap), "names the link: {r:?}");
    let mut links = link_names();
    links.sort();
    assert_eq!(
        links,
        vec!["someone-else".to_string(), tap.clone()],
        "the other link stays"
    );
    assert!(pod.link_names().is_empty());
    assert!(node.port_files().is_empty());
    assert_eq!(sim.count("POST", "/vm"), 0);
}

#[test]
fn pod_interface_name_already_taken_is_code_4_and_leaves_nothing() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--vm-uuid", UUID]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    pod.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "other",
    ]);
    let r = node.call("ADD", "c", &pod.path, "taken-in-pod").run();
    assert_eq!(r.code(), 4, "{r:?}");
    assert!(
        r.msg().contains("interface eth0 already exists"),
        "says what is taken: {r:?}"
    );
    let mut links = pod.link_names();
    links.sort();
    assert_eq!(links, vec!["eth0".to_string(), "other".to_string()]);
    assert!(taps().is_empty(), "leaked host links: {:?}", link_names());
    assert!(node.port_files().is_empty());
    assert_eq!(sim.count("POST", "/vm"), 0);
}

#[test]
fn netns_vanishing_mid_add_leaves_nothing_after_del() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--fault", "vm:404=4"]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let path = pod.path.clone();
    let call = node.call("ADD", "c-gone", &path, "gone");
    let mut child = call.command().spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(call.stdin.to_string().as_bytes())
            .unwrap();
    }
    // Wait until ADD polls for the addresses: the veth exists by then.
    let start = Instant::now();
    while sim.count("GET", "/vm/") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "ADD never polled /vm"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(pod); // the runtime deleted the namespace while ADD was polling
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(err["code"], 3, "container unknown: {stdout}");
    assert!(taps().is_empty(), "rolled back: {:?}", link_names());
    assert!(node.port_files().is_empty());
    node.call("DEL", "c-gone", &path, "gone").run().assert_ok();
    assert!(taps().is_empty(), "{:?}", link_names());
    assert!(node.port_files().is_empty());
    assert!(sim.count("DELETE", "/vm/") >= 1);
}

/// kill -9 of the plugin at many points of ADD, each followed by a retried
/// ADD that must succeed and a DEL that must leave nothing behind.
#[test]
fn kill_9_at_random_points_then_retry_and_del() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--networks", "1", "--fault", "vm:404=1"]);
    let node = Node::new(sim.port);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    for round in 0..12 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_micros((seed >> 33) % 120_000);
        let pod = NsFd::new();
        let cid = format!("kill-{round}");
        let call = node.call("ADD", &cid, &pod.path, &format!("k{round}"));
        let mut child = call.command().spawn().unwrap();
        {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(call.stdin.to_string().as_bytes())
                .unwrap();
        }
        let start = Instant::now();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("round {round}: killed after {:?}", start.elapsed());
        let retry = node
            .call("ADD", &cid, &pod.path, &format!("k{round}"))
            .run();
        retry.assert_ok();
        assert_eq!(pod.link_names().len(), 2, "round {round}");
        node.call("DEL", &cid, &pod.path, &format!("k{round}"))
            .run()
            .assert_ok();
        assert!(taps().is_empty(), "round {round}: {:?}", link_names());
        assert!(pod.link_names().is_empty(), "round {round}");
        assert!(node.port_files().is_empty(), "round {round}");
    }
}
