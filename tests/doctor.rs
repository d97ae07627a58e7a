//! `contrail-k8s-cni doctor`: a healthy node is healthy, every kind of leak
//! is found and named, a missing agent or node configuration is never
//! "healthy", and the JSON always parses. Each test is its own node (a
//! temporary directory found through CONTRAIL_CNI_CONF_DIRS) in its own
//! network namespace.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Output};

/// `doctor [--json]` against the node configuration in `net_d`.
fn doctor(net_d: &std::path::Path, json: bool) -> Output {
    let args: &[&str] = if json {
        &["doctor", "--json"]
    } else {
        &["doctor"]
    };
    let dirs = net_d.display().to_string();
    common::launch(args, &[("CONTRAIL_CNI_CONF_DIRS", &dirs)], b"")
}

/// The JSON report and the exit code, checking that the document and the
/// code agree.
fn report(node: &Node) -> (Value, i32) {
    let out = doctor(&node.dir.path().join("net.d"), true);
    let code = out.status.code().expect("exit code");
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    assert_eq!(v["exit-code"], code, "{v}");
    (v, code)
}

/// The checks of a report with `status` whose detail contains `needle`.
fn findings(v: &Value, status: &str, needle: &str) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| {
            format!(
                "{}: {}",
                c["check"].as_str().unwrap(),
                c["detail"].as_str().unwrap()
            )
        })
        .filter(|d| d.contains(needle))
        .collect()
}

/// Asserts one problem naming every `needle` under check `check`, and
/// exit 1.
fn assert_problem(node: &Node, check: &str, needles: &[&str]) {
    let (v, code) = report(node);
    assert_eq!(code, 1, "{v:#}");
    let hits = findings(&v, "problem", &format!("{check}: "));
    assert!(
        hits.iter().any(|h| needles.iter().all(|n| h.contains(n))),
        "no {check} problem naming {needles:?}: {v:#}"
    );
}

fn assert_healthy(node: &Node) -> Value {
    let (v, code) = report(node);
    assert_eq!((code, v["status"].as_str()), (0, Some("healthy")), "{v:#}");
    v
}

/// The (host link, port file path, container) of the pod's one interface.
fn tap_of(node: &Node, pod: &str) -> (String, std::path::PathBuf) {
    node.port_files()
        .into_iter()
        .find(|(p, v)| p.to_string_lossy().contains(pod) && v.is_object())
        .map(|(p, v)| (v["host-ifname"].as_str().unwrap().to_string(), p))
        .unwrap_or_else(|| panic!("no port file of {pod}"))
}

#[test]
fn a_healthy_node_is_healthy_and_doctor_changes_nothing() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    node.call("ADD", "c-healthy", &pod.path, "web")
        .run()
        .assert_ok();
    // A temporary file of a dead writer: GC's to remove, not doctor's.
    let vm_dir = node.ports_dir().join("k8s__default__web");
    let stale = vm_dir.join(".tmp-2147483646-0");
    std::fs::write(&stale, "x").unwrap();
    let v = assert_healthy(&node);
    assert!(stale.exists(), "doctor removed a file");
    let (tap, _) = tap_of(&node, "web");
    let p = &v["pods"][0];
    assert_eq!(p["vm-name"], "k8s__default__web");
    assert_eq!(p["container-id"], "c-healthy");
    assert_eq!(p["netns"], pod.path.as_str());
    assert_eq!(p["netns-exists"], true);
    let i = &p["interfaces"][0];
    assert_eq!(
        (
            &i["ifname"],
            &i["host-link"],
            &i["link-up"],
            &i["marked"],
            &i["agent"]
        ),
        (
            &"eth0".into(),
            &tap.as_str().into(),
            &true.into(),
            &true.into(),
            &"knows".into()
        )
    );
    for check in [
        "node-config",
        "agent",
        "config-dir",
        "log-file",
        "links",
        "lock-files",
    ] {
        assert!(
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["check"] == check && c["status"] == "ok"),
            "{check}: {v:#}"
        );
    }
    let table = doctor(&node.dir.path().join("net.d"), false);
    assert_eq!(table.status.code(), Some(0));
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(t.contains("k8s__default__web") && t.contains(&tap), "{t}");
    assert!(
        t.contains("up, marked") && t.ends_with("\nhealthy\n"),
        "{t}"
    );
    node.call("DEL", "c-healthy", &pod.path, "web")
        .run()
        .assert_ok();
    assert_healthy(&node);
}

