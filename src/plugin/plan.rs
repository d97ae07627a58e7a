//! The decisions of every command, as pure functions of what was already
//! read (the request, the agent's answer, the port files, the links): which
//! VMIs an ADD configures and the names they get, which leftovers go first,
//! which port files a DEL or GC removes, which links are the plugin's to
//! delete, how the agent's addresses become the pod's. Nothing here does
//! I/O, so every rule is table-tested without root.

use crate::agent::{VmiConfig, VmiOper};
use crate::cni::error::{code, Error, Result};
use crate::config::VifType;
use crate::ids::{ContainerId, IfName, IpNet, Mac, Uuid, VmName};
use crate::store::{BadFile, PortFile, Ports};
use crate::vif::names::{host_name, owner, Owner};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The plugin's own type; as a delegate's network name it means "default".
pub use crate::config::PLUGIN_TYPE;

/// One interface an ADD creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attach {
    pub vmi: VmiConfig,
    /// Its name inside the pod.
    pub ifname: IfName,
    /// The host side: the veth's tap, or the VLAN link in nested mode.
    pub host: IfName,
    /// Nested mode: the VLAN id.
    pub vlan_id: Option<u16>,
}

impl Attach {
    /// The pod's default network: its interface carries the default routes.
    pub fn primary(&self) -> bool {
        self.vmi.index == 0
    }
}

/// What an ADD does, in order: remove the leftovers, then create `attach`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddPlan {
    pub attach: Vec<Attach>,
    /// Port files (and their links) of an older sandbox of the pod, or of
    /// an earlier, failed attempt of this container for the same VMIs.
    pub leftovers: Vec<PortFile>,
    /// Unreadable files in the VMI names this ADD is about to write.
    pub bad: Vec<BadFile>,
}

/// What an ADD knows before it decides.
pub struct AddInput<'a> {
    pub container: &'a ContainerId,
    /// `CNI_IFNAME`.
    pub ifname: &'a IfName,
    pub vif: VifType,
    /// Delegate mode: the network this call configures.
    pub delegate: Option<&'a str>,
    /// `K8S_POD_UID`, when the runtime sent it.
    pub pod_uid: Option<&'a Uuid>,
    pub vm: &'a VmName,
    /// The agent's VMIs of the pod, validated and sorted by index.
    pub vmis: &'a [VmiConfig],
    /// The pod's port files now.
    pub ports: &'a Ports,
}

/// The network a Multus delegate configures: the config's `name`, where
/// the plugin's own name means the cluster's default network.
pub fn delegate_network(name: &str) -> &str {
    if name == PLUGIN_TYPE {
        "default"
    } else {
        name
    }
}

/// Delegate mode: forced by the `delegate` key, else detected from the
/// parent process's name (`comm`, cut at 15 bytes by the kernel): thin
/// Multus runs delegates as `<meta-plugin>`, thick Multus as
/// `<meta-plugin>-daemon`.
pub fn is_delegate(forced: Option<bool>, parent_comm: &str, meta_plugin: &str) -> bool {
    forced.unwrap_or_else(|| called_by(parent_comm, meta_plugin))
}

/// True when `parent_comm` is the meta plugin (thin or thick).
pub fn called_by(parent_comm: &str, meta_plugin: &str) -> bool {
    fn cut(s: &str) -> &str {
        let mut end = s.len().min(15);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        &s[..end]
    }
    !parent_comm.is_empty()
        && !meta_plugin.is_empty()
        && (parent_comm == cut(meta_plugin) || parent_comm == cut(&format!("{meta_plugin}-daemon")))
}

