//! The agent client against the simulator: every endpoint, every fault mode,
//! the one deadline across phases and POSTs, "not yet" versus "invalid",
//! the code-11 messages, keep-alive, and the Mesos notification. Each test
//! runs in its own network namespace, so each simulator has a private
//! loopback.

mod common;

use common::{Capture, Sim};
use contrail_cni::agent::{Agent, PortRequest, VmiConfig, MAX_VMIS};
use contrail_cni::cni::error::code;
use contrail_cni::deadline::Deadline;
use contrail_cni::ids::{ContainerId, IfName, Uuid, VmName};
use contrail_cni::mesos;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POD: &str = "k8s__default__web-1";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn pod() -> VmName {
    VmName::parse(POD).unwrap()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn agent(sim: &Sim, poll_timeout: Duration) -> Agent {
    Agent::new(addr(sim.port), poll_timeout)
}

/// A deadline of `n` ms from now.
fn within(n: u64) -> Deadline {
    Deadline::after(ms(n))
}

fn post_req(v: &VmiConfig, ifname: &str) -> PortRequest {
    PortRequest {
        vm_uuid: v.vm_uuid.clone(),
        vm_name: pod(),
        host_ifname: IfName::parse(&format!("tap{ifname}")).unwrap(),
        vn_uuid: v.vn_id.clone(),
        vmi_uuid: v.id.clone(),
        vm_id: ContainerId::parse("c0ffee").unwrap(),
        vm_ifname: IfName::parse(ifname).unwrap(),
        vm_namespace: "/proc/1/ns/net".into(),
    }
}

/// A port nothing listens on (free a moment ago).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn vm_cfg_is_complete_typed_and_sorted_by_index() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--network-names", "blue,red=net5"]);
    let vmis = agent(&sim, ms(500))
        .poll_vm_cfg(&pod(), &within(2000))
        .unwrap();
    assert_eq!(vmis.len(), 3);
    let ifnames: Vec<_> = vmis.iter().map(|v| v.ifname.clone()).collect();
    assert_eq!(ifnames, [None, None, Some(IfName::parse("net5").unwrap())]);
    let nets: Vec<_> = vmis.iter().map(|v| v.network.as_deref().unwrap()).collect();
    assert_eq!(nets, ["default", "blue", "red"]);
    for (i, v) in vmis.iter().enumerate() {
        assert_eq!(v.index, i as u32);
        assert_eq!(v.annotations.index(), Some((i as u32, 3)));
        assert_eq!(v.vm_uuid, vmis[0].vm_uuid);
        assert_eq!(v.vlan_id, None);
        assert_eq!(v.mac.0[0] & 1, 0, "unicast");
        assert_eq!(v.annotations.get("name"), Some("web-1"));
        assert_eq!(v.annotations.get("project"), Some("k8s-default"));
    }
    assert_eq!(sim.requests().len(), 1);
    assert_eq!(sim.requests()[0].path, format!("/vm-cfg/{POD}"));
}

/// Not ready for 3 polls with poll_timeout 3 s: the sleeps start at 25 ms
/// and double (the reference sleeps 3 s per retry: 9 s).
#[test]
fn not_ready_for_three_polls_sleeps_briefly() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "vm-cfg:404=3"]);
    let t = Instant::now();
    let vmis = agent(&sim, Duration::from_secs(3))
        .poll_vm_cfg(&pod(), &within(60_000))
        .unwrap();
    let took = t.elapsed();
    eprintln!("not ready x3, poll_timeout 3s: {took:?}");
    assert!(took < ms(1000), "25 + 50 + 100 ms of sleep took {took:?}");
    assert_eq!(vmis.len(), 1);
    let statuses: Vec<_> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(404), Some(404), Some(404), Some(200)]);
}

#[test]
fn partial_empty_garbage_and_500_are_not_yet() {
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
    let vmis = agent(&sim, ms(200))
        .poll_vm_cfg(&pod(), &within(4000))
        .unwrap();
    assert_eq!(vmis.len(), 3);
    assert_eq!(sim.requests().len(), 6);
}

