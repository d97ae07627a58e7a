//! Real-kernel tests of `netlink` and `netns` (root). Each test moves its
//! own thread into a fresh network namespace (the "host") and creates a
//! "pod" namespace held by an fd only, so tests run in parallel and leave
//! nothing behind. Checks cross-verify with iproute2 where it matters.

mod common;

use common::NsFd;
use contrail_cni::netlink::message::{ifinfomsg, MsgBuilder};
use contrail_cni::netlink::{
    set_interface_sysctl, Address, Link, Mac, MacvlanMode, MacvlanRequest, Route, Socket,
    VethRequest, VlanRequest,
};
use contrail_cni::netns::NetNs;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;

fn veth<'a>(name: &'a str, peer: &'a str, pod: Option<&'a NsFd>) -> VethRequest<'a> {
    VethRequest {
        name,
        mtu: None,
        mac: None,
        peer_name: peer,
        peer_mtu: None,
        peer_mac: None,
        peer_netns_fd: pod.map(|p| p.file.as_fd()),
    }
}

fn pod_socket(pod: &NsFd) -> Socket {
    NetNs::open(&pod.path).unwrap().socket().unwrap()
}

fn link(sock: &mut Socket, name: &str) -> Link {
    sock.link_by_name(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no link {name}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn netns_inode() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
}

/// Host end + pod end ("eth0") of a veth, both up; returns (host, pod) sockets.
fn veth_to_pod(pod: &NsFd) -> (Socket, Socket, Link, Link) {
    let mut host = Socket::new().unwrap();
    host.create_veth(&veth("vh0", "eth0", Some(pod))).unwrap();
    let mut ps = pod_socket(pod);
    let h = link(&mut host, "vh0");
    let p = link(&mut ps, "eth0");
    host.set_link_up(h.index, true).unwrap();
    ps.set_link_up(p.index, true).unwrap();
    (host, ps, h, p)
}

#[test]
fn veth_peer_is_born_in_the_pod_namespace() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let mut host = Socket::new().unwrap();
    host.create_veth(&veth("vh0", "eth0", Some(&pod))).unwrap();

    assert_eq!(common::link_names(), vec!["vh0"]);
    assert_eq!(pod.link_names(), vec!["eth0"]);
    assert!(host.link_by_name("eth0").unwrap().is_none());

    let mut ps = pod_socket(&pod);
    assert!(ps.link_by_name("vh0").unwrap().is_none());
    let h = link(&mut host, "vh0");
    let p = link(&mut ps, "eth0");
    assert_eq!(h.kind.as_deref(), Some("veth"));
    assert_eq!(p.kind.as_deref(), Some("veth"));
    // IFLA_LINK of each end is the peer's ifindex (in the peer's namespace).
    assert_eq!(h.parent_index, Some(p.index));
    assert_eq!(p.parent_index, Some(h.index));
}

#[test]
fn veth_mac_and_mtu_on_both_ends() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let mut host = Socket::new().unwrap();
    let (hmac, pmac): (Mac, Mac) = (
        "02:00:00:00:0a:01".parse().unwrap(),
        "02:00:00:00:0a:02".parse().unwrap(),
    );
    host.create_veth(&VethRequest {
        mtu: Some(1400),
        mac: Some(hmac),
        peer_mtu: Some(1300),
        peer_mac: Some(pmac),
        ..veth("vh0", "eth0", Some(&pod))
    })
    .unwrap();
    let h = link(&mut host, "vh0");
    let p = link(&mut pod_socket(&pod), "eth0");
    assert_eq!((h.mtu, h.mac), (1400, Some(hmac)));
    assert_eq!((p.mtu, p.mac), (1300, Some(pmac)));
    assert!(pod.ip(&["link", "show", "eth0"]).contains("mtu 1300"));

    // Changing them afterwards works too.
    let new_mac: Mac = "02:00:00:00:0b:01".parse().unwrap();
    host.set_link_mtu(h.index, 9000).unwrap();
    host.set_link_mac(h.index, new_mac).unwrap();
    let h = link(&mut host, "vh0");
    assert_eq!((h.mtu, h.mac), (9000, Some(new_mac)));
}