/// Decides an ADD. Errors: the agent's VM is not the pod's (code 11: a
/// stale VM of an earlier pod of the same name), the delegate's network
/// has no free VMI (7), two interfaces would share a name (7), nested
/// mode without a VLAN id (7), an empty list (11).
pub fn plan_add(inp: &AddInput) -> Result<AddPlan> {
    if let (Some(uid), Some(stale)) = (
        inp.pod_uid,
        inp.pod_uid
            .and_then(|uid| inp.vmis.iter().find(|v| v.vm_uuid != *uid)),
    ) {
        return Err(Error::new(
            code::TRY_AGAIN_LATER,
            format!(
                "the agent knows VM {} as {} but the pod UID is {uid}: a stale VM of an earlier pod with the same name",
                inp.vm, stale.vm_uuid
            ),
        ));
    }
    let chosen: Vec<(&VmiConfig, IfName)> = match inp.delegate {
        Some(network) => vec![(delegate_vmi(inp, network)?, inp.ifname.clone())],
        None => inp
            .vmis
            .iter()
            .map(|v| (v, standalone_ifname(v, inp.ifname)))
            .collect(),
    };
    if chosen.is_empty() {
        return Err(Error::new(
            code::TRY_AGAIN_LATER,
            format!("the agent listed no interface for {}", inp.vm),
        ));
    }
    let mut attach: Vec<Attach> = Vec::with_capacity(chosen.len());
    for (vmi, ifname) in chosen {
        if attach.iter().any(|a| a.ifname == ifname) {
            return Err(Error::new(
                code::INVALID_CONFIG,
                format!("two interfaces of pod {} would be named {ifname}", inp.vm),
            ));
        }
        attach.push(attach_one(inp.vif, vmi, ifname)?);
    }
    let ours = |vmi: &Uuid| attach.iter().any(|a| a.vmi.id == *vmi);
    let leftovers = inp
        .ports
        .good
        .iter()
        .filter(|p| p.port.vm_id != *inp.container || ours(&p.port.vmi_uuid))
        .cloned()
        .collect();
    let bad = inp
        .ports
        .bad
        .iter()
        .filter(|b| b.vmi().is_some_and(|v| ours(&v)))
        .cloned()
        .collect();
    Ok(AddPlan {
        attach,
        leftovers,
        bad,
    })
}

/// The VMI a delegate call configures: the first of its network not taken
/// by another attachment of the same sandbox (a pod may attach one network
/// twice, under two names).
fn delegate_vmi<'v>(inp: &AddInput<'v>, network: &str) -> Result<&'v VmiConfig> {
    let taken = |v: &VmiConfig| {
        inp.ports.good.iter().any(|p| {
            p.port.vmi_uuid == v.id
                && p.port.vm_id == *inp.container
                && p.port.vm_ifname != *inp.ifname
        })
    };
    inp.vmis
        .iter()
        .find(|v| v.network.as_deref() == Some(network) && !taken(v))
        .ok_or_else(|| {
            Error::new(
                code::INVALID_CONFIG,
                format!(
                    "the agent has no (free) interface of pod {} on network {network:?}",
                    inp.vm
                ),
            )
        })
}

/// Standalone names: `CNI_IFNAME` for the default network (index 0), else
/// the `interface` annotation, else `eth<index>`.
fn standalone_ifname(v: &VmiConfig, cni_ifname: &IfName) -> IfName {
    if v.index == 0 {
        return cni_ifname.clone();
    }
    v.ifname.clone().unwrap_or_else(|| {
        // `eth` + a u32 is at most 13 bytes of a valid name.
        IfName::parse(&format!("eth{}", v.index)).unwrap_or_else(|_| cni_ifname.clone())
    })
}

fn attach_one(vif: VifType, vmi: &VmiConfig, ifname: IfName) -> Result<Attach> {
    let vlan_id = match vif {
        VifType::Veth => None,
        VifType::Macvlan => Some(
            vmi.vlan_id
                .filter(|id| (1..=4094).contains(id))
                .ok_or_else(|| {
                    Error::new(
                        code::INVALID_CONFIG,
                        format!(
                            "nested mode needs a VLAN id but VMI {} has none \
                             (vlan-id 65535: it is not a sub-interface)",
                            vmi.id
                        ),
                    )
                })?,
        ),
    };
    Ok(Attach {
        host: host_name(vif, &vmi.vm_uuid, &ifname),
        vmi: vmi.clone(),
        ifname,
        vlan_id,
    })
}

/// What a DEL removes of one VM directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DelPlan<'p> {
    /// This call's attachments.
    pub ours: Vec<&'p PortFile>,
    /// Other containers with state here (a newer sandbox of the pod).
    pub others: Vec<&'p ContainerId>,
    /// Unreadable entries that go too: only when no other container has
    /// state here (they cannot say whose they are) and not in delegate
    /// mode (another delegate of this sandbox may own them).
    pub bad: Vec<&'p BadFile>,
}