/// A deadline that passes is code 11 naming the agent, the VM, the
/// attempts and the last answer, and never later than the deadline.
#[test]
fn vm_cfg_never_ready_is_code_11_by_the_deadline() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "vm-cfg:404"]);
    let t = Instant::now();
    let e = agent(&sim, ms(100))
        .poll_vm_cfg(&pod(), &within(400))
        .unwrap_err();
    let took = t.elapsed();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    let n = sim.requests().len();
    for part in [
        sim.addr.as_str(),
        POD,
        "HTTP 404",
        "{ Not Found }",
        &format!("{n} attempts"),
    ] {
        assert!(e.msg.contains(part), "{part:?} missing in {e}");
    }
    // Sleeps of 25, 50, 100, 100 ms between quick 404s; the last sleep
    // would reach the deadline, so the call ends before it.
    assert!(n >= 4, "{n}");
    assert!(took <= ms(400), "{took:?}");
    assert!(took >= ms(250), "{took:?}");
}

#[test]
fn incomplete_forever_names_the_reason() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--networks", "1", "--fault", "vm-cfg:partial"]);
    let e = agent(&sim, ms(50))
        .poll_vm_cfg(&pod(), &within(200))
        .unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.contains("incomplete: 1 of 2"), "{e}");
}

/// An agent that accepts connections and never answers: every request is
/// cut at the deadline.
#[test]
fn hanging_agent_ends_at_the_deadline() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "vm-cfg:hang"]);
    let t = Instant::now();
    let e = agent(&sim, ms(300))
        .poll_vm_cfg(&pod(), &within(700))
        .unwrap_err();
    let took = t.elapsed();
    eprintln!("hang, poll 300 ms, deadline 700 ms: {took:?}: {e}");
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.contains("no answer within"), "{e}");
    // 300 + 25 + 300 ms; what is left is at most one more sleep and a
    // request cut short; the call stops when a sleep would pass the deadline.
    assert!(took >= ms(600), "{took:?}");
    assert!(took <= ms(700) + ms(100), "{took:?}");
    let n = sim.requests().len();
    assert!((2..=3).contains(&n), "{n}");
}

/// An expired deadline sends nothing.
#[test]
fn no_time_left_sends_nothing() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[]);
    let a = agent(&sim, ms(100));
    let gone = Deadline::after(Duration::ZERO);
    let e = a.poll_vm_cfg(&pod(), &gone).unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.contains("0 attempts"), "{e}");
    let vm = Uuid::parse("00000000-0000-4000-8000-000000000001").unwrap();
    assert_eq!(
        a.delete_vm(&vm, &gone).unwrap_err().code,
        code::TRY_AGAIN_LATER
    );
    assert_eq!(
        a.get_vmi(&vm, &vm, &gone).unwrap_err().code,
        code::TRY_AGAIN_LATER
    );
    assert!(sim.requests().is_empty());
}

#[test]
fn connection_refused_is_retried_until_the_agent_comes_up() {
    require_root!();
    common::enter_fresh_netns();
    let port = free_port();
    let e = Agent::new(addr(port), ms(50))
        .poll_vm_cfg(&pod(), &within(150))
        .unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.to_lowercase().contains("refused"), "{e}");

    // The simulator starts 300 ms later on that port (the thread inherits
    // this namespace, and so does the process it spawns).
    let starter = std::thread::spawn(move || {
        std::thread::sleep(ms(300));
        Sim::start_on(&format!("127.0.0.1:{port}"), &[])
    });
    let vmis = Agent::new(addr(port), Duration::from_secs(1))
        .poll_vm_cfg(&pod(), &within(5000))
        .unwrap();
    let _sim = starter.join().unwrap();
    assert_eq!(vmis.len(), 1);
}