#[test]
fn alias_set_read_and_links_by_alias() {
    require_root!();
    common::enter_fresh_netns();
    let mut s = Socket::new().unwrap();
    s.create_veth(&veth("a0", "a1", None)).unwrap();
    s.create_veth(&veth("b0", "b1", None)).unwrap();
    let a0 = link(&mut s, "a0");
    let b1 = link(&mut s, "b1");
    assert_eq!(a0.alias, None);
    s.set_link_alias(a0.index, "pod:ns/name:uid").unwrap();
    s.set_link_alias(b1.index, "pod:ns/name:uid").unwrap();
    // The kernel replies with a NUL; we strip it.
    assert_eq!(link(&mut s, "a0").alias.as_deref(), Some("pod:ns/name:uid"));
    assert!(common::ip(&["link", "show", "a0"]).contains("alias pod:ns/name:uid"));

    let mut names: Vec<String> = s
        .links_by_alias("pod:ns/name:uid")
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    names.sort();
    assert_eq!(names, vec!["a0", "b1"]);
    assert!(s.links_by_alias("other").unwrap().is_empty());
    // The longest alias the kernel takes (255 bytes) round-trips.
    let long = "x".repeat(255);
    s.set_link_alias(a0.index, &long).unwrap();
    assert_eq!(link(&mut s, "a0").alias, Some(long));
}

#[test]
fn link_by_index_and_missing_links() {
    require_root!();
    common::enter_fresh_netns();
    let mut s = Socket::new().unwrap();
    s.create_veth(&veth("a0", "a1", None)).unwrap();
    let a0 = link(&mut s, "a0");
    assert_eq!(s.link_by_index(a0.index).unwrap(), Some(a0.clone()));
    let lo = s.link_by_index(1).unwrap().unwrap();
    assert_eq!(lo.name, "lo");
    assert!(lo.is_up());
    assert_eq!(s.link_by_index(99999).unwrap(), None);
    assert_eq!(s.link_by_name("nope").unwrap(), None);
}

#[test]
fn set_up_and_down() {
    require_root!();
    common::enter_fresh_netns();
    let mut s = Socket::new().unwrap();
    s.create_veth(&veth("a0", "a1", None)).unwrap();
    let a0 = link(&mut s, "a0");
    assert!(!a0.is_up());
    s.set_link_up(a0.index, true).unwrap();
    assert!(link(&mut s, "a0").is_up());
    assert!(common::ip(&["link", "show", "a0"]).contains(",UP"));
    s.set_link_up(a0.index, false).unwrap();
    assert!(!link(&mut s, "a0").is_up());
}

#[test]
fn rename_down_and_up() {
    require_root!();
    common::enter_fresh_netns();
    let mut s = Socket::new().unwrap();
    s.create_veth(&veth("a0", "a1", None)).unwrap();
    let idx = link(&mut s, "a0").index;
    s.set_link_name(idx, "renamed").unwrap();
    assert_eq!(s.link_by_index(idx).unwrap().unwrap().name, "renamed");
    // Kernels >= 6.2 rename up links too (older: EBUSY).
    s.set_link_up(idx, true).unwrap();
    s.set_link_name(idx, "again").unwrap();
    assert_eq!(s.link_by_index(idx).unwrap().unwrap().name, "again");
    assert!(s.link_by_name("a0").unwrap().is_none());
}

#[test]
fn move_to_netns_with_rename() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let mut s = Socket::new().unwrap();
    s.create_veth(&veth("a0", "eth0", None)).unwrap(); // "eth0" here...
    let moved = link(&mut s, "eth0");
    s.set_link_netns(moved.index, pod.file.as_fd(), Some("eth1"))
        .unwrap();
    assert_eq!(common::link_names(), vec!["a0"]);
    assert_eq!(pod.link_names(), vec!["eth1"]); // ...is eth1 there
    let p = link(&mut pod_socket(&pod), "eth1");
    assert_eq!(p.kind.as_deref(), Some("veth"));
}

#[test]
fn ipv4_address_add_list_and_duplicate() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let (_h, mut ps, _, p) = veth_to_pod(&pod);
    let a = Address {
        index: p.index,
        addr: ip("10.10.0.5"),
        prefix_len: 24,
    };
    ps.add_address(&a).unwrap();
    let v4: Vec<Address> = ps
        .addresses(Some(p.index))
        .unwrap()
        .into_iter()
        .filter(|x| x.addr.is_ipv4())
        .collect();
    assert_eq!(v4, vec![a]);
    assert!(pod
        .ip(&["-4", "addr", "show", "eth0"])
        .contains("10.10.0.5/24"));
    // All-links listing includes lo's 127.0.0.1 as well.
    let all = ps.addresses(None).unwrap();
    assert!(all.contains(&a) && all.iter().any(|x| x.addr == ip("127.0.0.1")));

    let e = ps.add_address(&a).unwrap_err();
    assert_eq!(e.errno, libc::EEXIST, "{e}");
    assert_eq!(e.ext_ack.as_deref(), Some("ipv4: Address already assigned"));

    ps.delete_address(&a).unwrap();
    // Only the IPv6 link-local address of the up link remains.
    assert!(!ps
        .addresses(Some(p.index))
        .unwrap()
        .iter()
        .any(|x| x.addr.is_ipv4()));
}

