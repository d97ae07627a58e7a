//! Table tests of every decision, without root.

use super::*;
use crate::agent::Annotations;
use crate::agent::PortRequest;
use crate::store::BadFile;

fn uuid(n: u32) -> Uuid {
    Uuid::parse(&format!("00000000-0000-4000-8000-{n:012x}")).unwrap()
}
const POD: u32 = 0xaaa;
fn ifn(s: &str) -> IfName {
    IfName::parse(s).unwrap()
}
fn cid(s: &str) -> ContainerId {
    ContainerId::parse(s).unwrap()
}
fn vm() -> VmName {
    VmName::parse("k8s__default__web").unwrap()
}

/// VMI `n` of the pod with `index`, network and optional interface name.
fn vmi(n: u32, index: u32, network: &str, ifname: Option<&str>) -> VmiConfig {
    VmiConfig {
        id: uuid(n),
        vm_uuid: uuid(POD),
        vn_id: uuid(0xb0b),
        vn_name: format!("default-domain:k8s:{network}"),
        mac: Mac([2, 0, 0, 0, 0, n as u8]),
        vlan_id: Some(100 + n as u16),
        index,
        network: Some(network.into()),
        ifname: ifname.map(ifn),
        annotations: Annotations::default(),
    }
}

/// A valid port file of container `c` for VMI `n` named `ifname`.
fn port(c: &str, n: u32, ifname: &str) -> PortFile {
    PortFile {
        port: PortRequest {
            vm_uuid: uuid(POD),
            vm_name: vm(),
            host_ifname: host_name(VifType::Veth, &uuid(POD), &ifn(ifname)),
            vn_uuid: uuid(0xb0b),
            vmi_uuid: uuid(n),
            vm_id: cid(c),
            vm_ifname: ifn(ifname),
            vm_namespace: "/run/netns/x".into(),
        },
        vif_type: VifType::Veth,
        pod_uid: Some(uuid(POD)),
        network: "default".into(),
        index: 0,
        vlan_id: None,
    }
}

fn bad(name: &str) -> BadFile {
    BadFile {
        vm: vm(),
        name: name.into(),
        reason: "garbage".into(),
    }
}

struct Case {
    vmis: Vec<VmiConfig>,
    ports: Ports,
    delegate: Option<&'static str>,
    ifname: &'static str,
    vif: VifType,
    pod_uid: Option<Uuid>,
}

impl Case {
    fn new(vmis: Vec<VmiConfig>) -> Case {
        Case {
            vmis,
            ports: Ports::default(),
            delegate: None,
            ifname: "eth0",
            vif: VifType::Veth,
            pod_uid: None,
        }
    }
    fn run(&self) -> Result<AddPlan> {
        let (c, i, v) = (cid("new"), ifn(self.ifname), vm());
        plan_add(&AddInput {
            container: &c,
            ifname: &i,
            vif: self.vif,
            delegate: self.delegate,
            pod_uid: self.pod_uid.as_ref(),
            vm: &v,
            vmis: &self.vmis,
            ports: &self.ports,
        })
    }
    fn names(&self) -> Vec<String> {
        self.run()
            .unwrap()
            .attach
            .iter()
            .map(|a| a.ifname.to_string())
            .collect()
    }
}

#[test]
fn standalone_names_every_vmi() {
    // index 0 gets CNI_IFNAME; others their annotation, else eth<index>.
    for (vmis, ifname, want) in [
        (vec![vmi(1, 0, "default", None)], "eth0", vec!["eth0"]),
        (vec![vmi(1, 0, "default", Some("x"))], "net0", vec!["net0"]),
        (
            vec![vmi(1, 0, "default", None), vmi(2, 1, "blue", None)],
            "eth0",
            vec!["eth0", "eth1"],
        ),
        (
            vec![vmi(1, 0, "default", None), vmi(2, 1, "blue", Some("blue0"))],
            "eth0",
            vec!["eth0", "blue0"],
        ),
    ] {
        let mut c = Case::new(vmis);
        c.ifname = ifname;
        assert_eq!(c.names(), want);
    }
    let p = Case::new(vec![vmi(1, 0, "default", None), vmi(2, 1, "blue", None)])
        .run()
        .unwrap();
    assert!(p.attach[0].primary() && !p.attach[1].primary());
    assert_eq!(p.attach[0].host, tap_name_of("eth0"));
    assert_eq!(p.attach[0].vlan_id, None);
}

fn tap_name_of(ifname: &str) -> IfName {
    host_name(VifType::Veth, &uuid(POD), &ifn(ifname))
}

