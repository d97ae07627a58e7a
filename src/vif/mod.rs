//! Interface drivers: the host-side names and the two ways a pod interface
//! is attached: a veth pair (host end `tap…`, the agent's vRouter port) or,
//! in nested mode, a macvlan over a VLAN sub-interface of the VM's parent.
//!
//! Everything here goes through netlink sockets opened once per namespace;
//! no function enters a namespace itself.

use crate::cni::error::{code, Context, Error, Result};
use crate::ids::IfName;
use crate::netlink::{
    self, Link, LinkUpdate, Mac, MacvlanMode, MacvlanRequest, Socket, VethRequest, VlanRequest,
};
use crate::netns::NetNs;
use log::{info, warn};

/// The ifalias every nested-mode VLAN link carries, keyed by VLAN id, so a
/// later ADD can find and remove the leftover of a missed DEL.
pub fn vlan_alias(vlan_id: u16) -> String {
    format!("contrail-k8s-cni-vlan-{vlan_id}")
}

/// 64-bit FNV-1a over the parts, separated by a NUL so ("ab","c") and
/// ("a","bc") differ. Stable across versions: names on disk depend on it.
fn fnv1a64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A NUL byte between parts: XOR with 0, then the multiply.
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Host end of a veth: `tap` + 12 hex digits (48 bits) of a hash of the pod
/// UID and the container interface name: 15 bytes, the kernel's limit. The
/// reference kept 6 hex digits of the UID (and none at all for long
/// interface names), so pods collided.
pub fn tap_name(pod_uid: &str, ifname: &str) -> String {
    format!("tap{:012x}", fnv1a64(&[pod_uid, ifname]) >> 16)
}

/// Nested mode: the VLAN link on the parent, `vlan` + 11 hex digits.
pub fn vlan_name(pod_uid: &str, ifname: &str) -> String {
    format!("vlan{:011x}", fnv1a64(&[pod_uid, ifname]) >> 20)
}

/// A name from our own code or a validated config as the netlink layer's
/// [`IfName`] (a bad one is error 7 naming it).
fn ifname(name: &str) -> Result<IfName> {
    IfName::parse(name).map_err(|e| Error::new(code::INVALID_CONFIG, e.to_string()))
}

fn link_named(sock: &mut Socket, name: &str) -> Result<Link> {
    sock.link_by_name(&ifname(name)?)
        .with_ctx(|| format!("look up {name}"))?
        .ok_or_else(|| {
            Error::new(
                code::KERNEL,
                format!("link {name} vanished right after it was created"),
            )
        })
}

/// Creates a veth pair whose peer is born inside `pod` under its final name
/// `ifname` with `mac`, `mtu` on both ends (one netlink request), brings the
/// host end up and turns off router advertisements on it. Returns the host
/// end. On failure after the pair exists, it is deleted again.
pub fn create_veth(
    host: &mut Socket,
    pod: &NetNs,
    host_name: &str,
    ifname: &str,
    mac: Mac,
    mtu: u32,
) -> Result<Link> {
    let (host_if, pod_if) = (self::ifname(host_name)?, self::ifname(ifname)?);
    // SAFETY: the fd stays open while `pod` lives, which outlasts the call.
    let pod_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(pod.fd()) };
    host.create_veth(&VethRequest {
        name: &host_if,
        mtu: Some(mtu),
        mac: None,
        up: false,
        group: None,
        peer_name: &pod_if,
        peer_mtu: Some(mtu),
        peer_mac: Some(mac),
        peer_netns_fd: Some(pod_fd),
    })
    .with_ctx(|| format!("create veth {host_name} <-> {ifname}"))?;
    let finish = |host: &mut Socket| -> Result<Link> {
        let link = link_named(host, host_name)?;
        let up = LinkUpdate {
            up: Some(true),
            ..LinkUpdate::default()
        };
        host.update_link(link.index, &up)
            .with_ctx(|| format!("set {host_name} up"))?;
        // A pod with CAP_NET_RAW must not be able to send router
        // advertisements that the host accepts (CVE-2020-10749).
        match netlink::set_interface_sysctl(true, &host_if, "accept_ra", "0") {
            Ok(()) => {}
            Err(e) if e.errno == libc::ENOENT => {
                warn!("IPv6 is disabled on the host: accept_ra of {host_name} not set")
            }
            Err(e) => return Err(Error::from(e).context(format!("accept_ra=0 on {host_name}"))),
        }
        Ok(link)
    };
    finish(host).inspect_err(|_| {
        let _ = delete_link(host, host_name);
    })
}