#[test]
fn ipv6_address_add_list_without_dad() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let (_h, mut ps, _, p) = veth_to_pod(&pod);
    let a = Address {
        index: p.index,
        addr: ip("fd00:10::5"),
        prefix_len: 64,
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
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let (_h, mut ps, _, p) = veth_to_pod(&pod);
    ps.add_address(&Address {
        index: p.index,
        addr: ip("10.10.0.5"),
        prefix_len: 24,
    })
    .unwrap();
    let r = Route {
        dst: None,
        gateway: Some(ip("10.10.0.1")),
        oif: p.index,
        onlink: false,
    };
    ps.add_route(&r).unwrap();
    let routes = ps.routes().unwrap();
    assert!(routes.contains(&r), "{routes:?}");
    // The prefix route of the address is listed too (no gateway).
    assert!(routes.contains(&Route {
        dst: Some((ip("10.10.0.0"), 24)),
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
        dst: Some((ip("192.168.7.0"), 24)),
        gateway: Some(ip("10.10.0.1")),
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
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let (_h, mut ps, _, p) = veth_to_pod(&pod);
    ps.add_address(&Address {
        index: p.index,
        addr: ip("10.10.0.5"),
        prefix_len: 32,
    })
    .unwrap();
    let mut r = Route {
        dst: None,
        gateway: Some(ip("169.254.1.1")),
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
    require_root!();
    common::enter_fresh_netns();
    let mut s = Socket::new().unwrap();
    s.create_veth(&veth("a0", "a1", None)).unwrap();
    let a0 = link(&mut s, "a0");
    let e = s
        .add_route(&Route {
            dst: None,
            gateway: Some(ip("169.254.1.1")),
            oif: a0.index,
            onlink: true,
        })
        .unwrap_err();
    assert_eq!(e.errno, libc::ENETDOWN, "{e}");
    assert_eq!(e.ext_ack.as_deref(), Some("Nexthop device is not up"));
}

#[test]
fn ipv6_default_route() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let (_h, mut ps, _, p) = veth_to_pod(&pod);
    ps.add_address(&Address {
        index: p.index,
        addr: ip("fd00:10::5"),
        prefix_len: 64,
    })
    .unwrap();
    let r = Route {
        dst: None,
        gateway: Some(ip("fd00:10::1")),
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
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let (_h, mut ps, _, p) = veth_to_pod(&pod);
    ps.add_address(&Address {
        index: p.index,
        addr: ip("fd00:20::5"),
        prefix_len: 128,
    })
    .unwrap();
    let onlink = Route {
        dst: None,
        gateway: Some(ip("fd00:20::1")),
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
            return Err(contrail_cni::netlink::Error::new("add", libc::EHOSTUNREACH));
        }
        s.add_route(r)
    })
    .unwrap();
    assert_eq!(asked.len(), 3, "{asked:?}");
    let routes = ps.routes().unwrap();
    assert!(routes.contains(&plain), "{routes:?}");
    let host = Route {
        dst: Some((ip("fd00:20::1"), 128)),
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
        .add_route_via(&onlink, |_, _| {
            Err(contrail_cni::netlink::Error::new("add", libc::EINVAL))
        })
        .unwrap_err();
    assert_eq!(e.errno, libc::EINVAL);
    // The running kernel takes the flagged route directly.
    ps.add_route(&onlink).unwrap();
    assert!(!ps.routes().unwrap().contains(&host));
}

#[test]
fn deleting_one_veth_end_removes_both() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let mut host = Socket::new().unwrap();
    host.create_veth(&veth("vh0", "eth0", Some(&pod))).unwrap();
    let mut ps = pod_socket(&pod);
    ps.delete_link_by_name("eth0").unwrap();
    assert!(host.link_by_name("vh0").unwrap().is_none());
    assert!(pod.link_names().is_empty());

    host.create_veth(&veth("vh1", "eth0", Some(&pod))).unwrap();
    let idx = link(&mut host, "vh1").index;
    host.delete_link(idx).unwrap();
    assert!(ps.link_by_name("eth0").unwrap().is_none());
}

#[test]
fn macvlan_on_a_veth_parent_born_in_the_pod() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let mut host = Socket::new().unwrap();
    // This kernel has no dummy links: a veth end is the parent.
    host.create_veth(&veth("p0", "p1", None)).unwrap();
    let parent = link(&mut host, "p0");
    let mac: Mac = "02:00:00:00:0c:01".parse().unwrap();
    host.create_macvlan(&MacvlanRequest {
        name: "eth0",
        parent_index: parent.index,
        mode: MacvlanMode::Vepa,
        mtu: Some(1400),
        mac: Some(mac),
        netns_fd: Some(pod.file.as_fd()),
    })
    .unwrap();
    assert!(host.link_by_name("eth0").unwrap().is_none());
    let m = link(&mut pod_socket(&pod), "eth0");
    assert_eq!(m.kind.as_deref(), Some("macvlan"));
    assert_eq!((m.mtu, m.mac), (1400, Some(mac)));
    assert!(pod
        .ip(&["-d", "link", "show", "eth0"])
        .contains("macvlan mode vepa"));
    // Deleting the lower device removes the macvlan in the other namespace.
    host.delete_link(parent.index).unwrap();
    assert!(pod.link_names().is_empty());
}

#[test]
fn duplicate_create_is_eexist() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let mut host = Socket::new().unwrap();
    host.create_veth(&veth("vh0", "eth0", Some(&pod))).unwrap();
    // Same host name.
    let e = host
        .create_veth(&veth("vh0", "eth1", Some(&pod)))
        .unwrap_err();
    assert_eq!(e.errno, libc::EEXIST, "{e}");
    // Same pod name, different host name.
    let e = host
        .create_veth(&veth("vh1", "eth0", Some(&pod)))
        .unwrap_err();
    assert_eq!(e.errno, libc::EEXIST, "{e}");
    assert_eq!(common::link_names(), vec!["vh0"]);
}

