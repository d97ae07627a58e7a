//! Multus delegate mode, nested (macvlan over VLAN) mode and Mesos mode,
//! end to end with the simulator.

mod common;

use common::*;
use serde_json::json;

/// Three delegate calls for a 3-network pod, as Multus makes them: each
/// with its network `name` and its own CNI_IFNAME, from a parent process
/// called `multus`.
#[test]
fn multus_delegates_touch_only_their_network() {
    if !setup() {
        return;
    }
    // Multus runs under kubelet's runtime, which sends the pod UID; the
    // delegates share the cached /vm-cfg answer only with it.
    const UID: &str = "5b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0";
    let sim = Sim::start(&[
        "--networks",
        "2",
        "--network-names",
        "blue,red",
        "--vm-uuid",
        UID,
    ]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let nets = [
        ("contrail-k8s-cni", "eth0"),
        ("blue", "net1"),
        ("red", "net2"),
    ];
    let args =
        format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=mpod;K8S_POD_UID={UID}");
    let call = |cmd: &str, name: &str, ifname: &str| {
        node.call(cmd, "c-multus", &pod.path, "mpod")
            .env("CNI_ARGS", &args)
            .env("CNI_IFNAME", ifname)
            .conf("name", json!(name))
            .run_under("multus")
    };
    let cache = node.dir.path().join("ports/multus/k8s__default__mpod");
    for (i, (name, ifname)) in nets.iter().enumerate() {
        let r = call("ADD", name, ifname);
        r.assert_ok();
        let r = r.json();
        let ifs = r["interfaces"].as_array().unwrap();
        assert_eq!(ifs.len(), 2, "one network per delegate call: {r}");
        assert_eq!(ifs[1]["name"], *ifname);
        assert_eq!(r["ips"].as_array().unwrap().len(), 1);
        assert_eq!(
            r["routes"].as_array().map_or(0, Vec::len),
            usize::from(i == 0),
            "default route on the default network only: {r}"
        );
        let mut names = pod.link_names();
        names.sort();
        let mut want: Vec<String> = nets[..=i].iter().map(|(_, n)| n.to_string()).collect();
        want.sort();
        assert_eq!(names, want);
        assert!(
            cache.exists(),
            "the /vm-cfg answer is cached for the next delegates"
        );
    }
    assert_eq!(
        sim.count("GET", "/vm-cfg/"),
        1,
        "/vm-cfg fetched once: {:?}",
        sim.requests()
    );
    assert_eq!(taps().len(), 3);

    for (i, (name, ifname)) in nets.iter().enumerate().rev() {
        call("DEL", name, ifname).assert_ok();
        let names = pod.link_names();
        assert!(!names.contains(&ifname.to_string()));
        assert_eq!(names.len(), i, "only {ifname} went: {names:?}");
        assert_eq!(taps().len(), i);
        assert_eq!(
            cache.exists(),
            i > 0,
            "the cache goes with the last interface"
        );
    }
    assert!(node.port_files().is_empty());
    assert!(node.vm_dirs().is_empty());
    assert_eq!(
        sim.count("DELETE", "/vm/"),
        1,
        "unsubscribed once, with the last interface"
    );
}

#[test]
fn explicit_delegate_flag_works_without_a_multus_parent() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--networks", "1", "--network-names", "blue"]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let r = node
        .call("ADD", "c-flag", &pod.path, "fpod")
        .env("CNI_IFNAME", "net1")
        .conf("name", json!("blue"))
        .contrail("delegate", json!(true))
        .run();
    r.assert_ok();
    assert_eq!(pod.link_names(), vec!["net1".to_string()]);
    node.call("DEL", "c-flag", &pod.path, "fpod")
        .env("CNI_IFNAME", "net1")
        .conf("name", json!("blue"))
        .contrail("delegate", json!(true))
        .run()
        .assert_ok();
    assert!(pod.link_names().is_empty());
    assert!(node.port_files().is_empty());
}

#[test]
fn stale_multus_cache_of_an_older_sandbox_is_not_reused() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let node = Node::new(sim.port);
    let pod = NsFd::new();
    let cache_dir = node.dir.path().join("ports/multus");
    std::fs::create_dir_all(&cache_dir).unwrap();
    // A cache left by an earlier pod with the same name (missed DEL).
    std::fs::write(
        cache_dir.join("k8s__default__spod"),
        json!({"container-id": "old-sandbox", "pod-uid": "", "vmis": []}).to_string(),
    )
    .unwrap();
    let r = node
        .call("ADD", "c-new", &pod.path, "spod")
        .run_under("multus");
    r.assert_ok();
    assert_eq!(sim.count("GET", "/vm-cfg/"), 1, "the agent was asked again");
    node.call("DEL", "c-new", &pod.path, "spod")
        .run_under("multus")
        .assert_ok();
    assert!(!cache_dir.join("k8s__default__spod").exists());
}

