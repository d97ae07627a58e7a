//! The agent client against the simulator: every endpoint, every fault mode,
//! the poll timing and the code-11 messages. Each test runs in its own
//! network namespace, so each simulator has a private loopback.

mod common;

use common::{Capture, Sim};
use contrail_cni::agent::{mesos_notify, Agent, PortRequest, VmiConfig};
use contrail_cni::cni::error::code;
use std::time::{Duration, Instant};

const POD: &str = "k8s__default__web-1";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn agent(sim: &Sim, poll_timeout: Duration, retries: u32) -> Agent {
    Agent::new("127.0.0.1", sim.port, poll_timeout, retries)
}

fn post_req(v: &VmiConfig, ifname: &str) -> PortRequest {
    PortRequest {
        vm_uuid: v.vm_uuid.clone(),
        vm_name: POD.into(),
        host_ifname: format!("tap{ifname}"),
        vn_uuid: v.vn_id.clone(),
        vmi_uuid: v.id.clone(),
        vm_id: "c0ffee".into(),
        vm_ifname: ifname.into(),
        vm_namespace: "/proc/1/ns/net".into(),
    }
}

#[test]
fn vm_cfg_is_complete_and_sorted_by_index() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--network-names", "blue,red=net5"]);
    let vmis = agent(&sim, ms(500), 4).poll_vm_cfg(POD).unwrap();
    assert_eq!(vmis[0].annotations.interface(), None);
    assert_eq!(vmis[1].annotations.interface(), None);
    assert_eq!(vmis[2].annotations.interface(), Some("net5"));
    assert_eq!(vmis.len(), 3);
    let nets: Vec<_> = vmis
        .iter()
        .map(|v| v.annotations.network().unwrap())
        .collect();
    assert_eq!(nets, ["default", "blue", "red"]);
    for (i, v) in vmis.iter().enumerate() {
        assert_eq!(v.annotations.index(), Some((i as u32, 3)));
        assert_eq!(v.vm_uuid, vmis[0].vm_uuid);
        assert_eq!(v.vlan_id, 65535);
        assert_eq!(v.annotations.get("name"), Some("web-1"));
        assert_eq!(v.annotations.get("project"), Some("k8s-default"));
    }
    assert_eq!(sim.requests().len(), 1);
    assert_eq!(sim.requests()[0].path, format!("/vm-cfg/{POD}"));
}

/// The acceptance number: not ready for 3 polls with poll_timeout 3 s must
/// finish well under 0.5 s (the reference sleeps 3 s per retry: 9 s).
#[test]
fn not_ready_for_three_polls_finishes_fast() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "vm-cfg:404=3"]);
    let t = Instant::now();
    let vmis = agent(&sim, Duration::from_secs(3), 20)
        .poll_vm_cfg(POD)
        .unwrap();
    let took = t.elapsed();
    eprintln!("not ready x3, poll_timeout 3s: {took:?}");
    assert!(took < ms(500), "{took:?}");
    assert_eq!(vmis.len(), 1);
    let statuses: Vec<_> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(404), Some(404), Some(404), Some(200)]);
}

#[test]
fn partial_empty_and_garbage_answers_are_retried() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[
        "--networks",
        "2",
        "--fault",
        "vm-cfg:partial=2",
        "--fault",
        "vm-cfg:empty=1",
        "--fault",
        "vm-cfg:garbage=1",
        "--fault",
        "vm-cfg:500=1",
    ]);
    let vmis = agent(&sim, ms(200), 20).poll_vm_cfg(POD).unwrap();
    assert_eq!(vmis.len(), 3);
    assert_eq!(sim.requests().len(), 6);
}

#[test]
fn vm_cfg_never_ready_is_code_11_with_a_useful_message() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "vm-cfg:404"]);
    let t = Instant::now();
    let e = agent(&sim, ms(100), 3).poll_vm_cfg(POD).unwrap_err();
    let took = t.elapsed();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    for part in [sim.addr.as_str(), POD, "404", "{ Not Found }"] {
        assert!(e.msg.contains(part), "{part:?} missing in {e}");
    }
    assert!(took >= ms(300) && took < ms(600), "{took:?}");
    // 25, 50, 100, 100 (clipped to the deadline) ms of sleep: 5 attempts.
    assert!(sim.requests().len() >= 4, "{}", sim.requests().len());
}

#[test]
fn incomplete_forever_names_the_reason() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--networks", "1", "--fault", "vm-cfg:partial"]);
    let e = agent(&sim, ms(50), 2).poll_vm_cfg(POD).unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.contains("incomplete: 1 of 2"), "{e}");
}

