//! Real-kernel tests of `netns` (root), and of the netlink layer through
//! a namespace. Each test moves its own thread into a fresh network
//! namespace (the "host") and creates a "pod" namespace held by an fd
//! only, so tests run in parallel and leave nothing behind. The netlink
//! layer's own real-kernel tests (links, batches, addresses, routes) are
//! unit tests in `src/netlink/kernel_tests.rs`, next to the test-only API
//! they use.

mod common;

use common::NsFd;
use contrail_cni::ids::IfName;
use contrail_cni::netlink::{set_interface_sysctl, Socket, VethRequest};
use contrail_cni::netns::NetNs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

fn netns_inode() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
}

fn n(s: &str) -> IfName {
    IfName::parse(s).unwrap()
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
    assert!(std::os::fd::AsRawFd::as_raw_fd(&cur.fd()) >= 0);

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
    let (vh0, eth0) = (n("vh0"), n("eth0"));
    Socket::new()
        .unwrap()
        .create_veth(&VethRequest {
            name: &vh0,
            mtu: None,
            mac: None,
            up: false,
            group: None,
            peer_name: &eth0,
            peer_mtu: None,
            peer_mac: None,
            peer_netns_fd: Some(pod.file.as_fd()),
        })
        .unwrap();
    let ns = NetNs::open(&pod.path).unwrap();
    let path = "/proc/sys/net/ipv6/conf/eth0/accept_ra";
    let read = ns
        .run(|| {
            set_interface_sysctl(true, &eth0, "accept_ra", "0").unwrap();
            std::fs::read_to_string(path).unwrap()
        })
        .unwrap();
    assert_eq!(read.trim(), "0");
    // The host has no eth0: the same write fails here with ENOENT.
    let e = set_interface_sysctl(true, &eth0, "accept_ra", "0").unwrap_err();
    assert_eq!(e.errno, libc::ENOENT, "{e}");
    // Bad names never reach /proc: "../all" is no IfName, bad keys are refused.
    assert!(IfName::parse("../all").is_err());
    assert_eq!(
        set_interface_sysctl(false, &eth0, "../x", "1")
            .unwrap_err()
            .errno,
        libc::EINVAL
    );
}