/// Decides a DEL of `container`'s attachments: all of them, or in
/// delegate mode only the one named `delegate_ifname`.
pub fn plan_del<'p>(
    ports: &'p Ports,
    container: &ContainerId,
    delegate_ifname: Option<&IfName>,
) -> DelPlan<'p> {
    let ours: Vec<&PortFile> = ports
        .good
        .iter()
        .filter(|p| {
            p.port.vm_id == *container && delegate_ifname.is_none_or(|i| p.port.vm_ifname == *i)
        })
        .collect();
    let mut others: Vec<&ContainerId> = ports
        .good
        .iter()
        .map(|p| &p.port.vm_id)
        .filter(|c| *c != container)
        .collect();
    others.dedup();
    let bad = if others.is_empty() && delegate_ifname.is_none() {
        ports.bad.iter().collect()
    } else {
        Vec::new()
    };
    DelPlan { ours, others, bad }
}

/// Decides a GC of one VM directory: the attachments of containers not in
/// `keep`, and the unreadable entries when nothing valid is left.
pub fn plan_gc<'p>(ports: &'p Ports, keep: &HashSet<&ContainerId>) -> DelPlan<'p> {
    let ours: Vec<&PortFile> = ports
        .good
        .iter()
        .filter(|p| !keep.contains(&p.port.vm_id))
        .collect();
    let bad = if ours.len() == ports.good.len() {
        ports.bad.iter().collect()
    } else {
        Vec::new()
    };
    DelPlan {
        ours,
        others: Vec::new(),
        bad,
    }
}

/// May the plugin delete the host link of port file `pf`, which the kernel
/// describes by `alias` and `group`? Only when the port file (already
/// checked to name a link of the naming rule) and the link's mark name the
/// same container, or the link is pending its mark (its creator died; the
/// port file, written before the link, is then its only record, and the
/// pod's lock keeps anyone else from creating one under that name).
pub fn may_delete(pf: &PortFile, alias: Option<&str>, group: u32) -> bool {
    match owner(pf.port.host_ifname.as_str(), alias, group) {
        Owner::Container(c) => c == pf.port.vm_id,
        Owner::Pending => true,
        Owner::Foreign => false,
    }
}

/// The pod side of one interface, decoded from the agent's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodAddrs {
    /// The MAC the interface must carry.
    pub mac: Mac,
    /// Addresses with their gateways.
    pub addrs: Vec<(IpNet, Option<IpAddr>)>,
    pub dns: Vec<IpAddr>,
}

/// Decodes one VMI's operational answer: the agent's MAC when it sends
/// one (else the config's), the IPv4 address with its prefix, the IPv6
/// address with `v6_prefix_len` (128 when unset: the agent sends none),
/// each checked to be a unicast host address, their gateways and DNS.
pub fn pod_addrs(a: &Attach, oper: &VmiOper, v6_prefix_len: Option<u8>) -> Result<PodAddrs> {
    let bad = |e: crate::ids::Invalid| {
        Error::new(code::AGENT, format!("agent sent VMI {} with {e}", a.vmi.id))
    };
    let mut addrs = Vec::new();
    if let Some(v4) = oper.v4 {
        addrs.push((v4.check_host().map_err(bad)?, oper.v4_gateway));
    }
    if let Some(v6) = oper.v6 {
        let net = IpNet::new(IpAddr::V6(v6), v6_prefix_len.unwrap_or(128))
            .ok_or_else(|| Error::new(code::INVALID_CONFIG, "v6-prefix-len is longer than 128"))?;
        addrs.push((net.check_host().map_err(bad)?, oper.v6_gateway));
    }
    let mut dns: Vec<IpAddr> = Vec::new();
    for d in [oper.v4_dns, oper.v6_dns].into_iter().flatten() {
        if !dns.contains(&d) {
            dns.push(d);
        }
    }
    Ok(PodAddrs {
        mac: oper.mac.unwrap_or(a.vmi.mac),
        addrs,
        dns,
    })
}

/// The default route of a gateway's family.
pub fn default_dst(gw: &IpAddr) -> IpAddr {
    match gw {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

#[cfg(test)]
mod tests;