#[test]
fn refusals_and_their_codes() {
    // Two interfaces under one name (an annotation naming CNI_IFNAME).
    let e = Case::new(vec![
        vmi(1, 0, "default", None),
        vmi(2, 1, "b", Some("eth0")),
    ])
    .run()
    .unwrap_err();
    assert_eq!(e.code, code::INVALID_CONFIG);
    assert!(e.msg.contains("eth0"), "{}", e.msg);
    // Nothing listed.
    assert_eq!(
        Case::new(vec![]).run().unwrap_err().code,
        code::TRY_AGAIN_LATER
    );
    // A stale VM: the agent's VM is not the pod's UID.
    let mut c = Case::new(vec![vmi(1, 0, "default", None)]);
    c.pod_uid = Some(uuid(0xbad));
    let e = c.run().unwrap_err();
    assert_eq!(e.code, code::TRY_AGAIN_LATER);
    assert!(e.msg.contains("stale"), "{}", e.msg);
    c.pod_uid = Some(uuid(POD));
    assert!(c.run().is_ok());
    // Nested mode needs a VLAN id.
    let mut v = vmi(1, 0, "default", None);
    v.vlan_id = None;
    let mut c = Case::new(vec![v]);
    c.vif = VifType::Macvlan;
    assert_eq!(c.run().unwrap_err().code, code::INVALID_CONFIG);
    let mut c = Case::new(vec![vmi(1, 0, "default", None)]);
    c.vif = VifType::Macvlan;
    let p = c.run().unwrap();
    assert_eq!(p.attach[0].vlan_id, Some(101));
    assert!(p.attach[0].host.as_str().starts_with("vlan"));
}

#[test]
fn delegates_take_their_network_once_per_name() {
    let vmis = vec![
        vmi(1, 0, "default", None),
        vmi(2, 1, "blue", None),
        vmi(3, 2, "blue", None),
    ];
    let mut c = Case::new(vmis);
    c.delegate = Some("blue");
    c.ifname = "net1";
    let p = c.run().unwrap();
    assert_eq!(p.attach.len(), 1);
    assert_eq!(
        (p.attach[0].vmi.id.clone(), p.attach[0].ifname.as_str()),
        (uuid(2), "net1")
    );
    // The first blue VMI is taken by this sandbox under another name.
    c.ports.good.push(port("new", 2, "net1"));
    c.ifname = "net2";
    assert_eq!(c.run().unwrap().attach[0].vmi.id, uuid(3));
    // Both taken: a third attachment of blue has no VMI.
    c.ports.good.push(port("new", 3, "net2"));
    c.ifname = "net3";
    assert_eq!(c.run().unwrap_err().code, code::INVALID_CONFIG);
    // Taken by an older sandbox does not count: it is a leftover.
    let mut c = Case::new(vec![vmi(2, 1, "blue", None)]);
    c.delegate = Some("blue");
    c.ifname = "net1";
    c.ports.good.push(port("old", 2, "net1"));
    let p = c.run().unwrap();
    assert_eq!(p.leftovers.len(), 1);
    assert_eq!(delegate_network("contrail-k8s-cni"), "default");
    assert_eq!(delegate_network("blue"), "blue");
}

#[test]
fn leftovers_are_older_sandboxes_and_own_retries() {
    let mut c = Case::new(vec![vmi(1, 0, "default", None)]);
    c.ports.good = vec![
        port("old", 1, "eth0"), // an older sandbox: goes
        port("new", 1, "eth0"), // a failed attempt of ours: goes
        port("new", 9, "eth9"), // ours, another VMI (another delegate): stays
    ];
    c.ports.bad = vec![
        bad(uuid(1).as_str()),                     // in the way of our file: goes
        bad(&format!("{}.tmp", uuid(1).as_str())), // named like ours: goes
        bad(uuid(7).as_str()),                     // someone else's: stays
    ];
    let p = c.run().unwrap();
    let left: Vec<(&str, bool)> = p
        .leftovers
        .iter()
        .map(|l| (l.port.vm_id.as_str(), l.port.vmi_uuid == uuid(1)))
        .collect();
    assert_eq!(left, [("old", true), ("new", true)]);
    assert_eq!(p.bad.len(), 2);
}

