//! ADD and DEL in veth mode, end to end: the real binary, the simulator, a
//! real pod namespace. Each test runs in its own network namespace (the
//! "host"), so the simulator listens on that namespace's loopback.

mod common;

use common::*;
use serde_json::{json, Value};

/// Nothing of the pod is left (see `common::assert_no_leak`).
fn assert_clean(node: &Node, pod: &NsFd) {
    common::assert_no_leak(&node.ports_dir(), Some(pod));
}

#[test]
fn add_configures_the_pod_and_del_removes_everything() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let add = node.call("ADD", "c1", &pod.path, "web-1").run();
    add.assert_ok();
    let r = add.json();
    assert_eq!(r["cniVersion"], "1.0.0");
    let ifs = r["interfaces"].as_array().expect("interfaces");
    assert_eq!(ifs.len(), 2, "{r}");
    let tap = ifs[0]["name"].as_str().unwrap().to_string();
    assert!(tap.starts_with("tap") && tap.len() == 15, "{tap}");
    assert!(
        ifs[0].get("sandbox").is_none() || ifs[0]["sandbox"] == "",
        "{r}"
    );
    assert_eq!(ifs[1]["name"], "eth0");
    assert_eq!(ifs[1]["sandbox"], pod.path.as_str());
    let ip0 = &r["ips"][0];
    assert_eq!(ip0["interface"], 1);
    assert!(
        ip0.get("version").is_none(),
        "1.0.0 has no ips[].version: {r}"
    );
    let addr = ip0["address"].as_str().unwrap().to_string();
    let gw = ip0["gateway"].as_str().unwrap().to_string();
    assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
    assert!(
        !r["dns"]["nameservers"].as_array().unwrap().is_empty(),
        "{r}"
    );

    // The kernel agrees with the result.
    let addrs = pod.ip(&["-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&addr), "{addrs}");
    let mac = ifs[1]["mac"].as_str().unwrap();
    assert!(pod.ip(&["link", "show", "eth0"]).contains(mac));
    let routes = pod.ip(&["route", "show", "default"]);
    assert!(
        routes.contains(&format!("via {gw}")) && routes.contains("onlink"),
        "{routes}"
    );
    assert!(pod.ip(&["link", "show", "lo"]).contains("UP"));
    let tap_state = ip(&["link", "show", &tap]);
    assert!(
        tap_state.contains(",UP") || tap_state.contains("<UP"),
        "{tap_state}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{tap}/accept_ra"))
            .unwrap()
            .trim(),
        "0"
    );

    // The agent got the subscription and the port file matches it.
    let posts: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    let body: Value = serde_json::from_str(&posts[0].body).unwrap();
    assert_eq!(body["host-ifname"], tap.as_str());
    assert_eq!(body["vm-name"], "k8s__default__web-1");
    assert_eq!(body["vm-id"], "c1");
    assert_eq!(body["vm-ifname"], "eth0");
    let files = node.port_files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1["host-ifname"], tap.as_str());
    assert_eq!(files[0].1["vmi-uuid"], body["vmi-uuid"]);

    node.call("DEL", "c1", &pod.path, "web-1").run().assert_ok();
    assert_clean(&node, &pod);
    assert_eq!(sim.count("DELETE", "/vm/"), 1);
    // Repeated DEL, DEL with an empty netns: still success.
    let again = node.call("DEL", "c1", &pod.path, "web-1").run();
    again.assert_ok();
    assert!(again.stdout.is_empty(), "DEL prints nothing: {again:?}");
    node.call("DEL", "c1", "", "web-1").run().assert_ok();
}

#[test]
fn multi_network_pod_gets_every_interface_and_one_default_route() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--networks", "2"]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let add = node.call("ADD", "c-multi", &pod.path, "multi").run();
    add.assert_ok();
    let r = add.json();
    let names: Vec<&str> = r["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 6, "{r}");
    for n in ["eth0", "eth1", "eth2"] {
        assert!(names.contains(&n), "{names:?}");
    }
    assert_eq!(r["ips"].as_array().unwrap().len(), 3);
    for ip in r["ips"].as_array().unwrap() {
        let idx = ip["interface"].as_u64().unwrap() as usize;
        let ifname = r["interfaces"][idx]["name"].as_str().unwrap();
        let addr = ip["address"].as_str().unwrap();
        assert!(
            pod.ip(&["-o", "addr", "show", "dev", ifname])
                .contains(addr),
            "{addr} on {ifname}"
        );
    }
    let defaults = pod.ip(&["route", "show", "default"]);
    assert_eq!(defaults.lines().count(), 1, "{defaults}");
    assert!(defaults.contains("dev eth0"), "{defaults}");
    assert_eq!(taps().len(), 3);
    assert_eq!(node.port_files().len(), 3);
    assert_eq!(sim.count("POST", "/vm"), 3);

    node.call("DEL", "c-multi", &pod.path, "multi")
        .run()
        .assert_ok();
    assert_clean(&node, &pod);
}

