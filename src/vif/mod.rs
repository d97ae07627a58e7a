//! Interface drivers: the two ways a pod interface is attached, a veth
//! pair (host end `tap…`, the agent's vRouter port) or, in nested mode, a
//! macvlan over a VLAN link of the VM's parent interface; and the one way
//! host links are removed, after checking they are the plugin's own.
//!
//! Everything goes through netlink sockets opened once per namespace; no
//! function here enters a namespace itself. Links are created in
//! [`names::PENDING_GROUP`] and marked for their container by the next
//! request (the kernel ignores an alias at creation), see [`names`].

pub mod names;

use crate::cni::error::{code, Context, Error, Result};
use crate::ids::{ContainerId, IfName, Mac};
use crate::netlink::{
    self, Link, LinkUpdate, MacvlanMode, MacvlanRequest, Socket, VethRequest, VlanRequest,
};
use crate::netns::NetNs;
use log::{info, warn};
use names::{owner, Owner, PENDING_GROUP};

/// What a host link is created for.
pub struct HostLink<'a> {
    /// The host side's name (naming rule).
    pub name: &'a IfName,
    /// The interface inside the pod.
    pub ifname: &'a IfName,
    /// The pod interface's MAC.
    pub mac: Mac,
    pub mtu: u32,
    /// Whose it is: the mark it gets.
    pub container: &'a ContainerId,
}

/// Marks a just-created host link for its container and takes it out of
/// the pending group. By index, never by name: before Linux 5.19 a
/// change naming a missing link together with a group applies to the
/// whole group (group 0 is every other link).
fn mark(host: &mut Socket, link: &Link, container: &ContainerId) -> Result<()> {
    let alias = container.mark();
    host.update_link(
        link.index,
        &LinkUpdate {
            alias: Some(&alias),
            group: Some(0),
            ..LinkUpdate::default()
        },
    )
    .with_ctx(|| format!("mark {} for container {container}", link.name))
}

fn look_up(host: &mut Socket, name: &IfName) -> Result<Link> {
    host.link_by_name(name)
        .with_ctx(|| format!("look up {name}"))?
        .ok_or_else(|| {
            Error::new(
                code::KERNEL,
                format!("link {name} vanished right after it was created"),
            )
        })
}

/// Creates a veth pair whose host end is up and whose peer is born inside
/// `pod` under its final name with the pod's MAC, MTU on both ends (one
/// request), marks the host end and turns off router advertisements on it.
/// Returns the host end. On failure nothing is left.
pub fn create_veth(host: &mut Socket, pod: &NetNs, l: &HostLink) -> Result<Link> {
    host.create_veth(&VethRequest {
        name: l.name,
        mtu: Some(l.mtu),
        mac: None,
        up: true,
        group: Some(PENDING_GROUP),
        peer_name: l.ifname,
        peer_mtu: Some(l.mtu),
        peer_mac: Some(l.mac),
        peer_netns_fd: Some(pod.fd()),
    })
    .map_err(|e| taken_in_pod(pod, l.ifname, e))
    .with_ctx(|| format!("create veth {} <-> {}", l.name, l.ifname))?;
    let finish = |host: &mut Socket| -> Result<Link> {
        let link = look_up(host, l.name)?;
        mark(host, &link, l.container)?;
        // A pod with CAP_NET_RAW must not be able to send router
        // advertisements that the host accepts (CVE-2020-10749).
        match netlink::set_interface_sysctl(true, l.name, "accept_ra", "0") {
            Ok(()) => {}
            Err(e) if e.errno == libc::ENOENT => {
                warn!(
                    "IPv6 is disabled on the host: accept_ra of {} not set",
                    l.name
                )
            }
            Err(e) => return Err(Error::from(e).context(format!("accept_ra=0 on {}", l.name))),
        }
        Ok(link)
    };
    finish(host).inspect_err(|_| delete_by_name(host, l.name))
}

