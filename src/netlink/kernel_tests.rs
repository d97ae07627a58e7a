//! Real-kernel tests of the netlink layer (root). Each test moves its own
//! thread into a fresh network namespace (the "host") and creates "pod"
//! namespaces held by a file descriptor only, so tests run in parallel,
//! never see the machine's interfaces and leave nothing behind. Checks
//! cross-verify with iproute2 where it matters. Without root they say
//! `SKIPPED`; under `CI=true` they fail instead.
//!
//! They live here rather than in `tests/` because they use the test-only
//! parts of the API (rename, move, address and route removal, lookups by
//! index) that the plugin itself never needs.

use super::message::{ifinfomsg, MsgBuilder};
use super::*;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

use crate::testutil::{run_ok, setup};

/// `ip <args>` in the calling thread's namespace.
fn ip(args: &[&str]) -> String {
    run_ok("ip", args)
}

fn names_from(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n != "lo")
        .collect()
}

/// Links of the calling thread's namespace (`lo` excluded), per iproute2.
fn link_names() -> Vec<String> {
    names_from(&ip(&["-o", "link", "show"]))
}

/// [`setup`], then one pod namespace; None: skip the test.
fn pod_setup() -> Option<Pod> {
    setup().then(Pod::new)
}

/// A network namespace kept alive by an open file only.
struct Pod {
    file: File,
    path: String,
}

impl Pod {
    fn new() -> Pod {
        let file = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            run_ok("ip", &["link", "set", "lo", "up"]);
            File::open("/proc/thread-self/ns/net").expect("open thread netns")
        })
        .join()
        .expect("netns thread");
        let path = format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd());
        Pod { file, path }
    }

    fn ip(&self, args: &[&str]) -> String {
        let net = format!("--net={}", self.path);
        let mut full = vec![net.as_str(), "ip"];
        full.extend_from_slice(args);
        run_ok("nsenter", &full)
    }

    fn link_names(&self) -> Vec<String> {
        names_from(&self.ip(&["-o", "link", "show"]))
    }

    fn socket(&self) -> Socket {
        // A socket stays in the namespace of the thread that opened it.
        let ns = self.file.try_clone().unwrap();
        std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            Socket::new().unwrap()
        })
        .join()
        .unwrap()
    }
}

fn n(s: &str) -> IfName {
    IfName::parse(s).unwrap()
}

fn veth<'a>(name: &'a IfName, peer: &'a IfName, pod: Option<&'a Pod>) -> VethRequest<'a> {
    VethRequest {
        name,
        mtu: None,
        mac: None,
        up: false,
        group: None,
        peer_name: peer,
        peer_mtu: None,
        peer_mac: None,
        peer_netns_fd: pod.map(|p| p.file.as_fd()),
    }
}

fn add_veth(s: &mut Socket, a: &str, b: &str, pod: Option<&Pod>) {
    let (a, b) = (n(a), n(b));
    s.create_veth(&veth(&a, &b, pod)).unwrap();
}

fn link(sock: &mut Socket, name: &str) -> Link {
    sock.link_by_name(&n(name))
        .unwrap()
        .unwrap_or_else(|| panic!("no link {name}"))
}

fn ip_net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const UP: LinkUpdate = LinkUpdate {
    up: Some(true),
    mtu: None,
    mac: None,
    alias: None,
    group: None,
};

/// Host end "vh0" + pod end "eth0" of a veth, both up.
fn veth_to_pod(pod: &Pod) -> (Socket, Socket, Link, Link) {
    let mut host = Socket::new().unwrap();
    add_veth(&mut host, "vh0", "eth0", Some(pod));
    let mut ps = pod.socket();
    let h = link(&mut host, "vh0");
    let p = link(&mut ps, "eth0");
    host.update_link(h.index, &UP).unwrap();
    ps.update_link(p.index, &UP).unwrap();
    (host, ps, h, p)
}

/// [`veth_to_pod`] with `net` on the pod's end; returns the host
/// socket, the pod's socket and the pod's link.
fn veth_to_pod_with(pod: &Pod, net: &str) -> (Socket, Socket, Link) {
    let (h, mut ps, _, p) = veth_to_pod(pod);
    ps.add_address(&Address {
        index: p.index,
        net: ip_net(net),
    })
    .unwrap();
    (h, ps, p)
}