/// POST /vm is idempotent at the agent: one that found no agent is sent
/// again within the deadline.
#[test]
fn post_is_retried_after_a_refused_connection() {
    require_root!();
    common::enter_fresh_netns();
    let port = free_port();
    let starter = std::thread::spawn(move || {
        std::thread::sleep(ms(300));
        Sim::start_on(&format!("127.0.0.1:{port}"), &["--nested"])
    });
    let vmi = Uuid::parse("00000000-0000-4000-8000-00000000000a").unwrap();
    let v = VmiConfig {
        id: vmi.clone(),
        vm_uuid: vmi.clone(),
        vn_id: vmi.clone(),
        vn_name: String::new(),
        mac: "02:00:00:00:00:01".parse().unwrap(),
        vlan_id: None,
        index: 0,
        network: None,
        ifname: None,
        annotations: Default::default(),
    };
    Agent::new(addr(port), ms(200))
        .post_vm(&post_req(&v, "eth0"), &within(5000))
        .unwrap();
    let sim = starter.join().unwrap();
    let posts = sim.count("POST", "/vm");
    assert_eq!(posts, 1, "the retry reached the agent once");
}

#[test]
fn veth_flow_post_then_poll_vm_then_delete() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--network-names", "blue"]);
    let a = agent(&sim, ms(100));
    let vmis = a.poll_vm_cfg(&pod(), &within(1000)).unwrap();
    let vm = vmis[0].vm_uuid.clone();
    let ids: Vec<&Uuid> = vmis.iter().map(|v| &v.id).collect();

    // Not posted yet: /vm stays 404 (veth mode).
    let e = a.poll_vm(&vm, &ids, &within(200)).unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.contains(vm.as_str()), "{e}");
    assert_eq!(a.get_vmi(&vm, ids[0], &within(1000)).unwrap(), None);

    for (i, v) in vmis.iter().enumerate() {
        a.post_vm(&post_req(v, &format!("eth{i}")), &within(1000))
            .unwrap();
    }
    // Asked in reverse order: answered in the order asked.
    let rev: Vec<&Uuid> = ids.iter().rev().copied().collect();
    let opers = a.poll_vm(&vm, &rev, &within(1000)).unwrap();
    assert_eq!(opers.len(), 2);
    assert_eq!(&opers[0].id, ids[1]);
    assert_eq!(&opers[1].id, ids[0]);
    for o in &opers {
        assert!(o.has_address());
        let v4 = o.v4.unwrap();
        assert_eq!(v4.prefix(), 16);
        assert!(o.v4_gateway.unwrap().to_string().ends_with(".0.1"));
        assert!(o.v4_dns.unwrap().to_string().ends_with(".0.2"));
        assert!(o.mac.is_some());
        assert_eq!(o.v6, None);
    }
    let one = a.poll_vm(&vm, &[ids[1]], &within(1000)).unwrap();
    assert_eq!(&one[0].id, ids[1]);
    assert_eq!(
        &a.get_vmi(&vm, ids[0], &within(1000)).unwrap().unwrap().id,
        ids[0]
    );

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

    a.delete_vm(&vm, &within(1000)).unwrap();
    assert_eq!(a.get_vmi(&vm, ids[0], &within(1000)).unwrap(), None);
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
    let a = agent(&sim, ms(100));
    let v = a.poll_vm_cfg(&pod(), &within(1000)).unwrap().remove(0);
    let vm = Uuid::parse(&v.vm_uuid.as_str().to_uppercase()).unwrap();
    let vmi = Uuid::parse(&v.id.as_str().to_uppercase()).unwrap();
    let o = a.poll_vm(&vm, &[&vmi], &within(1000)).unwrap();
    assert_eq!(o[0].id, v.id);
    a.post_vm(&post_req(&v, "eth0"), &within(1000)).unwrap();
    a.delete_vm(&vm, &within(1000)).unwrap();
    assert_eq!(sim.requests().len(), 4);
    for r in sim.requests() {
        assert_eq!(r.path, r.path.to_lowercase(), "{r:?}");
        assert_eq!(r.body, r.body.to_lowercase(), "{r:?}");
    }
}