/// Nested mode: removes the plugin's stale VLAN links of `vlan_id` on
/// `parent` (a missed DEL: the agent gives the id to this VMI now), creates
/// the VLAN link on `parent`, marks it, and creates the VEPA macvlan
/// inside `pod` on it. Returns the VLAN link; on failure nothing is left.
pub fn create_nested(
    host: &mut Socket,
    pod: &NetNs,
    parent: &IfName,
    vlan_id: u16,
    l: &HostLink,
) -> Result<Link> {
    let parent_link = host
        .link_by_name(parent)
        .with_ctx(|| format!("look up parent-interface {parent}"))?
        .ok_or_else(|| {
            Error::new(
                code::INVALID_CONFIG,
                format!("parent-interface {parent} does not exist"),
            )
        })?;
    remove_stale_vlans(host, parent_link.index, vlan_id)?;
    host.create_vlan(&VlanRequest {
        name: l.name,
        parent_index: parent_link.index,
        vlan_id,
        mtu: Some(l.mtu),
        up: true,
        group: Some(PENDING_GROUP),
    })
    .map_err(|e| {
        if e.errno == libc::EOPNOTSUPP {
            Error::new(
                code::KERNEL,
                format!("create VLAN {vlan_id} on {parent}: this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q)"),
            )
            .with_details(e.to_string())
        } else {
            Error::from(e).context(format!("create VLAN link {} id {vlan_id} on {parent}", l.name))
        }
    })?;
    let finish = |host: &mut Socket| -> Result<Link> {
        let link = look_up(host, l.name)?;
        mark(host, &link, l.container)?;
        create_macvlan(host, pod, link.index, l.ifname, l.mac, l.mtu)?;
        Ok(link)
    };
    finish(host).inspect_err(|_| delete_by_name(host, l.name))
}

/// The macvlan half of nested mode: a VEPA macvlan on `lower_index` (a
/// link of `host`'s namespace), born inside `pod` as `ifname` with `mac`.
pub fn create_macvlan(
    host: &mut Socket,
    pod: &NetNs,
    lower_index: u32,
    ifname: &IfName,
    mac: Mac,
    mtu: u32,
) -> Result<()> {
    host.create_macvlan(&MacvlanRequest {
        name: ifname,
        parent_index: lower_index,
        mode: MacvlanMode::Vepa,
        mtu: Some(mtu),
        mac: Some(mac),
        up: false,
        group: None,
        netns_fd: Some(pod.fd()),
    })
    .map_err(|e| taken_in_pod(pod, ifname, e))
    .with_ctx(|| format!("create macvlan {ifname} on #{lower_index} in the pod"))
}

/// A creation that failed with EEXIST because the pod already has an
/// interface called `ifname` is the caller's mistake (code 4, as CNI asks
/// for a taken `CNI_IFNAME`); any other failure stays a kernel error. Looked
/// up only after the failure: a successful ADD does not pay for the check.
fn taken_in_pod(pod: &NetNs, ifname: &IfName, e: netlink::Error) -> Error {
    if e.errno == libc::EEXIST {
        if let Ok(Some(_)) = pod.socket().and_then(|mut s| s.link_by_name(ifname)) {
            return Error::new(
                code::INVALID_ENV,
                format!("interface {ifname} already exists in {}", pod.path()),
            );
        }
    }
    Error::from(e)
}

/// Deletes the plugin's VLAN links of `vlan_id` on `parent_index`.
fn remove_stale_vlans(host: &mut Socket, parent_index: u32, vlan_id: u16) -> Result<()> {
    let stale: Vec<u32> = host
        .links()
        .ctx("list links")?
        .into_iter()
        .filter(|l| {
            l.kind.as_deref() == Some("vlan")
                && l.parent_index == Some(parent_index)
                && l.vlan_id == Some(vlan_id)
                && owner(&l.name, l.alias.as_deref(), l.group) != Owner::Foreign
        })
        .inspect(|l| {
            info!(
                "removing stale VLAN link {} ({:?}) of VLAN {vlan_id}: a missed DEL",
                l.name, l.alias
            )
        })
        .map(|l| l.index)
        .collect();
    delete(host, &stale)
}

/// Removes a link this run created a moment ago (its own rollback).
fn delete_by_name(host: &mut Socket, name: &IfName) {
    if let Ok(Some(l)) = host.link_by_name(name) {
        if let Err(e) = delete(host, &[l.index]) {
            warn!("removing {name} again: {e}");
        }
    }
}

/// Deletes host links, all in one kernel batch when there are several.
/// The caller has checked each is the plugin's own; links already gone
/// are fine.
pub fn delete(host: &mut Socket, indexes: &[u32]) -> Result<()> {
    if indexes.is_empty() {
        return Ok(());
    }
    let done = host
        .delete_links(indexes)
        .with_ctx(|| format!("delete {} host link(s)", indexes.len()))?;
    log::debug!(
        "deleted {} link(s){}, {} already gone",
        done.deleted,
        if done.batched { " in one batch" } else { "" },
        done.gone
    );
    Ok(())
}