#[test]
fn missing_links_are_enodev() {
    require_root!();
    common::enter_fresh_netns();
    let mut s = Socket::new().unwrap();
    let e = s.delete_link_by_name("ghost0").unwrap_err();
    assert_eq!(e.errno, libc::ENODEV, "{e}");
    assert_eq!(s.delete_link(4242).unwrap_err().errno, libc::ENODEV);
    assert_eq!(s.set_link_up(4242, true).unwrap_err().errno, libc::ENODEV);
    assert_eq!(s.link_by_name("ghost0").unwrap(), None);
}

/// Names of 16+ bytes: our API refuses them before sending (ERANGE, like
/// the kernel), and a raw request shows the kernel's own answer.
#[test]
fn long_names_are_erange() {
    require_root!();
    common::enter_fresh_netns();
    let mut s = Socket::new().unwrap();
    let long = "abcdefghijklmnop"; // 16 bytes
    let e = s.create_veth(&veth(long, "x1", None)).unwrap_err();
    assert_eq!(e.errno, libc::ERANGE, "{e}");
    assert!(
        e.op.contains("validate"),
        "our validation, not the kernel: {e}"
    );

    // The same name sent to the kernel through the low-level API.
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
    assert!(common::link_names().is_empty());
}

#[test]
fn vlan_on_a_veth_parent() {
    require_root!();
    common::enter_fresh_netns();
    let mut s = Socket::new().unwrap();
    s.create_veth(&veth("p0", "p1", None)).unwrap();
    let parent = link(&mut s, "p0");
    let res = s.create_vlan(&VlanRequest {
        name: "p0.100",
        parent_index: parent.index,
        vlan_id: 100,
        mtu: Some(1400),
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
            assert_eq!(v.parent_index, Some(parent.index));
            assert_eq!(v.mtu, 1400);
            assert!(common::ip(&["-d", "link", "show", "p0.100"])
                .contains("vlan protocol 802.1Q id 100"));
        }
    }
}