// ---------------------------------------------------------------------------
// Creating links

#[test]
fn veth_peer_is_born_in_the_pod_namespace() {
    let Some(pod) = pod_setup() else { return };
    let mut host = Socket::new().unwrap();
    add_veth(&mut host, "vh0", "eth0", Some(&pod));
    assert_eq!(link_names(), vec!["vh0"]);
    assert_eq!(pod.link_names(), vec!["eth0"]);
    assert!(host.link_by_name(&n("eth0")).unwrap().is_none());

    let mut ps = pod.socket();
    assert!(ps.link_by_name(&n("vh0")).unwrap().is_none());
    let h = link(&mut host, "vh0");
    let p = link(&mut ps, "eth0");
    assert_eq!(h.kind.as_deref(), Some("veth"));
    assert_eq!(p.kind.as_deref(), Some("veth"));
    // IFLA_LINK of each end is the peer's ifindex (in the peer's namespace).
    assert_eq!(h.parent_index, Some(p.index));
    assert_eq!(p.parent_index, Some(h.index));
    assert!(!h.is_up() && !p.is_up());
    assert_eq!((h.group, p.group, h.vlan_id), (0, 0, None));
}

#[test]
fn veth_mac_mtu_up_and_group_at_creation() {
    let Some(pod) = pod_setup() else { return };
    let mut host = Socket::new().unwrap();
    let (hmac, pmac): (Mac, Mac) = (
        "02:00:00:00:0a:01".parse().unwrap(),
        "02:00:00:00:0a:02".parse().unwrap(),
    );
    let (vh0, eth0) = (n("vh0"), n("eth0"));
    host.create_veth(&VethRequest {
        mtu: Some(1400),
        mac: Some(hmac),
        up: true,
        group: Some(70_000),
        peer_mtu: Some(1300),
        peer_mac: Some(pmac),
        ..veth(&vh0, &eth0, Some(&pod))
    })
    .unwrap();
    let h = link(&mut host, "vh0");
    let p = link(&mut pod.socket(), "eth0");
    assert_eq!((h.mtu, h.mac, h.group), (1400, Some(hmac), 70_000));
    assert!(h.is_up());
    // The peer: its own MTU and MAC, down, default group.
    assert_eq!((p.mtu, p.mac, p.group), (1300, Some(pmac), 0));
    assert!(!p.is_up());
    assert!(ip(&["link", "show", "vh0"]).contains("group 70000"));
    let shown = pod.ip(&["link", "show", "eth0"]);
    assert!(shown.contains("mtu 1300") && shown.contains("group default"));
}

#[test]
fn macvlan_born_up_in_a_group_in_the_pod() {
    let Some(pod) = pod_setup() else { return };
    let mut host = Socket::new().unwrap();
    // This kernel has no dummy links: a veth end is the parent.
    add_veth(&mut host, "p0", "p1", None);
    let parent = link(&mut host, "p0");
    let mac: Mac = "02:00:00:00:0c:01".parse().unwrap();
    let eth0 = n("eth0");
    host.create_macvlan(&MacvlanRequest {
        name: &eth0,
        parent_index: parent.index,
        mode: MacvlanMode::Vepa,
        mtu: Some(1400),
        mac: Some(mac),
        up: true,
        group: Some(9),
        netns_fd: Some(pod.file.as_fd()),
    })
    .unwrap();
    assert!(host.link_by_name(&eth0).unwrap().is_none());
    let m = link(&mut pod.socket(), "eth0");
    assert_eq!(m.kind.as_deref(), Some("macvlan"));
    assert_eq!((m.mtu, m.mac, m.group), (1400, Some(mac), 9));
    assert!(m.is_up());
    assert!(pod
        .ip(&["-d", "link", "show", "eth0"])
        .contains("macvlan mode vepa"));
    // Deleting the lower device removes the macvlan in the other namespace.
    host.delete_link(parent.index).unwrap();
    assert!(pod.link_names().is_empty());
}