/// An agent that accepts connections and never answers ends in code 11
/// within the deadline plus one request timeout.
#[test]
fn hanging_agent_ends_within_deadline_plus_one_request() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "vm-cfg:hang"]);
    let (poll, retries) = (ms(300), 2);
    let t = Instant::now();
    let e = agent(&sim, poll, retries).poll_vm_cfg(POD).unwrap_err();
    let took = t.elapsed();
    eprintln!("hang, 2 x 300ms: {took:?}: {e}");
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.contains("no answer within"), "{e}");
    assert!(took >= poll * retries, "{took:?}");
    assert!(took < poll * retries + poll + ms(150), "{took:?}");
}

#[test]
fn connection_refused_is_retried_until_the_agent_comes_up() {
    require_root!();
    common::enter_fresh_netns();
    // Nothing listens yet: a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Agent::new("127.0.0.1", port, ms(50), 2)
        .poll_vm_cfg(POD)
        .unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.to_lowercase().contains("refused"), "{e}");

    // The simulator starts 300 ms later on that port (the thread inherits
    // this namespace, and so does the process it spawns).
    let starter = std::thread::spawn(move || {
        std::thread::sleep(ms(300));
        Sim::start_on(&format!("127.0.0.1:{port}"), &[])
    });
    let t = Instant::now();
    let vmis = Agent::new("127.0.0.1", port, Duration::from_secs(1), 5)
        .poll_vm_cfg(POD)
        .unwrap();
    let took = t.elapsed();
    let _sim = starter.join().unwrap();
    assert_eq!(vmis.len(), 1);
    assert!(took < ms(800), "{took:?}");
}

#[test]
fn veth_flow_post_then_poll_vm_then_delete() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--network-names", "blue"]);
    let a = agent(&sim, ms(100), 2);
    let vmis = a.poll_vm_cfg(POD).unwrap();
    let vm = vmis[0].vm_uuid.clone();
    let ids: Vec<&str> = vmis.iter().map(|v| v.id.as_str()).collect();

    // Not posted yet: /vm stays 404 (veth mode).
    let e = a.poll_vm(&vm, &ids).unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.contains(&vm), "{e}");
    assert_eq!(a.get_vmi(&vm, ids[0]).unwrap(), None);

    for (i, v) in vmis.iter().enumerate() {
        a.post_vm(&post_req(v, &format!("eth{i}"))).unwrap();
    }
    // Asked in reverse order: answered in the order asked.
    let rev: Vec<&str> = ids.iter().rev().copied().collect();
    let opers = a.poll_vm(&vm, &rev).unwrap();
    assert_eq!(opers.len(), 2);
    assert_eq!(opers[0].id, ids[1]);
    assert_eq!(opers[1].id, ids[0]);
    for o in &opers {
        assert!(o.has_address());
        assert_eq!(o.plen, Some(16));
        assert_eq!(o.instance_id, vm);
        assert!(o.gateway.as_deref().unwrap().ends_with(".0.1"));
        assert_eq!(o.v6_ip_address, None);
    }
    let one = a.poll_vm(&vm, &[ids[1]]).unwrap();
    assert_eq!(one[0].id, ids[1]);
    assert_eq!(a.get_vmi(&vm, ids[0]).unwrap().unwrap().id, ids[0]);

    // The POST body: exactly the agent's keys, vn-uuid = the VMI's vn-id.
    let posts: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    let body: serde_json::Value = serde_json::from_str(&posts[0].body).unwrap();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "host-ifname",
            "vm-id",
            "vm-ifname",
            "vm-name",
            "vm-namespace",
            "vm-uuid",
            "vmi-uuid",
            "vn-uuid"
        ]
    );
    assert_eq!(body["vn-uuid"], vmis[0].vn_id.as_str());
    assert_eq!(body["vm-id"], "c0ffee");

    // Paths: several VMIs -> /vm/<vm>; one -> /vm/<vm>/<vmi>.
    let gets: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/vm/"))
        .map(|r| r.path)
        .collect();
    assert!(gets.contains(&format!("/vm/{vm}")));
    assert!(gets.contains(&format!("/vm/{vm}/{}", ids[1])));

    a.delete_vm(&vm).unwrap();
    assert_eq!(a.get_vmi(&vm, ids[0]).unwrap(), None);
    let last = sim
        .requests()
        .into_iter()
        .rfind(|r| r.method == "DELETE")
        .unwrap();
    assert_eq!(last.path, format!("/vm/{vm}"));
}

