//! The simulator on the wire, checked against docs/agent-api.md with raw HTTP
//! (no plugin code involved): status lines, headers, routes, POST
//! validation, subscriptions, faults, recording, keep-alive, data plane.

mod common;

use common::simulator::{raw_http, split_response};
use common::Sim;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const POD: &str = "k8s__ns1__web-1";

fn provision(sim: &Sim) -> Vec<Value> {
    let (code, v) = sim.get_json(&format!("/vm-cfg/{POD}"));
    assert_eq!(code, 200);
    v.as_array().unwrap().clone()
}

fn post_body(v: &Value, ifname: &str) -> String {
    serde_json::json!({
        "vm-uuid": v["vm-uuid"], "vm-name": POD, "host-ifname": ifname,
        "vn-uuid": v["vn-id"], "vmi-uuid": v["id"], "vm-id": "cid",
    })
    .to_string()
}

#[test]
fn responses_look_like_the_agent() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[]);
    let (status, headers, body) = sim.raw("GET", "/nope", "");
    assert_eq!(status, "HTTP/1.1 404 OK");
    assert_eq!(
        headers,
        [
            "Content-Type: application/json; charset=UTF-8".to_string(),
            format!("Content-Length: {}", body.len())
        ]
    );
    assert_eq!(body, r#"{"error":"Unknown Request"}"#);

    let (status, _, body) = sim.raw("POST", "/vm", "not json");
    assert_eq!(status, "HTTP/1.1 500 OK");
    assert_eq!(body, r#"{"error":"{ Invalid Json string ==> not json }"}"#);

    let (status, _, body) = sim.raw("GET", &format!("/vm-cfg/{POD}"), "");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.starts_with("[\n    {\n        \"id\": \""),
        "4-space pretty: {body}"
    );
}

#[test]
fn unmatched_paths_are_unknown_requests() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--nested"]);
    let v = provision(&sim).remove(0);
    let (vm, vmi) = (v["vm-uuid"].as_str().unwrap(), v["id"].as_str().unwrap());
    // Sanity: the lower-case forms match.
    assert_eq!(sim.get_json(&format!("/vm/{vm}")).0, 200);
    assert_eq!(
        sim.get_json(&format!("/vm/{vm}/{vmi}?x=1")).0,
        200,
        "query ignored"
    );
    for (m, p) in [
        ("GET", format!("/vm/{}", vm.to_uppercase())),
        ("GET", format!("/vm/{vm}/")),
        ("GET", format!("/vm/{vm}/{}", vmi.to_uppercase())),
        ("GET", "/vm".to_string()),
        ("GET", "/vm/".to_string()),
        ("GET", format!("/vm/{vm}/{vmi}/{vmi}")),
        ("DELETE", format!("/vm/{}", vm.to_uppercase())),
        ("DELETE", "/vm/".to_string()),
        ("PUT", "/vm".to_string()),
        ("GET", "/vmi/x".to_string()),
        ("POST", "/vm/".to_string()),
        ("GET", "/vm-cfg".to_string()),
    ] {
        let (status, _, body) = sim.raw(m, &p, "");
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 404 OK", r#"{"error":"Unknown Request"}"#),
            "{m} {p}"
        );
    }
}