#[test]
fn del_removes_only_this_attachment() {
    let ports = Ports {
        good: vec![
            port("c1", 1, "eth0"),
            port("c1", 2, "net1"),
            port("c2", 3, "eth0"),
        ],
        bad: vec![bad("x")],
    };
    let c1 = cid("c1");
    let all = plan_del(&ports, &c1, None);
    assert_eq!(all.ours.len(), 2);
    assert_eq!(all.others, [&cid("c2")]);
    assert!(
        all.bad.is_empty(),
        "another sandbox has state: unreadable files stay"
    );
    let one = plan_del(&ports, &c1, Some(&ifn("net1")));
    assert_eq!(one.ours.len(), 1);
    assert_eq!(one.ours[0].port.vm_ifname, "net1");
    let alone = Ports {
        good: vec![port("c1", 1, "eth0")],
        bad: vec![bad("x")],
    };
    assert_eq!(plan_del(&alone, &c1, None).bad.len(), 1);
    assert!(plan_del(&alone, &c1, Some(&ifn("eth0"))).bad.is_empty());
    // An older sandbox's DEL of a pod now owned by a newer one does nothing.
    let old = plan_del(&alone, &cid("c0"), None);
    assert!(old.ours.is_empty() && old.bad.is_empty());
}

#[test]
fn gc_keeps_listed_containers() {
    let ports = Ports {
        good: vec![port("live", 1, "eth0"), port("dead", 2, "eth0")],
        bad: vec![bad("x")],
    };
    let live = cid("live");
    let keep: HashSet<&ContainerId> = [&live].into_iter().collect();
    let d = plan_gc(&ports, &keep);
    assert_eq!(d.ours.len(), 1);
    assert_eq!(d.ours[0].port.vm_id, "dead");
    assert!(d.bad.is_empty());
    let d = plan_gc(&ports, &HashSet::new());
    assert_eq!((d.ours.len(), d.bad.len()), (2, 1));
}

#[test]
fn links_are_deleted_only_with_the_right_mark() {
    use crate::vif::names::PENDING_GROUP;
    let pf = port("c1", 1, "eth0");
    for (alias, group, want) in [
        (Some("contrail-k8s-cni:c1"), 0, true),
        (Some("contrail-k8s-cni:c2"), 0, false), // a newer sandbox's link of the same name
        (None, PENDING_GROUP, true),             // its creator died before marking it
        (None, 0, false),                        // someone else's
        (Some("x"), PENDING_GROUP, false),
    ] {
        assert_eq!(may_delete(&pf, alias, group), want, "{alias:?} {group}");
    }
}

#[test]
fn meta_plugin_detection_covers_thin_thick_and_truncation() {
    assert!(called_by("multus", "multus"));
    assert!(called_by("multus-daemon", "multus"));
    assert!(!called_by("containerd", "multus"));
    assert!(!called_by("", "multus"));
    assert!(!called_by("multus", ""));
    // comm is cut at 15 bytes.
    assert!(called_by("my-long-meta-pl", "my-long-meta-plugin"));
    assert!(is_delegate(Some(true), "containerd", "multus"));
    assert!(!is_delegate(Some(false), "multus", "multus"));
    assert!(is_delegate(None, "multus", "multus"));
}

#[test]
fn agent_addresses_become_pod_addresses() {
    let a = Case::new(vec![vmi(1, 0, "default", None)])
        .run()
        .unwrap()
        .attach
        .remove(0);
    let oper = |v4: &str, v6: Option<&str>| VmiOper {
        id: uuid(1),
        mac: None,
        v4: Some(v4.parse().unwrap()),
        v4_gateway: Some("10.0.0.1".parse().unwrap()),
        v4_dns: Some("10.0.0.2".parse().unwrap()),
        v6: v6.map(|s| s.parse().unwrap()),
        v6_gateway: None,
        v6_dns: Some("10.0.0.2".parse().unwrap()),
    };
    let p = pod_addrs(&a, &oper("10.0.0.5/24", Some("fd00::5")), None).unwrap();
    assert_eq!(p.mac, a.vmi.mac, "no oper MAC: the config's");
    let shown: Vec<String> = p.addrs.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(shown, ["10.0.0.5/24", "fd00::5/128"]);
    assert_eq!(p.dns.len(), 1, "deduplicated");
    let p = pod_addrs(&a, &oper("10.0.0.5/24", Some("fd00::5")), Some(64)).unwrap();
    assert_eq!(p.addrs[1].0.to_string(), "fd00::5/64");
    // The subnet's own addresses are refused even when the agent checked
    // the rest: the pod never gets them.
    for bad in ["10.0.0.0/24", "10.0.0.255/24"] {
        assert_eq!(
            pod_addrs(&a, &oper(bad, None), None).unwrap_err().code,
            code::AGENT
        );
    }
    let e = pod_addrs(&a, &oper("10.0.0.5/24", Some("fd00::")), Some(64)).unwrap_err();
    assert_eq!(e.code, code::AGENT, "{}", e.msg);
}