#[test]
fn vlan_on_a_veth_parent() {
    if !setup() {
        return;
    }
    let mut s = Socket::new().unwrap();
    add_veth(&mut s, "p0", "p1", None);
    let parent = link(&mut s, "p0");
    let name = n("p0.100");
    let res = s.create_vlan(&VlanRequest {
        name: &name,
        parent_index: parent.index,
        vlan_id: 100,
        mtu: Some(1400),
        up: true,
        group: Some(5),
    });
    match res {
        Err(e) if e.errno == libc::EOPNOTSUPP => {
            assert_eq!(e.ext_ack.as_deref(), Some("Unknown device type"));
            eprintln!(
                "SKIPPED: kernel has no 802.1Q VLAN support (EOPNOTSUPP \"Unknown device type\")"
            );
        }
        Err(e) => panic!("create vlan: {e}"),
        Ok(()) => {
            let v = link(&mut s, "p0.100");
            assert_eq!(v.kind.as_deref(), Some("vlan"));
            assert_eq!((v.vlan_id, v.group, v.mtu), (Some(100), 5, 1400));
            assert_eq!(v.parent_index, Some(parent.index));
            assert!(ip(&["-d", "link", "show", "p0.100"]).contains("vlan protocol 802.1Q id 100"));
        }
    }
}

#[test]
fn duplicate_create_is_eexist() {
    let Some(pod) = pod_setup() else { return };
    let mut host = Socket::new().unwrap();
    add_veth(&mut host, "vh0", "eth0", Some(&pod));
    let (vh0, vh1, eth0, eth1) = (n("vh0"), n("vh1"), n("eth0"), n("eth1"));
    let e = host
        .create_veth(&veth(&vh0, &eth1, Some(&pod)))
        .unwrap_err();
    assert_eq!(e.errno, libc::EEXIST, "{e}");
    let e = host
        .create_veth(&veth(&vh1, &eth0, Some(&pod)))
        .unwrap_err();
    assert_eq!(e.errno, libc::EEXIST, "{e}");
    assert_eq!(link_names(), vec!["vh0"]);
}