#[test]
fn every_kind_of_leak_is_found_and_named() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    node.call("ADD", "c-ok", &pod.path, "ok").run().assert_ok();
    assert_healthy(&node);
    let (tap, port_file) = tap_of(&node, "ok");

    // A marked host link no port file records.
    ip(&[
        "link",
        "add",
        "tap0123456789ab",
        "type",
        "veth",
        "peer",
        "name",
        "leak-peer",
    ]);
    ip(&[
        "link",
        "set",
        "tap0123456789ab",
        "alias",
        "contrail-k8s-cni:c-ghost",
    ]);
    assert_problem(&node, "links", &["tap0123456789ab", "c-ghost"]);
    ip(&["link", "del", "tap0123456789ab"]);

    // The pod's host link down, then marked for someone else.
    ip(&["link", "set", &tap, "down"]);
    assert_problem(&node, "interfaces", &[&tap, "down"]);
    ip(&["link", "set", &tap, "up"]);
    ip(&["link", "set", &tap, "alias", "contrail-k8s-cni:c-other"]);
    assert_problem(
        &node,
        "interfaces",
        &[&tap, "not marked for container c-ok"],
    );
    assert_problem(&node, "links", &[&tap, "c-other"]);
    ip(&["link", "set", &tap, "alias", "contrail-k8s-cni:c-ok"]);
    assert_healthy(&node);

    // Debris in the state directories.
    let state = node.dir.path().join("ports");
    let empty = state.join("vm/k8s__default__empty");
    std::fs::create_dir(&empty).unwrap();
    assert_problem(&node, "vm-dirs", &["k8s__default__empty"]);
    std::fs::remove_dir(&empty).unwrap();
    let cache = state.join("multus/k8s__default__orphan");
    std::fs::create_dir_all(state.join("multus")).unwrap();
    std::fs::write(&cache, r#"{"container-id": "gone", "vmis": []}"#).unwrap();
    assert_problem(&node, "multus-caches", &["k8s__default__orphan"]);
    std::fs::remove_file(&cache).unwrap();
    let lock = state.join("cni-locks/k8s__default__lonely");
    std::fs::write(&lock, "").unwrap();
    assert_problem(&node, "lock-files", &["k8s__default__lonely"]);
    std::fs::remove_file(&lock).unwrap();
    let corrupt = port_file.with_file_name("11111111-2222-3333-4444-555555555555");
    std::fs::write(&corrupt, "{ not json").unwrap();
    assert_problem(
        &node,
        "corrupt-files",
        &["11111111-2222-3333-4444-555555555555", "invalid port file"],
    );
    std::fs::remove_file(&corrupt).unwrap();
    assert_healthy(&node);

    // A port file whose link is gone.
    ip(&["link", "del", &tap]);
    assert_problem(
        &node,
        "interfaces",
        &[&tap, "is gone", &port_file.display().to_string()],
    );
    node.call("DEL", "c-ok", &pod.path, "ok").run().assert_ok();
    assert_healthy(&node);
}

#[test]
fn a_vanished_netns_and_a_forgotten_vmi_are_named() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    // A sandbox held by a process: when it dies, the netns path goes.
    let mut holder = Command::new("unshare")
        .args(["--net", "sleep", "600"])
        .spawn()
        .expect("unshare");
    let netns = format!("/proc/{}/ns/net", holder.id());
    // unshare(1) has entered its namespace once it has exec'd sleep.
    while std::fs::read_to_string(format!("/proc/{}/comm", holder.id())).unwrap_or_default()
        != "sleep\n"
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    node.call("ADD", "c-held", &netns, "held").run().assert_ok();
    assert_healthy(&node);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_problem(&node, "netns", &[&netns, "k8s__default__held", "c-held"]);
    node.call("DEL", "c-held", &netns, "held").run().assert_ok();

    let pod = NsFd::new();
    node.call("ADD", "c-vmi", &pod.path, "vmi")
        .run()
        .assert_ok();
    let (_, port_file) = tap_of(&node, "vmi");
    let pf: Value = serde_json::from_str(&std::fs::read_to_string(&port_file).unwrap()).unwrap();
    let (vm_uuid, vmi) = (
        pf["vm-uuid"].as_str().unwrap(),
        pf["vmi-uuid"].as_str().unwrap(),
    );
    // The agent unbinds the pod (an agent restart that lost it).
    let (status, _, _) = sim.raw("DELETE", &format!("/vm/{vm_uuid}"), "");
    assert!(status.contains("200"), "{status}");
    assert_problem(&node, "agent-vmis", &[vmi, "k8s__default__vmi"]);
    node.call("DEL", "c-vmi", &pod.path, "vmi")
        .run()
        .assert_ok();
    assert_healthy(&node);
}

#[test]
fn an_agent_that_is_down_or_hangs_is_not_healthy() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    node.call("ADD", "c-down", &pod.path, "down")
        .run()
        .assert_ok();
    drop(sim);
    let (v, code) = report(&node);
    assert_eq!(code, 1, "{v:#}");
    assert!(!findings(&v, "problem", "agent: ").is_empty(), "{v:#}");
    assert!(
        !findings(&v, "error", "agent-vmis: not checked").is_empty(),
        "{v:#}"
    );
    let t = doctor(&node.dir.path().join("net.d"), false);
    assert_eq!(t.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&t.stdout).contains("not reachable"));

    // Up, but every GET /vm hangs: the requests share one deadline and
    // the VMI is reported as not checked.
    let hung = Sim::start_on(&format!("127.0.0.1:{}", node.port), &["--fault", "vm:hang"]);
    let (v, code) = report(&node);
    assert_eq!(code, 2, "{v:#}");
    assert!(
        !findings(&v, "error", "agent-vmis: VMI").is_empty(),
        "{v:#}"
    );
    assert_eq!(v["pods"][0]["interfaces"][0]["link-up"], true);
    drop(hung);
    node.call("DEL", "c-down", &pod.path, "down")
        .run()
        .assert_ok();
}

#[test]
fn json_parses_when_nothing_can_be_checked() {
    let dir = TempDir::new("doctor-none");
    let out = doctor(dir.path(), true);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on exit 2");
    assert_eq!(v["status"], "unchecked");
    assert_eq!(v["node-configuration"], Value::Null);
    assert_eq!(v["checks"][0]["check"], "node-config");
    assert_eq!(v["checks"][0]["status"], "error");

    // A node configuration with a bad value: named, exit 2.
    std::fs::write(
        dir.path().join("10-contrail.conf"),
        r#"{"contrail": {"mtu": 5}}"#,
    )
    .unwrap();
    let out = doctor(dir.path(), true);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on exit 2");
    assert!(
        v["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("contrail.mtu"),
        "{v}"
    );

    let out = doctor(dir.path(), false);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("could not run"));
    let usage = common::launch(&["doctor", "--bogus"], &[], b"");
    assert_eq!(usage.status.code(), Some(2));
}