#[test]
fn vm_cfg_provisions_on_first_ask() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--network-names", "blue,red", "--ipv6"]);
    let (code, body) = sim.get_json("/vm-cfg/");
    assert_eq!(
        (code, body),
        (404, serde_json::json!({"error": "{ Not Found }"}))
    );
    let vmis = provision(&sim);
    assert_eq!(vmis, provision(&sim), "stable across asks");
    assert_eq!(vmis.len(), 3);
    let mut ids: Vec<&str> = vmis.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort();
        s
    };
    assert_eq!(ids, sorted, "ordered by VMI UUID like the agent");
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let mut nets = Vec::new();
    for v in &vmis {
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys.len(),
            8,
            "id vm-uuid vn-id vn-name mac-address sub-interface vlan-id annotations: {keys:?}"
        );
        assert_eq!(v["vlan-id"], 65535);
        assert_eq!(v["vm-uuid"], vmis[0]["vm-uuid"]);
        let ann: Vec<&str> = v["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            ann.contains(&"{cluster:k8s}")
                && ann.contains(&"{kind:Pod}")
                && ann.contains(&"{owner:k8s}")
        );
        assert!(
            ann.contains(&"{name:web-1}")
                && ann.contains(&"{namespace:ns1}")
                && ann.contains(&"{project:k8s-ns1}")
        );
        let index = ann.iter().find(|a| a.starts_with("{index:")).unwrap();
        let net = ann.iter().find(|a| a.starts_with("{network:")).unwrap();
        nets.push((index.to_string(), net.to_string()));
    }
    nets.sort();
    assert_eq!(
        nets,
        [
            ("{index:0/3}".to_string(), "{network:default}".to_string()),
            ("{index:1/3}".to_string(), "{network:blue}".to_string()),
            ("{index:2/3}".to_string(), "{network:red}".to_string())
        ]
    );
    // A second pod gets other VMIs, addresses and the same VNs.
    let (_, other) = sim.get_json("/vm-cfg/k8s__ns1__web-2");
    assert_ne!(other[0]["vm-uuid"], vmis[0]["vm-uuid"]);
    assert!(vmis.iter().any(|v| v["vn-id"] == other[0]["vn-id"]));
}

#[test]
fn post_validation_follows_the_agent_order_and_texts() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[]);
    let full = serde_json::json!({"vm-uuid": "u", "host-ifname": "tap0", "vm-name": "n", "vn-uuid": "u", "vmi-uuid": "u"});
    let cases = [
        ("[]".to_string(), "{ Unexpected Json string ==> [] }"),
        ("{\"a\":".to_string(), "{ Invalid Json string ==> {\"a\": }"),
    ];
    for (body, text) in cases {
        let (_, v) = post(&sim, &body);
        assert_eq!(v["error"], text);
    }
    for (key, kind) in [
        ("vm-uuid", "data"),
        ("host-ifname", "field"),
        ("vm-name", "field"),
        ("vn-uuid", "data"),
        ("vmi-uuid", "data"),
    ] {
        let mut b = full.clone();
        b.as_object_mut().unwrap().remove(key);
        let (code, v) = post(&sim, &b.to_string());
        assert_eq!(code, 500);
        assert_eq!(
            v["error"],
            format!("{{ Invalid or missing {kind} for <{key}> }}")
        );
        b[key] = Value::from(7);
        assert_eq!(
            post(&sim, &b.to_string()).1["error"],
            v["error"],
            "non-string {key}"
        );
    }
    // Unparsable UUIDs are not an error for the agent.
    assert_eq!(post(&sim, &full.to_string()), (200, serde_json::json!({})));
}

fn post(sim: &Sim, body: &str) -> (u16, Value) {
    let (status, _, b) = sim.raw("POST", "/vm", body);
    (
        status[9..12].parse().unwrap(),
        serde_json::from_str(&b).unwrap(),
    )
}