#[test]
fn netns_open_rejects_files_and_reports_enoent() {
    require_root!();
    let dir = common::TempDir::new("netns");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let e = NetNs::open(file.to_str().unwrap()).err().unwrap();
    assert_eq!(e.errno, libc::EINVAL, "{e}");
    assert!(e.ext_ack.unwrap().contains("not a namespace file"));

    let e = NetNs::open("/proc/thread-self/ns/uts").err().unwrap();
    assert_eq!(e.errno, libc::EINVAL, "{e}");
    assert!(e.ext_ack.unwrap().contains("not a network namespace"));

    let missing = dir.path().join("gone");
    let e = NetNs::open(missing.to_str().unwrap()).err().unwrap();
    assert_eq!(e.errno, libc::ENOENT, "{e}");

    let cur = NetNs::current().unwrap();
    assert_eq!(cur.path(), "/proc/thread-self/ns/net");
    assert!(cur.fd().as_raw_fd() >= 0);

    // The caller's own namespace is refused (for the plugin: the host's).
    common::enter_fresh_netns();
    let e = NetNs::open("/proc/thread-self/ns/net").err().unwrap();
    assert_eq!(e.errno, libc::EINVAL, "{e}");
    assert!(e.to_string().contains("own network namespace"), "{e}");
    let pod = NsFd::new();
    assert!(NetNs::open(&pod.path).is_ok());
}

#[test]
fn netns_run_restores_the_namespace_on_every_path() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let before = netns_inode();
    let ns = NetNs::open(&pod.path).unwrap();
    let pod_ino = pod.file.metadata().unwrap().ino();

    let inside = ns.run(netns_inode).unwrap();
    assert_eq!(inside, pod_ino);
    assert_ne!(inside, before);
    assert_eq!(netns_inode(), before);

    // The closure's own error is passed through; we are back anyway.
    let r: Result<Result<(), String>, _> = ns.run(|| Err("boom".to_string()));
    assert_eq!(r.unwrap(), Err("boom".to_string()));
    assert_eq!(netns_inode(), before);

    // A panic unwinding through run() also restores (tests unwind).
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ns.run(|| panic!("inside")).unwrap();
    }));
    assert!(caught.is_err());
    assert_eq!(netns_inode(), before);
}

#[test]
fn netns_socket_sees_the_pod_links() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    pod.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    let before = netns_inode();
    let mut ps = NetNs::open(&pod.path).unwrap().socket().unwrap();
    assert_eq!(netns_inode(), before);
    let mut names: Vec<String> = ps.links().unwrap().into_iter().map(|l| l.name).collect();
    names.sort();
    assert_eq!(names, vec!["lo", "x0", "x1"]);
    // The host socket sees only lo.
    let host: Vec<String> = Socket::new()
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(host, vec!["lo"]);
}

#[test]
fn sysctl_accept_ra_inside_the_pod() {
    require_root!();
    common::enter_fresh_netns();
    let pod = NsFd::new();
    let (_h, _ps, _, _) = veth_to_pod(&pod);
    let ns = NetNs::open(&pod.path).unwrap();
    let path = "/proc/sys/net/ipv6/conf/eth0/accept_ra";
    let read = ns
        .run(|| {
            set_interface_sysctl(true, "eth0", "accept_ra", "0").unwrap();
            std::fs::read_to_string(path).unwrap()
        })
        .unwrap();
    assert_eq!(read.trim(), "0");
    // The host has no eth0: the same write fails here with ENOENT.
    let e = set_interface_sysctl(true, "eth0", "accept_ra", "0").unwrap_err();
    assert_eq!(e.errno, libc::ENOENT, "{e}");
    // Bad names never reach /proc.
    assert_eq!(
        set_interface_sysctl(false, "../all", "x", "1")
            .unwrap_err()
            .errno,
        libc::EINVAL
    );
    assert_eq!(
        set_interface_sysctl(false, "eth0", "../x", "1")
            .unwrap_err()
            .errno,
        libc::EINVAL
    );
}

/// 150 veth pairs (300 links) do not fit one datagram: the dump is
/// multi-part and must return every link.
#[test]
fn dumps_are_multi_part() {
    require_root!();
    common::enter_fresh_netns();
    let mut s = Socket::new().unwrap();
    for i in 0..150 {
        let (a, b) = (format!("m{i}a"), format!("m{i}b"));
        s.create_veth(&veth(&a, &b, None)).unwrap();
        let idx = link(&mut s, &a).index;
        s.set_link_alias(idx, &format!("alias-{}", i % 3)).unwrap();
    }
    assert_eq!(s.links().unwrap().len(), 301);
    assert_eq!(s.links_by_alias("alias-1").unwrap().len(), 50);
    assert_eq!(common::link_names().len(), 300);
}