#[test]
fn upper_case_uuids_are_sent_lower_case() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--nested"]);
    let a = agent(&sim, ms(100), 2);
    let v = a.poll_vm_cfg(POD).unwrap().remove(0);
    let (vm, vmi) = (v.vm_uuid.to_uppercase(), v.id.to_uppercase());
    let o = a.poll_vm(&vm, &[&vmi]).unwrap();
    assert_eq!(o[0].id, v.id);
    let mut req = post_req(&v, "eth0");
    req.vm_uuid = req.vm_uuid.to_uppercase();
    req.vmi_uuid = req.vmi_uuid.to_uppercase();
    a.post_vm(&req).unwrap();
    a.delete_vm(&vm).unwrap();
    for r in sim.requests() {
        assert_eq!(r.path, r.path.to_lowercase(), "{r:?}");
        assert_eq!(r.body, r.body.to_lowercase(), "{r:?}");
    }
}

#[test]
fn invalid_uuids_never_reach_the_wire() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[]);
    let a = agent(&sim, ms(100), 2);
    let vmi = "00000000-0000-4000-8000-000000000001";
    assert!(a.poll_vm("../../etc", &[vmi]).is_err());
    assert!(a.get_vmi(vmi, "x").is_err());
    assert!(a.delete_vm("").is_err());
    assert!(a.poll_vm_cfg("a/b").is_err());
    assert!(a.poll_vm_cfg("").is_err());
    let mut req = PortRequest {
        vm_uuid: vmi.into(),
        vm_name: POD.into(),
        host_ifname: "tap0".into(),
        vn_uuid: "nope".into(),
        vmi_uuid: vmi.into(),
        vm_id: String::new(),
        vm_ifname: String::new(),
        vm_namespace: String::new(),
    };
    assert!(a.post_vm(&req).is_err());
    req.vn_uuid = vmi.into();
    req.vmi_uuid = "../x".into();
    assert!(a.post_vm(&req).is_err());
    req.vmi_uuid = vmi.into();
    for bad_name in ["../../etc", "", "a/b", "a b", "a?b"] {
        req.vm_name = bad_name.into();
        assert!(a.post_vm(&req).is_err(), "{bad_name:?}");
        assert!(a.poll_vm_cfg(bad_name).is_err(), "{bad_name:?}");
    }
    assert!(sim.requests().is_empty());
}

#[test]
fn nested_mode_answers_without_post_and_has_vlans() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--nested", "--networks", "1"]);
    let a = agent(&sim, ms(100), 2);
    let vmis = a.poll_vm_cfg(POD).unwrap();
    assert!(vmis.iter().all(|v| v.vlan_id != 65535 && v.vlan_id >= 100));
    assert_ne!(vmis[0].vlan_id, vmis[1].vlan_id);
    let ids: Vec<&str> = vmis.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(a.poll_vm(&vmis[0].vm_uuid, &ids).unwrap().len(), 2);
    assert!(sim.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn ipv6_and_ipv6_only() {
    require_root!();
    common::enter_fresh_netns();
    for (args, v4) in [
        (&["--ipv6"][..], true),
        (&["--ipv6", "--no-ipv4", "--nested"][..], false),
    ] {
        let sim = Sim::start(args);
        let a = agent(&sim, ms(100), 2);
        let v = a.poll_vm_cfg(POD).unwrap().remove(0);
        if !args.contains(&"--nested") {
            a.post_vm(&post_req(&v, "eth0")).unwrap();
        }
        let o = a.poll_vm(&v.vm_uuid, &[&v.id]).unwrap().remove(0);
        assert!(o.has_address());
        assert_eq!(o.ip_address.is_some(), v4);
        assert_eq!(o.plen.is_some(), v4);
        let v6: std::net::Ipv6Addr = o.v6_ip_address.unwrap().parse().unwrap();
        assert!(!v6.is_unspecified());
        assert!(o.v6_gateway.is_some() && o.v6_dns_server.is_some());
    }
}

#[test]
fn vm_faults_are_retried_and_never_ready_is_code_11() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[
        "--nested",
        "--fault",
        "vm:garbage=1",
        "--fault",
        "vm:500=1",
        "--fault",
        "vm:empty=1",
    ]);
    let a = agent(&sim, ms(200), 5);
    let v = a.poll_vm_cfg(POD).unwrap().remove(0);
    assert_eq!(a.poll_vm(&v.vm_uuid, &[&v.id]).unwrap().len(), 1);
    assert_eq!(sim.requests().len(), 1 + 4);

    let sim = Sim::start(&["--nested", "--fault", "vm:404"]);
    let a = agent(&sim, ms(100), 2);
    let v = a.poll_vm_cfg(POD).unwrap().remove(0);
    let e = a.poll_vm(&v.vm_uuid, &[&v.id]).unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(
        e.msg.contains(&v.vm_uuid) && e.msg.contains("Not Found"),
        "{e}"
    );
}