/// An answer that can never be used fails at once with code 101, naming
/// the agent, the VM and what was wrong: no second request.
#[test]
fn invalid_answers_fail_at_once_with_code_101() {
    require_root!();
    common::enter_fresh_netns();
    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }
    let elem = |i: usize, total: usize, mac: &str| {
        format!(
            r#"{{"id":"00000000-0000-4000-8000-{i:012x}","vm-uuid":"11111111-0000-4000-8000-000000000000",
            "vn-id":"22222222-0000-4000-8000-000000000000","mac-address":"{mac}","vlan-id":65535,
            "annotations":["{{index:{i}/{total}}}"]}}"#
        )
    };
    let many: Vec<String> = (0..3000)
        .map(|i| elem(i, 3000, "02:00:00:00:00:01"))
        .collect();
    let cases = [
        (
            format!("[{}]", elem(0, 1, "01:00:5e:00:00:01")),
            "multicast",
        ),
        (
            format!(
                "[{},{}]",
                elem(0, 2, "02:00:00:00:00:01"),
                elem(0, 2, "02:00:00:00:00:02")
            ),
            "listed twice",
        ),
        (
            format!(
                "[{}]",
                (0..=MAX_VMIS)
                    .map(|i| elem(i, MAX_VMIS + 1, "02:00:00:00:00:01"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            "more than the 32",
        ),
        // 3000 VMIs: a body over the cap, never read whole.
        (format!("[{}]", many.join(",")), "body over"),
    ];
    for (body, why) in cases {
        let cap = Capture::start(200, leak(body));
        let t = Instant::now();
        let e = Agent::new(addr(cap.port), ms(200))
            .poll_vm_cfg(&pod(), &within(3000))
            .unwrap_err();
        assert_eq!(e.code, code::AGENT, "{why}: {e}");
        for part in [why, POD, &format!("127.0.0.1:{}", cap.port)] {
            assert!(e.msg.contains(part), "{part:?} missing in {e}");
        }
        assert!(t.elapsed() < ms(1000), "{why}: failed at once");
        assert_eq!(cap.requests().len(), 1, "{why}: asked once");
    }

    // /vm: an address the agent should never hand out.
    let vm = Uuid::parse("11111111-0000-4000-8000-000000000000").unwrap();
    let vmi = Uuid::parse("00000000-0000-4000-8000-00000000000a").unwrap();
    for (ip, plen, why) in [
        ("224.0.0.1", 32, "multicast"),
        ("255.255.255.255", 32, "broadcast"),
        ("10.0.0.5", 0, "prefix length 0"),
    ] {
        let body = format!(
            r#"[{{"id":"{vmi}","instance-id":"{vm}","mac-address":"02:00:00:00:00:01","ip-address":"{ip}","plen":{plen}}}]"#
        );
        let cap = Capture::start(200, leak(body));
        let a = Agent::new(addr(cap.port), ms(200));
        let e = a.poll_vm(&vm, &[&vmi], &within(3000)).unwrap_err();
        assert_eq!(e.code, code::AGENT, "{e}");
        assert!(e.msg.contains(why) && e.msg.contains(vm.as_str()), "{e}");
        let e = a.get_vmi(&vm, &vmi, &within(3000)).unwrap_err();
        assert_eq!(e.code, code::AGENT, "{e}");
        assert_eq!(cap.requests().len(), 2);
    }
}

/// The simulator provisions more VMIs than a pod may have: invalid.
#[test]
fn more_than_max_vmis_from_the_simulator_is_invalid() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--networks", &MAX_VMIS.to_string()]);
    let e = agent(&sim, ms(100))
        .poll_vm_cfg(&pod(), &within(2000))
        .unwrap_err();
    assert_eq!(e.code, code::AGENT, "{e}");
    assert!(e.msg.contains("33 VMIs"), "{e}");
    assert_eq!(sim.requests().len(), 1);
    let sim = Sim::start(&["--networks", &(MAX_VMIS - 1).to_string()]);
    let vmis = agent(&sim, ms(100))
        .poll_vm_cfg(&pod(), &within(2000))
        .unwrap();
    assert_eq!(vmis.len(), MAX_VMIS);
}

#[test]
fn nested_mode_answers_without_post_and_has_vlans() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--nested", "--networks", "1"]);
    let a = agent(&sim, ms(100));
    let vmis = a.poll_vm_cfg(&pod(), &within(1000)).unwrap();
    let vlans: Vec<u16> = vmis.iter().map(|v| v.vlan_id.unwrap()).collect();
    assert!(vlans.iter().all(|v| *v >= 100), "{vlans:?}");
    assert_ne!(vlans[0], vlans[1]);
    let ids: Vec<&Uuid> = vmis.iter().map(|v| &v.id).collect();
    assert_eq!(
        a.poll_vm(&vmis[0].vm_uuid, &ids, &within(1000))
            .unwrap()
            .len(),
        2
    );
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
        let a = agent(&sim, ms(100));
        let v = a.poll_vm_cfg(&pod(), &within(1000)).unwrap().remove(0);
        if !args.contains(&"--nested") {
            a.post_vm(&post_req(&v, "eth0"), &within(1000)).unwrap();
        }
        let o = a
            .poll_vm(&v.vm_uuid, &[&v.id], &within(1000))
            .unwrap()
            .remove(0);
        assert!(o.has_address());
        assert_eq!(o.v4.is_some(), v4);
        assert_eq!(o.v4_gateway.is_some(), v4);
        let v6 = o.v6.unwrap();
        assert!(!v6.is_unspecified());
        assert!(o.v6_gateway.unwrap().is_ipv6() && o.v6_dns.unwrap().is_ipv6());
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
    let a = agent(&sim, ms(200));
    let v = a.poll_vm_cfg(&pod(), &within(1000)).unwrap().remove(0);
    assert_eq!(
        a.poll_vm(&v.vm_uuid, &[&v.id], &within(2000))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(sim.requests().len(), 1 + 4);

    let sim = Sim::start(&["--nested", "--fault", "vm:404"]);
    let a = agent(&sim, ms(100));
    let v = a.poll_vm_cfg(&pod(), &within(1000)).unwrap().remove(0);
    let e = a.poll_vm(&v.vm_uuid, &[&v.id], &within(300)).unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(
        e.msg.contains(v.vm_uuid.as_str()) && e.msg.contains("Not Found"),
        "{e}"
    );
}

#[test]
fn post_500_is_code_101_with_the_agent_text() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "post:500=1"]);
    let a = agent(&sim, ms(100));
    let v = a.poll_vm_cfg(&pod(), &within(1000)).unwrap().remove(0);
    let e = a.post_vm(&post_req(&v, "eth0"), &within(1000)).unwrap_err();
    assert_eq!(e.code, code::AGENT);
    assert!(
        e.msg.contains("500") && e.msg.contains("Simulated failure"),
        "{e}"
    );
    a.post_vm(&post_req(&v, "eth0"), &within(1000)).unwrap();
}