/// A 16-byte name cannot become an [`IfName`]; sent raw, the kernel
/// answers ERANGE, which is the rule `IfName` applies first.
#[test]
fn long_names_are_refused_by_the_kernel_too() {
    if !setup() {
        return;
    }
    let long = "abcdefghijklmnop"; // 16 bytes
    assert!(IfName::parse(long).is_err());
    let mut s = Socket::new().unwrap();
    let mut b = MsgBuilder::new(
        libc::RTM_NEWLINK,
        (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16,
    );
    b.raw(&ifinfomsg(0, 0, 0));
    b.attr_str(libc::IFLA_IFNAME, long);
    let info = b.begin_nest(libc::IFLA_LINKINFO);
    b.attr(libc::IFLA_INFO_KIND, b"veth");
    b.end_nest(info);
    let e = s.ack("raw create", b.finish()).unwrap_err();
    assert_eq!(e.errno, libc::ERANGE, "{e}");
    assert_eq!(
        e.ext_ack.as_deref(),
        Some("Attribute failed policy validation")
    );
    assert!(link_names().is_empty());
}

// ---------------------------------------------------------------------------
// Changing links

#[test]
fn update_sets_everything_in_one_request_by_index_or_name() {
    if !setup() {
        return;
    }
    let mut s = Socket::new().unwrap();
    add_veth(&mut s, "a0", "a1", None);
    let a0 = link(&mut s, "a0");
    assert!(!a0.is_up());
    let mac: Mac = "02:00:00:00:0b:01".parse().unwrap();
    s.update_link(
        a0.index,
        &LinkUpdate {
            up: Some(true),
            mtu: Some(9000),
            mac: Some(mac),
            alias: Some("pod:ns/name:uid"),
            group: Some(12345),
        },
    )
    .unwrap();
    let l = link(&mut s, "a0");
    assert!(l.is_up());
    assert_eq!((l.mtu, l.mac, l.group), (9000, Some(mac), 12345));
    // The kernel replies with a NUL; we strip it.
    assert_eq!(l.alias.as_deref(), Some("pod:ns/name:uid"));
    let shown = ip(&["link", "show", "a0"]);
    assert!(shown.contains("alias pod:ns/name:uid") && shown.contains(",UP"));

    // By name: down again, other properties untouched.
    let down = LinkUpdate {
        up: Some(false),
        ..LinkUpdate::default()
    };
    s.update_link(&n("a0"), &down).unwrap();
    let l = link(&mut s, "a0");
    assert!(!l.is_up());
    assert_eq!((l.mtu, l.group), (9000, 12345));
    // The longest alias the kernel takes (255 bytes) round-trips.
    let long = "x".repeat(255);
    let alias = LinkUpdate {
        alias: Some(&long),
        ..LinkUpdate::default()
    };
    s.update_link(a0.index, &alias).unwrap();
    assert_eq!(link(&mut s, "a0").alias, Some(long));
}

#[test]
fn links_by_alias_and_multi_part_dumps() {
    if !setup() {
        return;
    }
    // 150 veth pairs (300 links) do not fit one datagram: the dump is
    // multi-part and must return every link.
    let mut s = Socket::new().unwrap();
    for i in 0..150 {
        add_veth(&mut s, &format!("m{i}a"), &format!("m{i}b"), None);
        let idx = link(&mut s, &format!("m{i}a")).index;
        let alias = format!("alias-{}", i % 3);
        let u = LinkUpdate {
            alias: Some(&alias),
            ..LinkUpdate::default()
        };
        s.update_link(idx, &u).unwrap();
    }
    assert_eq!(s.links().unwrap().len(), 301);
    assert_eq!(s.links_by_alias("alias-1").unwrap().len(), 50);
    assert!(s.links_by_alias("other").unwrap().is_empty());
    assert_eq!(link_names().len(), 300);
}

#[test]
fn link_by_index_and_missing_links() {
    if !setup() {
        return;
    }
    let mut s = Socket::new().unwrap();
    add_veth(&mut s, "a0", "a1", None);
    let a0 = link(&mut s, "a0");
    assert_eq!(s.link_by_index(a0.index).unwrap(), Some(a0.clone()));
    let lo = s.link_by_index(1).unwrap().unwrap();
    assert_eq!(lo.name, "lo");
    assert!(lo.is_up());
    assert_eq!(s.link_by_index(99999).unwrap(), None);
    assert_eq!(s.link_by_name(&n("nope")).unwrap(), None);

    let e = s.delete_link_by_name(&n("ghost0")).unwrap_err();
    assert_eq!(e.errno, libc::ENODEV, "{e}");
    assert_eq!(s.delete_link(4242).unwrap_err().errno, libc::ENODEV);
    assert_eq!(s.update_link(4242, &UP).unwrap_err().errno, libc::ENODEV);
    assert_eq!(
        s.update_link(&n("ghost0"), &UP).unwrap_err().errno,
        libc::ENODEV
    );
}

#[test]
fn rename_down_and_up() {
    if !setup() {
        return;
    }
    let mut s = Socket::new().unwrap();
    add_veth(&mut s, "a0", "a1", None);
    let idx = link(&mut s, "a0").index;
    s.set_link_name(idx, &n("renamed")).unwrap();
    assert_eq!(s.link_by_index(idx).unwrap().unwrap().name, "renamed");
    // Kernels >= 6.2 rename up links too (older: EBUSY).
    s.update_link(idx, &UP).unwrap();
    s.set_link_name(idx, &n("again")).unwrap();
    assert_eq!(s.link_by_index(idx).unwrap().unwrap().name, "again");
    assert!(s.link_by_name(&n("a0")).unwrap().is_none());
}

#[test]
fn move_to_netns_with_rename() {
    let Some(pod) = pod_setup() else { return };
    let mut s = Socket::new().unwrap();
    add_veth(&mut s, "a0", "eth0", None); // "eth0" here...
    let moved = link(&mut s, "eth0");
    s.set_link_netns(moved.index, pod.file.as_fd(), Some(&n("eth1")))
        .unwrap();
    assert_eq!(link_names(), vec!["a0"]);
    assert_eq!(pod.link_names(), vec!["eth1"]); // ...is eth1 there
    let p = link(&mut pod.socket(), "eth1");
    assert_eq!(p.kind.as_deref(), Some("veth"));
}

// ---------------------------------------------------------------------------
// Deleting links

#[test]
fn deleting_one_veth_end_removes_both() {
    let Some(pod) = pod_setup() else { return };
    let mut host = Socket::new().unwrap();
    add_veth(&mut host, "vh0", "eth0", Some(&pod));
    let mut ps = pod.socket();
    ps.delete_link_by_name(&n("eth0")).unwrap();
    assert!(host.link_by_name(&n("vh0")).unwrap().is_none());
    assert!(pod.link_names().is_empty());

    add_veth(&mut host, "vh1", "eth0", Some(&pod));
    let idx = link(&mut host, "vh1").index;
    host.delete_link(idx).unwrap();
    assert!(ps.link_by_name(&n("eth0")).unwrap().is_none());
}

/// `count` veths `t0..` with their peers `eth0..` in `pod`; their indexes.
fn pod_veths(host: &mut Socket, pod: &Pod, count: usize) -> Vec<u32> {
    (0..count)
        .map(|i| {
            add_veth(host, &format!("t{i}"), &format!("eth{i}"), Some(pod));
            link(host, &format!("t{i}")).index
        })
        .collect()
}

#[test]
fn delete_links_removes_exactly_those_in_one_batch() {
    let Some(pod) = pod_setup() else { return };
    let mut host = Socket::new().unwrap();
    let ours = pod_veths(&mut host, &pod, 8);
    // Bystanders: another pod's veth and a link already in a group.
    add_veth(&mut host, "other0", "other1", None);
    let grouped = link(&mut host, "other0").index;
    let g = LinkUpdate {
        group: Some(3),
        ..LinkUpdate::default()
    };
    host.update_link(grouped, &g).unwrap();

    let done = host.delete_links(&ours).unwrap();
    assert_eq!(
        done,
        Deleted {
            deleted: 8,
            gone: 0,
            batched: true
        }
    );
    // Both ends of each of ours are gone; nothing else moved.
    assert!(pod.link_names().is_empty());
    let mut left = link_names();
    left.sort();
    assert_eq!(left, vec!["other0", "other1"]);
    assert_eq!(link(&mut host, "other0").group, 3);
    assert_eq!(link(&mut host, "other1").group, 0);
}

#[test]
fn delete_links_counts_links_already_gone() {
    let Some(pod) = pod_setup() else { return };
    let mut host = Socket::new().unwrap();
    let mut ours = pod_veths(&mut host, &pod, 3);
    host.delete_link(ours[1]).unwrap();
    // Duplicates and 0 are ignored.
    ours.extend([ours[0], 0]);
    let done = host.delete_links(&ours).unwrap();
    assert_eq!(
        done,
        Deleted {
            deleted: 2,
            gone: 1,
            batched: true
        }
    );
    assert!(link_names().is_empty() && pod.link_names().is_empty());

    // One link: deleted directly. None: nothing to do.
    let one = pod_veths(&mut host, &pod, 1);
    assert_eq!(
        host.delete_links(&one).unwrap(),
        Deleted {
            deleted: 1,
            gone: 0,
            batched: false
        }
    );
    assert_eq!(host.delete_links(&one).unwrap().gone, 1);
    assert_eq!(host.delete_links(&[]).unwrap(), Deleted::default());
}

/// Another program's link in the group we picked: ours are deleted one by
/// one, theirs stays.
#[test]
fn delete_links_never_takes_a_foreign_link_of_the_group() {
    let Some(pod) = pod_setup() else { return };
    let mut host = Socket::new().unwrap();
    let ours = pod_veths(&mut host, &pod, 3);
    add_veth(&mut host, "theirs0", "theirs1", None);
    let theirs = link(&mut host, "theirs0").index;
    let group = 0x0012_3456;
    let g = LinkUpdate {
        group: Some(group),
        ..LinkUpdate::default()
    };
    host.update_link(theirs, &g).unwrap();

    let done = host.delete_links_in_group(&ours, group).unwrap();
    assert_eq!(
        done,
        Deleted {
            deleted: 3,
            gone: 0,
            batched: false
        }
    );
    assert!(pod.link_names().is_empty());
    assert_eq!(link(&mut host, "theirs0").group, group);
    assert_eq!(link_names().len(), 2);
}

/// A group the kernel refuses to delete (here because it holds `lo`,
/// which has no dellink): the links are deleted one by one, and what
/// cannot be deleted is reported.
#[test]
fn delete_links_falls_back_when_the_kernel_refuses_the_batch() {
    let Some(pod) = pod_setup() else { return };
    let mut host = Socket::new().unwrap();
    let mut ours = pod_veths(&mut host, &pod, 2);
    ours.push(1); // lo
    let e = host.delete_links(&ours).unwrap_err();
    assert_eq!(e.errno, libc::EOPNOTSUPP, "{e}");
    assert!(pod.link_names().is_empty());
    assert!(link_names().is_empty());
    assert!(link(&mut host, "lo").is_up());
}

// ---------------------------------------------------------------------------
// Addresses and routes

#[test]
fn ipv4_address_add_list_and_duplicate() {
    let Some(pod) = pod_setup() else { return };
    let (_h, mut ps, _, p) = veth_to_pod(&pod);
    let a = Address {
        index: p.index,
        net: ip_net("10.10.0.5/24"),
    };
    ps.add_address(&a).unwrap();
    let v4: Vec<Address> = ps
        .addresses(Some(p.index))
        .unwrap()
        .into_iter()
        .filter(|x| x.net.addr().is_ipv4())
        .collect();
    assert_eq!(v4, vec![a]);
    assert!(pod
        .ip(&["-4", "addr", "show", "eth0"])
        .contains("10.10.0.5/24"));
    // All-links listing includes lo's 127.0.0.1 as well.
    let all = ps.addresses(None).unwrap();
    assert!(all.contains(&a) && all.iter().any(|x| x.net.addr() == addr("127.0.0.1")));

    let e = ps.add_address(&a).unwrap_err();
    assert_eq!(e.errno, libc::EEXIST, "{e}");
    assert_eq!(e.ext_ack.as_deref(), Some("ipv4: Address already assigned"));

    ps.delete_address(&a).unwrap();
    // Only the IPv6 link-local address of the up link remains.
    assert!(!ps
        .addresses(Some(p.index))
        .unwrap()
        .iter()
        .any(|x| x.net.addr().is_ipv4()));
}

#[test]
fn ipv6_address_add_list_without_dad() {
    let Some(pod) = pod_setup() else { return };
    let (_h, mut ps, _, p) = veth_to_pod(&pod);
    let a = Address {
        index: p.index,
        net: ip_net("fd00:10::5/64"),
    };
    ps.add_address(&a).unwrap();
    let mine = ps.addresses(Some(p.index)).unwrap();
    assert!(mine.contains(&a), "{mine:?}");
    let shown = pod.ip(&["-6", "addr", "show", "eth0"]);
    assert!(shown.contains("fd00:10::5/64"), "{shown}");
    // IFA_F_NODAD: usable at once, never "tentative".
    let line = shown.lines().find(|l| l.contains("fd00:10::5")).unwrap();
    assert!(!line.contains("tentative"), "{line}");
    assert_eq!(ps.add_address(&a).unwrap_err().errno, libc::EEXIST);
}

#[test]
fn routes_default_via_gateway_and_list() {
    let Some(pod) = pod_setup() else { return };
    let (_h, mut ps, p) = veth_to_pod_with(&pod, "10.10.0.5/24");
    let r = Route {
        dst: None,
        gateway: Some(addr("10.10.0.1")),
        oif: p.index,
        onlink: false,
    };
    ps.add_route(&r).unwrap();
    let routes = ps.routes().unwrap();
    assert!(routes.contains(&r), "{routes:?}");
    // The prefix route of the address is listed too (no gateway).
    assert!(routes.contains(&Route {
        dst: Some(ip_net("10.10.0.0/24")),
        gateway: None,
        oif: p.index,
        onlink: false,
    }));
    assert!(pod
        .ip(&["route", "show", "default"])
        .contains("via 10.10.0.1 dev eth0"));
    assert_eq!(ps.add_route(&r).unwrap_err().errno, libc::EEXIST);

    // A more specific route, then delete both.
    let net = Route {
        dst: Some(ip_net("192.168.7.0/24")),
        gateway: Some(addr("10.10.0.1")),
        oif: p.index,
        onlink: false,
    };
    ps.add_route(&net).unwrap();
    assert!(ps.routes().unwrap().contains(&net));
    ps.delete_route(&net).unwrap();
    ps.delete_route(&r).unwrap();
    assert!(!ps.routes().unwrap().iter().any(|x| x.gateway.is_some()));
}

#[test]
fn onlink_gateway_outside_the_subnet() {
    let Some(pod) = pod_setup() else { return };
    let (_h, mut ps, p) = veth_to_pod_with(&pod, "10.10.0.5/32");
    let mut r = Route {
        dst: None,
        gateway: Some(addr("169.254.1.1")),
        oif: p.index,
        onlink: false,
    };
    let e = ps.add_route(&r).unwrap_err();
    assert_eq!(e.errno, libc::ENETUNREACH, "{e}");
    assert_eq!(e.ext_ack.as_deref(), Some("Nexthop has invalid gateway"));

    r.onlink = true;
    ps.add_route(&r).unwrap();
    assert!(ps.routes().unwrap().contains(&r));
    assert!(pod
        .ip(&["route", "show", "default"])
        .contains("via 169.254.1.1 dev eth0 onlink"));
}

#[test]
fn onlink_route_on_a_down_link_is_enetdown() {
    if !setup() {
        return;
    }
    let mut s = Socket::new().unwrap();
    add_veth(&mut s, "a0", "a1", None);
    let a0 = link(&mut s, "a0");
    let e = s
        .add_route(&Route {
            dst: None,
            gateway: Some(addr("169.254.1.1")),
            oif: a0.index,
            onlink: true,
        })
        .unwrap_err();
    assert_eq!(e.errno, libc::ENETDOWN, "{e}");
    assert_eq!(e.ext_ack.as_deref(), Some("Nexthop device is not up"));
}

#[test]
fn ipv6_default_route() {
    let Some(pod) = pod_setup() else { return };
    let (_h, mut ps, p) = veth_to_pod_with(&pod, "fd00:10::5/64");
    let r = Route {
        dst: None,
        gateway: Some(addr("fd00:10::1")),
        oif: p.index,
        onlink: false,
    };
    ps.add_route(&r).unwrap();
    assert!(ps.routes().unwrap().contains(&r));
    assert!(pod
        .ip(&["-6", "route", "show", "default"])
        .contains("via fd00:10::1 dev eth0"));
}

/// IPv6 on-link routes arrived in Linux 4.16. An older kernel refuses the
/// pod's default route via a gateway outside its /128 with EHOSTUNREACH;
/// the fallback (host route to the gateway, then the route without the
/// flag) must be what this kernel accepts too, and be needed.
#[test]
fn ipv6_onlink_route_fallback_for_kernels_before_4_16() {
    let Some(pod) = pod_setup() else { return };
    let (_h, mut ps, p) = veth_to_pod_with(&pod, "fd00:20::5/128");
    let onlink = Route {
        dst: None,
        gateway: Some(addr("fd00:20::1")),
        oif: p.index,
        onlink: true,
    };
    let plain = Route {
        onlink: false,
        ..onlink
    };
    // Without the flag and without a route to the gateway: refused, as an
    // old kernel refuses the flagged route.
    let e = ps.add_route(&plain).unwrap_err();
    assert_eq!(e.errno, libc::EHOSTUNREACH, "{e}");

    let mut asked = Vec::new();
    ps.add_route_via(&onlink, |s, r| {
        asked.push(*r);
        if r.onlink {
            // A kernel before 4.16.
            return Err(Error::new("add", libc::EHOSTUNREACH));
        }
        s.add_route(r)
    })
    .unwrap();
    assert_eq!(asked.len(), 3, "{asked:?}");
    let routes = ps.routes().unwrap();
    assert!(routes.contains(&plain), "{routes:?}");
    let host = Route {
        dst: Some(ip_net("fd00:20::1/128")),
        gateway: None,
        oif: p.index,
        onlink: false,
    };
    assert!(routes.contains(&host), "{routes:?}");
    assert!(pod
        .ip(&["-6", "route", "show", "default"])
        .contains("via fd00:20::1 dev eth0"));

    // Any other refusal is returned as it is, with nothing added.
    ps.delete_route(&plain).unwrap();
    ps.delete_route(&host).unwrap();
    let e = ps
        .add_route_via(&onlink, |_, _| Err(Error::new("add", libc::EINVAL)))
        .unwrap_err();
    assert_eq!(e.errno, libc::EINVAL);
    // The running kernel takes the flagged route directly.
    ps.add_route(&onlink).unwrap();
    assert!(!ps.routes().unwrap().contains(&host));
}