#[test]
fn post_500_is_code_101_with_the_agent_text() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "post:500=1"]);
    let a = agent(&sim, ms(100), 2);
    let v = a.poll_vm_cfg(POD).unwrap().remove(0);
    let e = a.post_vm(&post_req(&v, "eth0")).unwrap_err();
    assert_eq!(e.code, code::AGENT);
    assert!(
        e.msg.contains("500") && e.msg.contains("Simulated failure"),
        "{e}"
    );
    a.post_vm(&post_req(&v, "eth0")).unwrap();
}

#[test]
fn single_requests_to_a_hanging_agent_time_out() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "post:hang", "--fault", "delete:hang"]);
    let a = agent(&sim, ms(200), 2);
    let v = a.poll_vm_cfg(POD).unwrap().remove(0);
    let t = Instant::now();
    let e = a.post_vm(&post_req(&v, "eth0")).unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    let e2 = a.delete_vm(&v.vm_uuid).unwrap_err();
    assert_eq!(e2.code, code::TRY_AGAIN_LATER);
    assert!(t.elapsed() < ms(700), "{:?}", t.elapsed());
}

#[test]
fn probe_any_answer_is_ok_silence_is_code_50() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[]);
    agent(&sim, ms(100), 1).probe(ms(500)).unwrap();
    assert_eq!(sim.requests()[0].status, Some(404));
    let port = sim.port;
    drop(sim);
    let e = Agent::new("127.0.0.1", port, ms(100), 1)
        .probe(ms(500))
        .unwrap_err();
    assert_eq!(e.code, code::NOT_AVAILABLE);
    let sim = Sim::start(&["--fault", "any:hang"]);
    let t = Instant::now();
    let e = agent(&sim, ms(100), 1).probe(ms(200)).unwrap_err();
    assert_eq!(e.code, code::NOT_AVAILABLE);
    assert!(t.elapsed() < ms(500), "{:?}", t.elapsed());
}

#[test]
fn ipv6_agent_address_is_bracketed() {
    require_root!();
    common::enter_fresh_netns();
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    }
    let sim = Sim::start_on("[::1]:0", &[]);
    let a = Agent::new("::1", sim.port, ms(100), 2);
    assert_eq!(a.address(), format!("[::1]:{}", sim.port));
    assert_eq!(a.poll_vm_cfg(POD).unwrap().len(), 1);
}

#[test]
fn post_sends_json_content_type_and_one_object() {
    require_root!();
    common::enter_fresh_netns();
    let cap = Capture::start(200, "{}");
    let a = Agent::new("127.0.0.1", cap.port, ms(500), 1);
    let vmi = "00000000-0000-4000-8000-00000000000a";
    let req = PortRequest {
        vm_uuid: vmi.into(),
        vm_name: POD.into(),
        host_ifname: "tap0".into(),
        vn_uuid: vmi.into(),
        vmi_uuid: vmi.into(),
        vm_id: "cid".into(),
        vm_ifname: "eth0".into(),
        vm_namespace: "/proc/1/ns/net".into(),
    };
    a.post_vm(&req).unwrap();
    let (head, body) = cap.request();
    assert!(head.starts_with("POST /vm HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: application/json\r\n"),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["vm-name"], POD);
}

#[test]
fn mesos_notify_posts_cid_cmd_args() {
    require_root!();
    common::enter_fresh_netns();
    let stdin = r#"{"cniVersion":"0.3.1","name":"x"}"#;
    for (cmd, route) in [("ADD", "/add_cni_info"), ("DEL", "/del_cni_info")] {
        let cap = Capture::start(200, "");
        mesos_notify("127.0.0.1", cap.port, cmd, "cid-1", stdin).unwrap();
        let (head, body) = cap.request();
        assert!(
            head.starts_with(&format!("POST {route} HTTP/1.1")),
            "{head}"
        );
        assert!(
            head.to_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cid": "cid-1", "cmd": cmd, "args": stdin})
        );
    }
    let cap = Capture::start(500, r#"{"error":"nope"}"#);
    let e = mesos_notify("127.0.0.1", cap.port, "ADD", "cid", stdin).unwrap_err();
    assert_eq!(e.code, code::AGENT);
    assert!(e.msg.contains("nope"), "{e}");
    cap.request();
    assert!(mesos_notify("127.0.0.1", 1, "CHECK", "cid", stdin).is_err());
}

#[test]
fn zero_budget_still_makes_one_attempt() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "vm-cfg:404=1"]);
    let e = agent(&sim, Duration::from_secs(3), 0)
        .poll_vm_cfg(POD)
        .unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert_eq!(sim.requests().len(), 1);
    assert_eq!(agent(&sim, ms(0), 0).poll_vm_cfg(POD).unwrap().len(), 1);
}