/// POST and DELETE to an agent that never answers are sent again until
/// the deadline, never past it.
#[test]
fn post_and_delete_to_a_hanging_agent_end_at_the_deadline() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "post:hang", "--fault", "delete:hang"]);
    let a = agent(&sim, ms(200));
    let v = a.poll_vm_cfg(&pod(), &within(1000)).unwrap().remove(0);
    let t = Instant::now();
    let e = a.post_vm(&post_req(&v, "eth0"), &within(500)).unwrap_err();
    let took = t.elapsed();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(
        e.msg.contains("POST /vm") && e.msg.contains("attempts"),
        "{e}"
    );
    assert!(took <= ms(500) + ms(100), "{took:?}");
    assert!(sim.count("POST", "/vm") >= 2, "retried");
    let t = Instant::now();
    let e = a.delete_vm(&v.vm_uuid, &within(300)).unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(t.elapsed() <= ms(300) + ms(100), "{:?}", t.elapsed());
}

/// The one deadline bounds the whole ADD conversation: with 20 interfaces
/// and every POST answered in 0.9 s, a 3 s budget ends in code 11 at 3 s
/// (each POST used to get its own timeout: 18 s).
#[test]
fn one_deadline_across_vm_cfg_and_slow_posts() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--networks", "19", "--fault", "post:delay-900"]);
    let a = agent(&sim, Duration::from_secs(1));
    let deadline = within(3000);
    let t = Instant::now();
    let vmis = a.poll_vm_cfg(&pod(), &deadline).unwrap();
    assert_eq!(vmis.len(), 20);
    let mut posted = 0;
    let mut failure = None;
    for (i, v) in vmis.iter().enumerate() {
        match a.post_vm(&post_req(v, &format!("eth{i}")), &deadline) {
            Ok(()) => posted += 1,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let took = t.elapsed();
    eprintln!("20 VMIs, POST answered in 900 ms, deadline 3 s: {posted} posted, {took:?}");
    let e = failure.expect("the deadline stops the POSTs");
    assert_eq!(e.code, code::TRY_AGAIN_LATER, "{e}");
    assert_eq!(posted, 3, "three 0.9 s answers fit in 3 s");
    assert!(took <= ms(3000) + ms(100), "{took:?}");
    assert!(took >= ms(2700), "{took:?}");
}

/// Two slow phases share the deadline too: the second gets what is left.
#[test]
fn one_deadline_across_two_slow_phases() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[
        "--nested",
        "--fault",
        "vm-cfg:delay-700=1",
        "--fault",
        "vm:delay-700",
    ]);
    let a = agent(&sim, Duration::from_secs(2));
    let deadline = within(1000);
    let t = Instant::now();
    let v = a.poll_vm_cfg(&pod(), &deadline).unwrap().remove(0);
    assert!(t.elapsed() >= ms(700));
    let e = a.poll_vm(&v.vm_uuid, &[&v.id], &deadline).unwrap_err();
    let took = t.elapsed();
    eprintln!("vm-cfg 700 ms + vm 700 ms, deadline 1 s: {took:?}: {e}");
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.contains("no answer within"), "{e}");
    assert!(took <= ms(1000) + ms(100), "{took:?}");
}