#[test]
fn get_vm_needs_a_matching_post_and_delete_unbinds() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--networks", "1"]);
    let vmis = provision(&sim);
    let vm = vmis[0]["vm-uuid"].as_str().unwrap().to_string();
    let id = |i: usize| vmis[i]["id"].as_str().unwrap().to_string();
    assert_eq!(sim.get_json(&format!("/vm/{vm}")).0, 404);
    assert_eq!(sim.get_json(&format!("/vm/{vm}/{}", id(0))).0, 404);

    // A POST with another VN is stored but never binds (docs/agent-api.md §4).
    let mut wrong: Value = serde_json::from_str(&post_body(&vmis[0], "tapA")).unwrap();
    wrong["vn-uuid"] = Value::from("00000000-0000-4000-8000-000000000000");
    assert_eq!(post(&sim, &wrong.to_string()).0, 200);
    assert_eq!(sim.get_json(&format!("/vm/{vm}/{}", id(0))).0, 404);

    assert_eq!(post(&sim, &post_body(&vmis[0], "tapA")).0, 200);
    let (code, one) = sim.get_json(&format!("/vm/{vm}/{}", id(0)));
    assert_eq!(code, 200);
    let o = &one[0];
    assert_eq!(o["id"], id(0).as_str());
    assert_eq!(o["instance-id"], vm.as_str());
    assert_eq!(o["system-name"], "tapA");
    assert_eq!(o["plen"], 16);
    assert!(o.get("vm-uuid").is_none() && o.get("v6-ip-address").is_none());
    let ip: std::net::Ipv4Addr = o["ip-address"].as_str().unwrap().parse().unwrap();
    let gw: std::net::Ipv4Addr = o["gateway"].as_str().unwrap().parse().unwrap();
    assert_eq!(ip.octets()[..2], gw.octets()[..2]);
    // The VM part of form 2 is not checked against the VMI (agent quirk).
    let other_vm = "12345678-0000-4000-8000-000000000000";
    assert_eq!(sim.get_json(&format!("/vm/{other_vm}/{}", id(0))).0, 200);
    // Form 1 is all-or-nothing.
    assert_eq!(sim.get_json(&format!("/vm/{vm}")).0, 404);
    assert_eq!(post(&sim, &post_body(&vmis[1], "tapB")).0, 200);
    let (code, all) = sim.get_json(&format!("/vm/{vm}"));
    assert_eq!((code, all.as_array().unwrap().len()), (200, 2));
    let ips: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["ip-address"].as_str().unwrap())
        .collect();
    assert_ne!(ips[0], ips[1]);

    // DELETE: always 200 {}, unbinds every VMI of the VM.
    for uuid in [vm.as_str(), other_vm] {
        let (status, _, body) = sim.raw("DELETE", &format!("/vm/{uuid}"), "{\"ignored\":1}");
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "{}"));
    }
    assert_eq!(sim.get_json(&format!("/vm/{vm}")).0, 404);
    assert_eq!(sim.get_json(&format!("/vm/{vm}/{}", id(1))).0, 404);
}

#[test]
fn faults_apply_in_order_and_count_down() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[
        "--networks",
        "1",
        "--fault",
        "vm-cfg:404=1",
        "--fault",
        "vm-cfg:partial=1",
        "--fault",
        "vm-cfg:garbage=1",
        "--fault",
        "vm-cfg:empty=1",
        "--fault",
        "post:500=1",
    ]);
    let path = format!("/vm-cfg/{POD}");
    assert_eq!(sim.raw("GET", &path, "").2, r#"{"error":"{ Not Found }"}"#);
    assert_eq!(sim.get_json(&path).1.as_array().unwrap().len(), 1);
    assert_eq!(sim.raw("GET", &path, "").2, "this is not JSON <html>");
    assert_eq!(sim.raw("GET", &path, "").2, "[]");
    let vmis = provision(&sim);
    assert_eq!(vmis.len(), 2);
    let (code, v) = post(&sim, &post_body(&vmis[0], "t"));
    assert_eq!(
        (code, v["error"].as_str().unwrap()),
        (500, "{ Simulated failure }")
    );
    assert_eq!(post(&sim, &post_body(&vmis[0], "t")).0, 200);
}

#[test]
fn hang_accepts_and_never_answers() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--fault", "vm-cfg:hang=1"]);
    let mut s = TcpStream::connect(&sim.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    write!(s, "GET /vm-cfg/{POD} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 16];
    let t = std::time::Instant::now();
    let got = loop {
        match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    match got {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!(
            "expected no answer (a read timeout), got {other:?} after {:?}",
            t.elapsed()
        ),
    }
    // The next request is answered; the hang was recorded with no status.
    assert_eq!(sim.get_json(&format!("/vm-cfg/{POD}")).0, 200);
    let recs = sim.requests();
    assert_eq!(recs[0].status, None);
    assert_eq!(recs[1].status, Some(200));
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[]);
    let mut s = TcpStream::connect(&sim.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let vm = "0b1c0000-0000-4000-8000-000000000001";
    let two = format!("GET /a HTTP/1.1\r\nHost: x\r\n\r\nDELETE /vm/{vm} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(two.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (first, _, rest) = split_response(&out);
    assert_eq!(first, "HTTP/1.1 404 OK");
    assert!(
        rest.starts_with(r#"{"error":"Unknown Request"}HTTP/1.1 200 OK"#),
        "{rest}"
    );
    assert!(out.ends_with("\r\n\r\n{}"));
}

#[test]
fn record_file_has_one_json_line_per_request() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&[]);
    raw_http(&sim.addr, "POST", "/vm", "{\"x\":\"y\"}");
    raw_http(&sim.addr, "GET", "/vm-cfg/a.b?q=1", "");
    let text = std::fs::read_to_string(&sim.record).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"seq": 1, "method": "POST", "path": "/vm", "body": "{\"x\":\"y\"}", "status": 500}),
            serde_json::json!({"seq": 2, "method": "GET", "path": "/vm-cfg/a.b", "body": "", "status": 200}),
        ]
    );
}