#[test]
fn result_shape_follows_every_cni_version() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    for (i, version) in [
        "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
    ]
    .iter()
    .enumerate()
    {
        let pod = NsFd::new();
        let cid = format!("cv{i}");
        let r = node
            .call("ADD", &cid, &pod.path, &format!("v{i}"))
            .conf("cniVersion", json!(version))
            .run();
        r.assert_ok();
        let r = r.json();
        assert_eq!(r["cniVersion"], *version);
        match *version {
            "0.1.0" | "0.2.0" => {
                assert!(r["ip4"]["ip"].as_str().unwrap().contains('/'), "{r}");
                assert!(r.get("interfaces").is_none(), "{r}");
            }
            "0.3.0" | "0.3.1" | "0.4.0" => {
                assert_eq!(r["ips"][0]["version"], "4", "{r}");
                assert!(r["interfaces"][1].get("mtu").is_none(), "{r}");
            }
            "1.0.0" => assert!(r["ips"][0].get("version").is_none(), "{r}"),
            _ => {
                assert!(r["ips"][0].get("version").is_none(), "{r}");
                assert_eq!(r["interfaces"][1]["mtu"], 1500, "{r}");
            }
        }
        node.call("DEL", &cid, &pod.path, &format!("v{i}"))
            .conf("cniVersion", json!(version))
            .run()
            .assert_ok();
        assert_clean(&node, &pod);
    }
}

#[test]
fn chained_prev_result_is_kept_and_reindexed() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let prev = json!({"cniVersion": "1.0.0",
        "interfaces": [{"name": "sriov0", "sandbox": pod.path}],
        "ips": [{"address": "192.168.50.2/24", "interface": 0}],
        "dns": {"nameservers": ["192.168.50.53"]}});
    let r = node
        .call("ADD", "c-chain", &pod.path, "chain")
        .conf("prevResult", prev)
        .run();
    r.assert_ok();
    let r = r.json();
    assert_eq!(r["interfaces"][0]["name"], "sriov0");
    assert_eq!(r["interfaces"].as_array().unwrap().len(), 3);
    assert_eq!(r["ips"][0]["address"], "192.168.50.2/24");
    assert_eq!(
        r["ips"][1]["interface"], 2,
        "our ip points at our eth0: {r}"
    );
    assert!(r["dns"]["nameservers"]
        .as_array()
        .unwrap()
        .contains(&json!("192.168.50.53")));
    node.call("DEL", "c-chain", &pod.path, "chain")
        .run()
        .assert_ok();
}

#[test]
fn existing_interface_in_the_pod_fails_add_without_leaks() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    pod.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "other",
    ]);
    let r = node.call("ADD", "c-exists", &pod.path, "exists").run();
    assert_eq!(r.code(), 4, "{r:?}");
    assert!(r.msg().contains("eth0"), "{r:?}");
    assert!(taps().is_empty());
    assert!(node.port_files().is_empty());
    assert_eq!(pod.link_names().len(), 2, "the pod's own links stay");
}

#[test]
fn del_of_an_older_sandbox_leaves_the_new_one_alone() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let old = NsFd::new();
    let new = NsFd::new();
    node.call("ADD", "sandbox-1", &old.path, "sts-0")
        .run()
        .assert_ok();
    // kubelet retried: a new sandbox of the same pod, before the old DEL.
    node.call("ADD", "sandbox-2", &new.path, "sts-0")
        .run()
        .assert_ok();
    assert_eq!(taps().len(), 1, "the new sandbox took the pod's VMI over");
    assert!(
        old.link_names().is_empty(),
        "the old sandbox's veth went with its tap"
    );
    // The late DEL of the old sandbox must not touch the new one.
    node.call("DEL", "sandbox-1", &old.path, "sts-0")
        .run()
        .assert_ok();
    assert_eq!(taps().len(), 1);
    assert_eq!(new.link_names(), vec!["eth0".to_string()]);
    assert_eq!(node.port_files().len(), 1);
    assert_eq!(sim.count("DELETE", "/vm/"), 0);
    node.call("DEL", "sandbox-2", &new.path, "sts-0")
        .run()
        .assert_ok();
    assert_clean(&node, &new);
}