#[test]
fn probe_any_answer_is_ok_silence_is_code_50() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[]);
    let took = agent(&sim, ms(100)).probe(ms(500)).unwrap();
    assert!(took <= ms(500), "{took:?}");
    assert_eq!(sim.requests()[0].status, Some(404));
    let port = sim.port;
    drop(sim);
    let e = Agent::new(addr(port), ms(100)).probe(ms(500)).unwrap_err();
    assert_eq!(e.code, code::NOT_AVAILABLE);
    let sim = Sim::start(&["--fault", "any:hang"]);
    let t = Instant::now();
    let e = agent(&sim, ms(100)).probe(ms(200)).unwrap_err();
    assert_eq!(e.code, code::NOT_AVAILABLE);
    assert!(t.elapsed() < ms(500), "{:?}", t.elapsed());
}

#[test]
fn ipv6_agent_address_is_bracketed() {
    require_root!();
    common::enter_fresh_netns();
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    }
    let sim = Sim::start_on("[::1]:0", &[]);
    let a = Agent::new(
        SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), sim.port),
        ms(100),
    );
    assert_eq!(a.address(), format!("[::1]:{}", sim.port));
    assert_eq!(a.poll_vm_cfg(&pod(), &within(1000)).unwrap().len(), 1);
}

#[test]
fn post_sends_json_content_type_and_one_object() {
    require_root!();
    common::enter_fresh_netns();
    let cap = Capture::start(200, "{}");
    let a = Agent::new(addr(cap.port), ms(500));
    let vmi = Uuid::parse("00000000-0000-4000-8000-00000000000a").unwrap();
    let req = PortRequest {
        vm_uuid: vmi.clone(),
        vm_name: pod(),
        host_ifname: IfName::parse("tap0").unwrap(),
        vn_uuid: vmi.clone(),
        vmi_uuid: vmi,
        vm_id: ContainerId::parse("cid").unwrap(),
        vm_ifname: IfName::parse("eth0").unwrap(),
        vm_namespace: "/proc/1/ns/net".into(),
    };
    a.post_vm(&req, &within(1000)).unwrap();
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

/// A server that answers each connection's first request with keep-alive,
/// then closes the connection when the next request arrives, unanswered:
/// what a client sees when the peer closes an idle connection just as it
/// is reused. Returns the port and the counts of connections and requests.
fn closing_server() -> (u16, Arc<[AtomicUsize; 2]>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let seen = counts.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            seen[0].fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let read_head = |r: &mut BufReader<TcpStream>| -> bool {
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return false;
                        }
                        if line == "\r\n" {
                            seen[1].fetch_add(1, Ordering::SeqCst);
                            return true;
                        }
                    }
                };
                if !read_head(&mut r) {
                    return;
                }
                let body = "{\"error\":\"Unknown Request\"}";
                let mut w = s;
                let _ = write!(
                    w,
                    "HTTP/1.1 404 OK\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                // The next request gets no answer: the connection closes.
                let _ = read_head(&mut r);
            });
        }
    });
    (port, counts)
}