#[test]
fn nested_mode_has_vlans_and_answers_without_post() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start(&["--nested", "--networks", "2", "--ipv6", "--no-ipv4"]);
    let vmis = provision(&sim);
    let mut vlans: Vec<u64> = vmis
        .iter()
        .map(|v| v["vlan-id"].as_u64().unwrap())
        .collect();
    vlans.sort();
    vlans.dedup();
    assert_eq!(vlans.len(), 3);
    assert!(vlans.iter().all(|&v| (100..4095).contains(&v)));
    let (code, all) = sim.get_json(&format!("/vm/{}", vmis[0]["vm-uuid"].as_str().unwrap()));
    assert_eq!(code, 200);
    for o in all.as_array().unwrap() {
        assert!(o.get("ip-address").is_none() && o.get("plen").is_none());
        assert!(o["v6-ip-address"]
            .as_str()
            .unwrap()
            .parse::<std::net::Ipv6Addr>()
            .is_ok());
        assert!(o["v6-gateway"].is_string() && o["v6-dns-server"].is_string());
        assert_ne!(o["rx-vlan-id"], 65535);
    }
}

#[test]
fn bad_command_lines_are_refused() {
    for args in [
        &["--fault", "vm:partial"][..],
        &["--fault", "vm-cfg"],
        &["--fault", "nope:404"],
        &["--fault", "vm:404=x"],
        &["--no-ipv4"],
        &["--networks", "2", "--network-names", "a"],
        &["--vm-uuid", "nope"],
        &["--pod-uid", "k8s__ns1__web-1"],
        &["--pod-uid", "k8s__ns1__web-1=nope"],
        &["--pod-uid", "=0b1c0000-0000-4000-8000-0000000000aa"],
        &[
            "--pod-uid",
            "k8s__a__b=0b1c0000-0000-4000-8000-0000000000aa",
            "--pod-uid",
            "k8s__a__b=0b1c0000-0000-4000-8000-0000000000bb",
        ],
        &["--pod-uid"],
        &["--bogus"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vrouter-agent-sim"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn fixed_vm_uuid() {
    require_root!();
    common::enter_fresh_netns();
    let uuid = "0B1C0000-0000-4000-8000-0000000000AA";
    let sim = Sim::start(&["--vm-uuid", uuid]);
    assert_eq!(provision(&sim)[0]["vm-uuid"], uuid.to_lowercase());
}

#[test]
fn pod_uid_gives_each_named_pod_its_uid() {
    require_root!();
    common::enter_fresh_netns();
    let (web, other_ns, fallback) = (
        "0B1C0000-0000-4000-8000-0000000000A1",
        "0b1c0000-0000-4000-8000-0000000000a2",
        "0b1c0000-0000-4000-8000-0000000000a3",
    );
    let sim = Sim::start(&[
        "--network-names",
        "blue",
        "--pod-uid",
        &format!("{POD}={web}"),
        "--pod-uid",
        &format!("k8s__ns2__web-1={other_ns}"),
        "--vm-uuid",
        fallback,
    ]);
    let vmis = provision(&sim);
    assert_eq!(vmis.len(), 2);
    for v in &vmis {
        assert_eq!(v["vm-uuid"], web.to_lowercase(), "every VMI of the pod");
    }
    let (_, v) = sim.get_json("/vm-cfg/k8s__ns2__web-1");
    assert_eq!(v[0]["vm-uuid"], other_ns, "same pod name, other namespace");
    let (_, v) = sim.get_json("/vm-cfg/k8s__ns1__web-2");
    assert_eq!(v[0]["vm-uuid"], fallback, "unnamed pods keep --vm-uuid");
    // The UID is the VM the agent binds and answers for.
    let v = &vmis[0];
    assert_eq!(post(&sim, &post_body(v, "tap0")).0, 200);
    let (code, oper) = sim.get_json(&format!(
        "/vm/{}/{}",
        web.to_lowercase(),
        v["id"].as_str().unwrap()
    ));
    assert_eq!(code, 200);
    assert_eq!(oper[0]["instance-id"], web.to_lowercase());
}

#[test]
fn pod_uid_names_only_its_pod() {
    require_root!();
    common::enter_fresh_netns();
    let uid = "0b1c0000-0000-4000-8000-0000000000b1";
    let sim = Sim::start(&["--pod-uid", &format!("k8s__ns9__web-1={uid}")]);
    let a = provision(&sim);
    let (_, b) = sim.get_json("/vm-cfg/k8s__ns1__web-2");
    assert_ne!(a[0]["vm-uuid"], uid);
    assert_ne!(b[0]["vm-uuid"], uid);
    assert_ne!(a[0]["vm-uuid"], b[0]["vm-uuid"], "random UUIDs otherwise");
    let (_, c) = sim.get_json("/vm-cfg/k8s__ns9__web-1");
    assert_eq!(c[0]["vm-uuid"], uid);
}

#[test]
fn dataplane_mode_routes_the_pod_address_via_the_tap() {
    require_root!();
    common::enter_fresh_netns();
    common::ip(&[
        "link", "add", "tapsim0", "type", "veth", "peer", "name", "podsim0",
    ]);
    let sim = Sim::start(&["--dataplane", "--ipv6"]);
    let v = provision(&sim).remove(0);
    assert_eq!(post(&sim, &post_body(&v, "tapsim0")).0, 200);
    let vm = v["vm-uuid"].as_str().unwrap();
    let (_, o) = sim.get_json(&format!("/vm/{vm}/{}", v["id"].as_str().unwrap()));
    let (ip, gw) = (
        o[0]["ip-address"].as_str().unwrap(),
        o[0]["gateway"].as_str().unwrap(),
    );
    let (ip6, gw6) = (
        o[0]["v6-ip-address"].as_str().unwrap(),
        o[0]["v6-gateway"].as_str().unwrap(),
    );
    let link = common::ip(&["link", "show", "tapsim0"]);
    assert!(link.contains(",UP"), "{link}");
    let addrs = common::ip(&["addr", "show", "dev", "tapsim0"]);
    assert!(addrs.contains(&format!("{gw}/32")), "{addrs}");
    assert!(addrs.contains(&format!("{gw6}/128")), "{addrs}");
    let routes = common::ip(&["route", "show", "dev", "tapsim0"]);
    assert!(routes.contains(ip), "{routes}");
    let routes6 = common::ip(&["-6", "route", "show", "dev", "tapsim0"]);
    assert!(routes6.contains(ip6), "{routes6}");

    sim.raw("DELETE", &format!("/vm/{vm}"), "");
    let addrs = common::ip(&["addr", "show", "dev", "tapsim0"]);
    assert!(!addrs.contains(&format!("{gw}/32")), "{addrs}");
    assert!(!common::ip(&["route", "show", "dev", "tapsim0"]).contains(ip));
}

#[test]
fn listen_colon_port_means_all_interfaces() {
    require_root!();
    common::enter_fresh_netns();
    let sim = Sim::start_on(":0", &[]);
    assert!(sim.addr.starts_with("0.0.0.0:"), "{}", sim.addr);
    let (status, _, _) = raw_http(&format!("127.0.0.1:{}", sim.port), "GET", "/", "");
    assert_eq!(status, "HTTP/1.1 404 OK");
}
