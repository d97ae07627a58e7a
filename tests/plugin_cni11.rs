//! CHECK, STATUS and GC: the commands the reference never had.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn check_passes_after_add_and_names_a_removed_address() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let add = node.call("ADD", "c-check", &pod.path, "chk").run();
    add.assert_ok();
    let prev = add.json();
    let check = || {
        node.call("CHECK", "c-check", &pod.path, "chk")
            .conf("prevResult", prev.clone())
            .run()
    };
    let ok = check();
    ok.assert_ok();
    assert!(ok.stdout.is_empty(), "CHECK prints nothing on success");

    let addr = prev["ips"][0]["address"].as_str().unwrap().to_string();
    pod.ip(&["addr", "del", &addr, "dev", "eth0"]);
    let bad = check();
    assert!(!bad.ok());
    assert!(
        bad.msg().contains(&format!("eth0 lacks address {addr}")),
        "{bad:?}"
    );
    node.call("DEL", "c-check", &pod.path, "chk")
        .run()
        .assert_ok();
}

#[test]
fn check_accepts_a_mac_changed_by_a_later_plugin_and_needs_prev_result() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let add = node.call("ADD", "c-tuned", &pod.path, "tuned").run();
    add.assert_ok();
    let mut prev = add.json();
    // What tuning does: change the MAC and say so in the result.
    pod.ip(&["link", "set", "eth0", "address", "c2:11:22:33:44:55"]);
    prev["interfaces"][1]["mac"] = json!("c2:11:22:33:44:55");
    node.call("CHECK", "c-tuned", &pod.path, "tuned")
        .conf("prevResult", prev.clone())
        .run()
        .assert_ok();
    let missing = node.call("CHECK", "c-tuned", &pod.path, "tuned").run();
    assert!(
        !missing.ok() && missing.msg().contains("prevResult"),
        "{missing:?}"
    );
    let old = node
        .call("CHECK", "c-tuned", &pod.path, "tuned")
        .conf("cniVersion", json!("0.3.1"))
        .conf("prevResult", prev)
        .run();
    assert_eq!(old.code(), 1, "CHECK needs 0.4.0: {old:?}");
    // The host tap down is a difference too.
    let tap = add.json()["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    ip(&["link", "set", &tap, "down"]);
    let down = node
        .call("CHECK", "c-tuned", &pod.path, "tuned")
        .conf("prevResult", add.json())
        .run();
    assert!(down.msg().contains(&format!("{tap} is down")), "{down:?}");
    node.call("DEL", "c-tuned", &pod.path, "tuned")
        .run()
        .assert_ok();
}

#[test]
fn status_is_zero_with_the_agent_and_fifty_within_a_second_without() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let status = || {
        node.call("STATUS", "", "", "x")
            .unset("CNI_ARGS")
            .conf("cniVersion", json!("1.1.0"))
            .run()
    };
    let up = status();
    up.assert_ok();
    assert!(up.stdout.is_empty());
    drop(sim);
    let down = status();
    assert_eq!(down.code(), 50, "{down:?}");
    assert!(
        down.msg().contains(&format!("127.0.0.1:{}", node.port)),
        "{down:?}"
    );
    assert!(
        down.elapsed < Duration::from_secs(1),
        "took {:?}",
        down.elapsed
    );
    let old = node
        .call("STATUS", "", "", "x")
        .conf("cniVersion", json!("1.0.0"))
        .run();
    assert_eq!(old.code(), 1);
}

#[test]
fn status_is_fifty_within_a_second_when_the_agent_hangs() {
    if !setup() {
        return;
    }
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let node = Node::new(listener.local_addr().unwrap().port());
    let down = node
        .call("STATUS", "", "", "x")
        .unset("CNI_ARGS")
        .conf("cniVersion", json!("1.1.0"))
        .run();
    assert_eq!(down.code(), 50, "{down:?}");
    assert!(
        down.elapsed < Duration::from_millis(1500),
        "took {:?}",
        down.elapsed
    );
}

#[test]
fn gc_removes_exactly_the_unlisted_pods() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pods: Vec<NsFd> = (0..10).map(|_| NsFd::new()).collect();
    for (i, pod) in pods.iter().enumerate() {
        node.call("ADD", &format!("gc-{i}"), &pod.path, &format!("gcpod-{i}"))
            .run()
            .assert_ok();
    }
    let keep = [1usize, 3, 5, 7];
    let valid: Vec<_> = keep
        .iter()
        .map(|i| json!({"containerID": format!("gc-{i}"), "ifname": "eth0"}))
        .collect();
    let gc = |key: &str, list: serde_json::Value| {
        node.call("GC", "", "", "x")
            .unset("CNI_ARGS")
            .conf("cniVersion", json!("1.1.0"))
            .conf(key, list)
            .run()
    };
    // Multus caches of pods without state: a stale one and a listed one.
    let multus = node.dir.path().join("ports/multus");
    std::fs::create_dir_all(&multus).unwrap();
    for (pod, cid) in [
        ("k8s__default__orphan", "gone"),
        ("k8s__default__listed", "gc-1"),
    ] {
        let cache = json!({"container-id": cid, "pod-uid": "", "vmis": []});
        std::fs::write(multus.join(pod), cache.to_string()).unwrap();
    }
    // Without the list nothing is removed.
    node.call("GC", "", "", "x")
        .unset("CNI_ARGS")
        .conf("cniVersion", json!("1.1.0"))
        .run()
        .assert_ok();
    assert_eq!(node.port_files().len(), 10);

    gc("cni.dev/valid-attachments", json!(valid)).assert_ok();
    for (i, pod) in pods.iter().enumerate() {
        let kept = keep.contains(&i);
        assert_eq!(pod.link_names().len(), usize::from(kept), "pod {i}");
        assert_eq!(
            node.vm_dirs().contains(&format!("k8s__default__gcpod-{i}")),
            kept,
            "pod {i}"
        );
    }
    assert_eq!(
        link_names().iter().filter(|n| n.starts_with("tap")).count(),
        4
    );
    assert_eq!(sim.count("DELETE", "/vm/"), 6);
    assert!(
        !multus.join("k8s__default__orphan").exists(),
        "stale cache removed: {}",
        node.log()
    );
    assert!(
        multus.join("k8s__default__listed").exists(),
        "listed container's cache kept"
    );
    // The older key works the same, and GC is idempotent.
    gc("cni.dev/attachments", json!(valid)).assert_ok();
    assert_eq!(node.port_files().len(), 4);
    // DEL of a removed pod still succeeds.
    for i in [0usize, 2, 4, 6, 8, 9] {
        node.call(
            "DEL",
            &format!("gc-{i}"),
            &pods[i].path,
            &format!("gcpod-{i}"),
        )
        .run()
        .assert_ok();
    }
    for i in keep {
        node.call(
            "DEL",
            &format!("gc-{i}"),
            &pods[i].path,
            &format!("gcpod-{i}"),
        )
        .run()
        .assert_ok();
    }
    assert!(node.port_files().is_empty());
}