/// Connections are kept alive, and a request that meets a connection the
/// peer closed is sent again on a new one.
#[test]
fn kept_alive_connection_closed_by_the_peer_is_retried() {
    require_root!();
    common::enter_fresh_netns();
    let (port, counts) = closing_server();
    let a = Agent::new(addr(port), ms(500));
    for _ in 0..3 {
        a.probe(ms(500)).unwrap();
    }
    // Probe 1 opens connection 1; probe 2 reuses it (a second request on
    // connection 1), finds it closed and is sent again on connection 2;
    // probe 3 likewise: 3 connections, 5 requests.
    let [conns, requests] = &*counts;
    assert_eq!(conns.load(Ordering::SeqCst), 3);
    assert_eq!(requests.load(Ordering::SeqCst), 5);

    // Without keep-alive every request has its own connection.
    let (port, counts) = closing_server();
    let a = Agent::with_keep_alive(addr(port), ms(500), false);
    for _ in 0..3 {
        a.probe(ms(500)).unwrap();
    }
    let [conns, requests] = &*counts;
    assert_eq!(conns.load(Ordering::SeqCst), 3);
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

#[test]
fn mesos_notify_posts_cid_cmd_args() {
    require_root!();
    common::enter_fresh_netns();
    let stdin = r#"{"cniVersion":"0.3.1","name":"x"}"#;
    let cid = ContainerId::parse("cid-1").unwrap();
    for (cmd, name, route) in [
        (mesos::Cmd::Add, "ADD", "/add_cni_info"),
        (mesos::Cmd::Del, "DEL", "/del_cni_info"),
    ] {
        let cap = Capture::start(200, "");
        mesos::notify(addr(cap.port), cmd, &cid, stdin, &within(1000)).unwrap();
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
            serde_json::json!({"cid": "cid-1", "cmd": name, "args": stdin})
        );
    }
    let cap = Capture::start(500, r#"{"error":"nope"}"#);
    let e = mesos::notify(addr(cap.port), mesos::Cmd::Add, &cid, stdin, &within(1000)).unwrap_err();
    assert_eq!(e.code, code::AGENT);
    assert!(e.msg.contains("nope"), "{e}");
    cap.request();
    // Nobody listening: code 11 at once; no time left: nothing sent.
    let e = mesos::notify(
        addr(free_port()),
        mesos::Cmd::Del,
        &cid,
        stdin,
        &within(1000),
    )
    .unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER, "{e}");
    let cap = Capture::start(200, "");
    let e = mesos::notify(
        addr(cap.port),
        mesos::Cmd::Add,
        &cid,
        stdin,
        &Deadline::after(Duration::ZERO),
    )
    .unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER, "{e}");
    assert!(cap.requests().is_empty());
}