/// Creates the macvlan half of nested mode: a VEPA macvlan on `lower_index`
/// (a link of `host`'s namespace), born inside `pod` as `ifname` with `mac`.
pub fn create_macvlan(
    host: &mut Socket,
    pod: &NetNs,
    lower_index: u32,
    ifname: &str,
    mac: Mac,
    mtu: u32,
) -> Result<()> {
    let pod_if = self::ifname(ifname)?;
    // SAFETY: the fd stays open while `pod` lives, which outlasts the call.
    let pod_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(pod.fd()) };
    host.create_macvlan(&MacvlanRequest {
        name: &pod_if,
        parent_index: lower_index,
        mode: MacvlanMode::Vepa,
        mtu: Some(mtu),
        mac: Some(mac),
        up: false,
        group: None,
        netns_fd: Some(pod_fd),
    })
    .with_ctx(|| format!("create macvlan {ifname} on ifindex {lower_index} in the pod"))
}

/// Nested mode: removes leftovers carrying this VLAN id's alias (a missed
/// DEL), creates the VLAN link `vlan_link` on `parent`, tags it, brings it
/// up and creates the macvlan `ifname` on it inside `pod`. Returns the VLAN
/// link; on failure nothing is left.
#[allow(clippy::too_many_arguments)]
pub fn create_macvlan_over_vlan(
    host: &mut Socket,
    pod: &NetNs,
    parent: &str,
    vlan_link: &str,
    vlan_id: u16,
    ifname: &str,
    mac: Mac,
    mtu: u32,
) -> Result<Link> {
    let alias = vlan_alias(vlan_id);
    for stale in host
        .links_by_alias(&alias)
        .ctx("list VLAN links by alias")?
    {
        info!(
            "removing stale VLAN link {} (alias {alias}) left by a missed DEL",
            stale.name
        );
        delete_link(host, &stale.name)?;
    }
    let parent_link = host
        .link_by_name(&self::ifname(parent)?)
        .with_ctx(|| format!("look up parent-interface {parent}"))?
        .ok_or_else(|| {
            Error::new(
                code::INVALID_CONFIG,
                format!("parent-interface {parent} does not exist"),
            )
        })?;
    if let Err(e) = host.create_vlan(&VlanRequest {
        name: &self::ifname(vlan_link)?,
        parent_index: parent_link.index,
        vlan_id,
        mtu: Some(mtu),
        up: false,
        group: None,
    }) {
        if e.errno == libc::EOPNOTSUPP {
            return Err(Error::new(
                code::KERNEL,
                format!("create VLAN {vlan_id} on {parent}: this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q)"),
            )
            .with_details(e.to_string()));
        }
        return Err(Error::from(e).context(format!(
            "create VLAN link {vlan_link} id {vlan_id} on {parent}"
        )));
    }
    let finish = |host: &mut Socket| -> Result<Link> {
        let link = link_named(host, vlan_link)?;
        let tag_up = LinkUpdate {
            up: Some(true),
            alias: Some(&alias),
            ..LinkUpdate::default()
        };
        host.update_link(link.index, &tag_up)
            .with_ctx(|| format!("set alias of {vlan_link} and bring it up"))?;
        create_macvlan(host, pod, link.index, ifname, mac, mtu)?;
        Ok(link)
    };
    finish(host).inspect_err(|_| {
        let _ = delete_link(host, vlan_link);
    })
}

/// Deletes a host link by name. Returns false when it was already gone.
pub fn delete_link(host: &mut Socket, name: &str) -> Result<bool> {
    match host.delete_link_by_name(&ifname(name)?) {
        Ok(()) => Ok(true),
        Err(e) if e.errno == libc::ENODEV => Ok(false),
        Err(e) => Err(Error::from(e).context(format!("delete link {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_differ_per_pod_and_interface() {
        let uid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
        let a = tap_name(uid, "eth0");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("tap"));
        assert_eq!(a, tap_name(uid, "eth0"), "stable");
        assert_ne!(a, tap_name(uid, "eth1"));
        assert_ne!(a, tap_name("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f1", "eth0"));
        // The reference's names collided for long interface names.
        assert_ne!(
            tap_name(uid, "a-very-long-if"),
            tap_name("other", "a-very-long-if")
        );
        let v = vlan_name(uid, "eth0");
        assert_eq!(v.len(), 15);
        assert!(v.starts_with("vlan"));
        // Part boundaries matter.
        assert_ne!(fnv1a64(&["ab", "c"]), fnv1a64(&["a", "bc"]));
    }

    #[test]
    fn names_do_not_collide_across_many_pods() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            assert!(seen.insert(tap_name(&format!("pod-{i}"), "eth0")));
        }
    }

    #[test]
    fn alias_names_the_vlan() {
        assert_eq!(vlan_alias(100), "contrail-k8s-cni-vlan-100");
    }
}