#[test]
fn nested_mode_fails_cleanly_on_a_kernel_without_vlan() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&["--nested"]);
    let node = Node::with(
        sim.port,
        json!({"vif-type": "macvlan", "parent-interface": "ens3"}),
    );
    ip(&[
        "link",
        "add",
        "ens3",
        "type",
        "veth",
        "peer",
        "name",
        "ens3-peer",
    ]);
    ip(&["link", "set", "ens3", "up"]);
    let pod = NsFd::new();
    let r = node.call("ADD", "c-nested", &pod.path, "npod").run();
    if r.ok() {
        eprintln!("this kernel supports 802.1Q: checking the full nested path");
        assert_eq!(pod.link_names(), vec!["eth0".to_string()]);
        let vlans: Vec<_> = link_names()
            .into_iter()
            .filter(|n| n.starts_with("vlan"))
            .collect();
        assert_eq!(vlans.len(), 1);
        assert_eq!(sim.count("POST", "/vm"), 0, "nested mode never POSTs");
        node.call("DEL", "c-nested", &pod.path, "npod")
            .run()
            .assert_ok();
    } else {
        eprintln!(
            "SKIPPED the live VLAN half: kernel has no 802.1Q support; checking the clean failure"
        );
        assert!(r.msg().contains("802.1Q"), "{r:?}");
    }
    let mut left = link_names();
    left.sort();
    assert_eq!(left, vec!["ens3".to_string(), "ens3-peer".to_string()]);
    assert!(pod.link_names().is_empty());
    assert!(node.port_files().is_empty());
    assert!(node.vm_dirs().is_empty());
    assert_eq!(sim.count("POST", "/vm"), 0);
}

#[test]
fn nested_mode_refuses_a_vmi_without_vlan() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]); // ordinary VMIs: vlan-id 65535
    let node = Node::with(
        sim.port,
        json!({"vif-type": "macvlan", "parent-interface": "ens3"}),
    );
    let pod = NsFd::new();
    let r = node.call("ADD", "c-novlan", &pod.path, "novlan").run();
    assert_eq!(r.code(), 7, "{r:?}");
    assert!(r.msg().contains("65535"), "{r:?}");
    assert!(node.port_files().is_empty());
}

/// The macvlan half of nested mode, live, on a veth parent (this kernel
/// has no VLAN links; the VLAN request is covered by golden bytes).
#[test]
fn macvlan_half_is_born_in_the_pod_on_a_veth_parent() {
    if !setup() {
        return;
    }
    use contrail_cni::netlink::Socket;
    use contrail_cni::netns::NetNs;
    ip(&[
        "link", "add", "par0", "type", "veth", "peer", "name", "par1",
    ]);
    let pod = NsFd::new();
    let ns = NetNs::open(&pod.path).unwrap();
    let mut host = Socket::new().unwrap();
    let par0 = contrail_cni::ids::IfName::parse("par0").unwrap();
    let parent = host.link_by_name(&par0).unwrap().unwrap();
    let mac = "02:00:00:00:aa:01".parse().unwrap();
    let eth0 = contrail_cni::ids::IfName::parse("eth0").unwrap();
    contrail_cni::vif::create_macvlan(&mut host, &ns, parent.index, &eth0, mac, 1400).unwrap();
    let shown = pod.ip(&["-d", "link", "show", "eth0"]);
    assert!(shown.contains("macvlan mode vepa"), "{shown}");
    assert!(
        shown.contains("02:00:00:00:aa:01") && shown.contains("mtu 1400"),
        "{shown}"
    );
    assert!(!link_names().contains(&"eth0".to_string()));
    // Deleting the lower device takes the macvlan with it, across namespaces.
    ip(&["link", "del", "par0"]);
    assert!(pod.link_names().is_empty());
}

#[test]
fn mesos_mode_notifies_the_manager_then_runs_the_normal_flow() {
    if !setup() {
        return;
    }
    let sim = Sim::start(&[]);
    let mgr = Capture::start(200, "{}");
    let node = Node::with(
        sim.port,
        json!({"mode": "mesos", "mesos-ip": "127.0.0.1", "mesos-port": mgr.port.to_string()}),
    );
    let pod = NsFd::new();
    let call = |cmd: &str| {
        node.call(cmd, "mesos-task-1", &pod.path, "ignored")
            .unset("CNI_ARGS")
    };
    let add = call("ADD");
    let r = add.run();
    r.assert_ok();
    assert_eq!(pod.link_names(), vec!["eth0".to_string()]);
    call("DEL").run().assert_ok();
    assert!(pod.link_names().is_empty());
    let seen = mgr.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for ((head, body), cmd) in seen.iter().zip(["ADD", "DEL"]) {
        assert!(
            head.starts_with(&format!("POST /{}_cni_info ", cmd.to_lowercase())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["cid"], "mesos-task-1");
        assert_eq!(v["cmd"], cmd);
        let args: serde_json::Value = serde_json::from_str(v["args"].as_str().unwrap()).unwrap();
        assert_eq!(args, add.stdin, "args carries the stdin config");
    }
    assert!(sim
        .requests()
        .iter()
        .any(|r| r.path == "/vm-cfg/mesos-task-1"));
}
