//! The plugin's naming rule for host links, and the rule that decides
//! whether a host link is the plugin's own (docs/security.md).
//!
//! A host link is named from the pod UID (the agent's VM uuid) and the
//! interface name inside the pod, so the name can be recomputed from a
//! port file's own fields: a port file whose `host-ifname` is anything else
//! is corrupt. The name alone proves nothing (anyone can create
//! `tap0123456789ab`), so every link the plugin creates also carries a
//! mark: `IFLA_IFALIAS` = `contrail-k8s-cni:<container id>`. The kernel
//! ignores an alias at creation, so links are created in the
//! [`PENDING_GROUP`] link group and marked by the next request; a link
//! still in that group without a mark is one whose creator died in
//! between.

use crate::config::VifType;
use crate::ids::{ContainerId, IfName, Uuid};

/// The link group links are created in until they carry their mark
/// (`0x63636e69`, "ccni"). Nothing else in the plugin uses groups except
/// the short-lived, random group of a batch delete.
pub const PENDING_GROUP: u32 = 0x6363_6e69;

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

fn name(s: String) -> IfName {
    // `tap` + 12 or `vlan` + 11 hex digits: always 15 valid bytes.
    IfName::parse(&s).unwrap_or_else(|_| unreachable!("{s} is a valid interface name"))
}

/// Host end of a veth: `tap` + 12 hex digits (48 bits) of a hash of the pod
/// UID and the container interface name: 15 bytes, the kernel's limit. The
/// reference kept 6 hex digits of the UID (and none at all for long
/// interface names), so pods collided.
pub fn tap_name(pod_uid: &Uuid, ifname: &IfName) -> IfName {
    name(format!(
        "tap{:012x}",
        fnv1a64(&[pod_uid.as_str(), ifname.as_str()]) >> 16
    ))
}

/// Nested mode: the VLAN link on the parent, `vlan` + 11 hex digits.
pub fn vlan_name(pod_uid: &Uuid, ifname: &IfName) -> IfName {
    name(format!(
        "vlan{:011x}",
        fnv1a64(&[pod_uid.as_str(), ifname.as_str()]) >> 20
    ))
}

/// The host link of an interface `ifname` of pod `pod_uid`.
pub fn host_name(vif: VifType, pod_uid: &Uuid, ifname: &IfName) -> IfName {
    match vif {
        VifType::Veth => tap_name(pod_uid, ifname),
        VifType::Macvlan => vlan_name(pod_uid, ifname),
    }
}

/// True for a name of the plugin's naming rule (`tap` + 12 or `vlan` + 11
/// lower-case hex digits).
pub fn follows_rule(name: &str) -> bool {
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    name.strip_prefix("tap").is_some_and(|h| hex(h, 12))
        || name.strip_prefix("vlan").is_some_and(|h| hex(h, 11))
}

/// Who a host link belongs to, from what the kernel says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Marked for this container.
    Container(ContainerId),
    /// Created by the plugin, whose run died before marking it.
    Pending,
    /// Not the plugin's (other software's, or a name outside the rule).
    Foreign,
}

/// Reads the owner of a link from its name, alias and group.
pub fn owner(name: &str, alias: Option<&str>, group: u32) -> Owner {
    if !follows_rule(name) {
        return Owner::Foreign;
    }
    match alias.filter(|a| !a.is_empty()) {
        Some(a) => ContainerId::from_mark(a).map_or(Owner::Foreign, Owner::Container),
        None if group == PENDING_GROUP => Owner::Pending,
        None => Owner::Foreign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(s: &str) -> Uuid {
        Uuid::parse(s).unwrap()
    }
    fn ifn(s: &str) -> IfName {
        IfName::parse(s).unwrap()
    }

    #[test]
    fn names_fit_ifnamsiz_and_differ_per_pod_and_interface() {
        let u = uid("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0");
        let a = tap_name(&u, &ifn("eth0"));
        assert_eq!(a.as_str().len(), 15);
        assert!(a.as_str().starts_with("tap"));
        assert_eq!(a, tap_name(&u, &ifn("eth0")), "stable");
        // The hash of names on disk must never change.
        assert_eq!(a, "tap0bf46f0e9e89");
        assert_ne!(a, tap_name(&u, &ifn("eth1")));
        let u2 = uid("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f1");
        assert_ne!(a, tap_name(&u2, &ifn("eth0")));
        let v = vlan_name(&u, &ifn("eth0"));
        assert_eq!(v.as_str().len(), 15);
        assert!(v.as_str().starts_with("vlan"));
        assert_eq!(host_name(VifType::Macvlan, &u, &ifn("eth0")), v);
        assert!(follows_rule(a.as_str()) && follows_rule(v.as_str()));
        // Part boundaries matter.
        assert_ne!(fnv1a64(&["ab", "c"]), fnv1a64(&["a", "bc"]));
    }

    #[test]
    fn names_do_not_collide_across_many_pods() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000u32 {
            let u = uid(&format!("00000000-0000-4000-8000-{i:012x}"));
            assert!(seen.insert(tap_name(&u, &ifn("eth0"))));
        }
    }

    #[test]
    fn ownership_needs_the_rule_and_the_mark() {
        let c = ContainerId::parse("abc").unwrap();
        let tap = "tap0123456789ab";
        for (name, alias, group, want) in [
            (
                tap,
                Some("contrail-k8s-cni:abc"),
                0,
                Owner::Container(c.clone()),
            ),
            (
                tap,
                Some("contrail-k8s-cni:abc"),
                PENDING_GROUP,
                Owner::Container(c.clone()),
            ),
            (tap, None, PENDING_GROUP, Owner::Pending),
            (tap, Some(""), PENDING_GROUP, Owner::Pending),
            (tap, None, 0, Owner::Foreign),
            (tap, Some("someone else"), 0, Owner::Foreign),
            (tap, Some("contrail-k8s-cni:"), 0, Owner::Foreign),
            ("eth0", Some("contrail-k8s-cni:abc"), 0, Owner::Foreign),
            ("ens3", None, PENDING_GROUP, Owner::Foreign),
            (
                "tap0123456789AB",
                Some("contrail-k8s-cni:abc"),
                0,
                Owner::Foreign,
            ),
            (
                "tap0123456789a",
                Some("contrail-k8s-cni:abc"),
                0,
                Owner::Foreign,
            ),
            (
                "vlan0123456789a",
                Some("contrail-k8s-cni:abc"),
                0,
                Owner::Container(c.clone()),
            ),
        ] {
            assert_eq!(owner(name, alias, group), want, "{name} {alias:?} {group}");
        }
    }
}