#[test]
fn del_without_add_and_with_a_vanished_netns_succeeds() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    node.call("DEL", "never-added", "/proc/1/ns/nonexistent", "ghost")
        .run()
        .assert_ok();
    node.call("DEL", "never-added", "", "ghost")
        .run()
        .assert_ok();
    let pod = NsFd::new();
    node.call("ADD", "c-vanish", &pod.path, "vanish")
        .run()
        .assert_ok();
    let path = pod.path.clone();
    drop(pod); // the namespace is gone; its veth end went with it
    node.call("DEL", "c-vanish", &path, "vanish")
        .run()
        .assert_ok();
    assert!(taps().is_empty());
    assert!(node.port_files().is_empty());
}

#[test]
fn del_while_the_agent_is_down_still_cleans_up() {
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
    let r = node.call("DEL", "c-down", &pod.path, "down").run();
    r.assert_ok();
    assert_clean(&node, &pod);
    // Without K8S_POD_UID the VM to unsubscribe is confirmed with the
    // agent first: that failure is logged, and nothing is sent after it.
    assert!(
        node.log()
            .contains("cannot confirm the VM of k8s__default__down"),
        "the failed confirmation is logged: {}",
        node.log()
    );
}

#[test]
fn del_without_cni_args_finds_the_container_by_scanning() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    node.call("ADD", "c-noargs", &pod.path, "noargs")
        .run()
        .assert_ok();
    node.call("DEL", "c-noargs", &pod.path, "noargs")
        .unset("CNI_ARGS")
        .run()
        .assert_ok();
    assert_clean(&node, &pod);
}

#[test]
fn twenty_pods_in_parallel_five_rounds() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    for round in 0..5 {
        let pods: Vec<NsFd> = (0..20).map(|_| NsFd::new()).collect();
        let run = |cmd: &str| {
            std::thread::scope(|s| {
                let handles: Vec<_> = pods
                    .iter()
                    .enumerate()
                    .map(|(i, pod)| {
                        let node = &node;
                        let cmd = cmd.to_string();
                        s.spawn(move || {
                            node.call(
                                &cmd,
                                &format!("r{round}-p{i}"),
                                &pod.path,
                                &format!("par-{i}"),
                            )
                            .run()
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().expect("thread").assert_ok();
                }
            })
        };
        // The spawned threads are in this test's namespace: `thread::scope`
        // threads inherit the namespace of the thread that creates them.
        run("ADD");
        assert_eq!(taps().len(), 20, "round {round}");
        for pod in &pods {
            assert_eq!(pod.link_names(), vec!["eth0".to_string()]);
        }
        run("DEL");
        assert!(taps().is_empty(), "round {round}: {:?}", link_names());
        assert!(node.port_files().is_empty());
        for pod in &pods {
            assert!(pod.link_names().is_empty());
        }
    }
}

#[test]
fn dual_stack_pod_gets_ipv6_with_an_onlink_default_route() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--ipv6"]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let add = node.call("ADD", "c-v6", &pod.path, "v6").run();
    add.assert_ok();
    let r = add.json();
    let v6 = r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ip| ip["address"].as_str().unwrap().contains(':'))
        .unwrap_or_else(|| panic!("no IPv6 address: {r}"))
        .clone();
    // The agent sends no IPv6 prefix length: /128 plus an on-link route.
    assert!(v6["address"].as_str().unwrap().ends_with("/128"), "{r}");
    assert_eq!(v6["interface"], 1);
    assert!(
        r["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|rt| rt["dst"] == "::/0"),
        "{r}"
    );
    let addr = v6["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(pod
        .ip(&["-6", "-o", "addr", "show", "dev", "eth0"])
        .contains(&addr));
    let route = pod.ip(&["-6", "route", "show", "default"]);
    assert!(
        route.contains(v6["gateway"].as_str().unwrap()) && route.contains("onlink"),
        "{route}"
    );
    node.call("DEL", "c-v6", &pod.path, "v6").run().assert_ok();
    assert!(taps().is_empty());
}

#[test]
fn v6_prefix_len_from_the_node_file_is_used() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--ipv6"]);
    let node = Node::with(sim.port, json!({"v6-prefix-len": 64}));
    let pod = NsFd::new();
    let add = node.call("ADD", "c-v6p", &pod.path, "v6p").run();
    add.assert_ok();
    let r = add.json();
    assert!(
        r["ips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ip| ip["address"].as_str().unwrap().ends_with("/64")),
        "{r}"
    );
    node.call("DEL", "c-v6p", &pod.path, "v6p")
        .run()
        .assert_ok();
}
