//! ADD: poll the agent for the pod's VMIs, create one interface per VMI in
//! the pod's namespace, register it (port file, `POST /vm`), wait for the
//! addresses, configure them and print the result. Every step records how to
//! undo it; any failure undoes everything done so far.

use super::{finish_vm, remove_attachment, remove_multus_cache_if, Ctx, Request};
use crate::agent::{PortRequest, VmiConfig, VmiOper};
use crate::cni::args::validate_ifname;
use crate::cni::error::{code, Context, Error, Result};
use crate::cni::result::{CniResult, Interface, IpConfig, RouteEntry};
use crate::config::VifType;
use crate::ids::{IfName, IpNet};
use crate::netlink::{Address, LinkUpdate, Mac, Route, Socket};
use crate::netns::NetNs;
use crate::store::{MultusCache, PortFile};
use crate::vif;
use log::{debug, info, warn};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

/// One interface to create: a VMI and the names it gets.
struct Plan {
    vmi: VmiConfig,
    index: u32,
    /// Name inside the pod.
    ifname: String,
    /// Host side: the veth's tap, or the VLAN link in nested mode.
    host_name: String,
    mac: Mac,
    vlan_id: Option<u16>,
}

/// How to undo one completed step.
enum Undo {
    HostLink(String),
    PortFile { vm_name: String, vmi: String },
}

/// The undo log of one ADD. Steps are undone in reverse order; then, once
/// the port files are gone, what depends on the files left: the VM
/// directory, the agent subscription and the Multus cache (see `finish_vm`).
#[derive(Default)]
struct Rollback {
    steps: Vec<Undo>,
    /// The VM whose directory may have been created.
    vm_name: Option<String>,
    /// The VM uuid, once a `POST /vm` succeeded.
    subscribed: Option<String>,
    /// The Multus cache this ADD wrote.
    multus_cache: bool,
}

impl Rollback {
    fn run(self, ctx: &Ctx) {
        let mut host = None;
        for undo in self.steps.into_iter().rev() {
            let res = match &undo {
                Undo::HostLink(name) => {
                    if host.is_none() {
                        host = Socket::new()
                            .map_err(|e| warn!("rollback: netlink socket: {e}"))
                            .ok();
                    }
                    match host.as_mut() {
                        Some(h) => vif::delete_link(h, name).map(|_| ()),
                        None => Ok(()),
                    }
                }
                Undo::PortFile { vm_name, vmi } => ctx.store.remove_port(vm_name, vmi),
            };
            if let Err(e) = res {
                warn!("rollback: {e}");
            }
        }
        let Some(vm_name) = self.vm_name else {
            return;
        };
        let own = |owner: &str| owner == ctx.container_id();
        finish_vm(ctx, &vm_name, self.subscribed.as_deref(), &own);
        if self.multus_cache {
            let (left, _) = ctx.store.read_ports(&vm_name);
            if !left.iter().any(|p| p.port.vm_id == ctx.container_id()) {
                remove_multus_cache_if(ctx, &vm_name, &own);
            }
        }
    }
}

pub fn add(req: &Request) -> Result<CniResult> {
    let started = Instant::now();
    let ctx = Ctx::new(req);
    let netns_path = req
        .env
        .netns
        .as_deref()
        .ok_or_else(|| Error::new(code::INVALID_ENV, "CNI_NETNS is required for ADD"))?;
    let pod = NetNs::open(netns_path)
        .map_err(|e| Error::new(code::INVALID_ENV, format!("CNI_NETNS {netns_path}: {e}")))?;
    let vm_name = ctx.vm_name()?;
    if ctx.c.mode == crate::config::Mode::Mesos {
        ctx.notify_mesos("ADD")?;
    }
    let _lock = ctx.store.lock_pod(&vm_name)?;
    info!(
        "ADD {vm_name} ifname {} ({} mode{})",
        req.env.ifname,
        if ctx.veth() { "veth" } else { "nested macvlan" },
        if ctx.delegate {
            ", Multus delegate"
        } else {
            ""
        }
    );
    let mut undo = Rollback {
        vm_name: Some(vm_name.clone()),
        ..Rollback::default()
    };
    match add_locked(&ctx, &pod, &vm_name, &mut undo) {
        Ok(result) => {
            info!("ADD {vm_name} done in {} ms", started.elapsed().as_millis());
            Ok(result)
        }
        Err(e) => {
            warn!("ADD {vm_name} failed, rolling back: {e}");
            undo.run(&ctx);
            Err(e)
        }
    }
}

fn add_locked(ctx: &Ctx, pod: &NetNs, vm_name: &str, undo: &mut Rollback) -> Result<CniResult> {
    let vmis = vm_config(ctx, vm_name, undo)?;
    let plans = plan(ctx, vm_name, vmis)?;
    let mut host = Socket::new().ctx("open netlink socket")?;
    let mut pod_sock = pod
        .socket()
        .ctx("open netlink socket in the pod namespace")?;
    clear_leftovers(ctx, &mut host, vm_name, &plans)?;
    for p in &plans {
        if pod_sock.link_by_name(&pod_ifname(&p.ifname)?)?.is_some() {
            return Err(Error::new(
                code::INVALID_ENV,
                format!("interface {} already exists in {}", p.ifname, pod.path()),
            ));
        }
    }

    let vm_uuid = plans[0].vmi.vm_uuid.clone();
    let mut host_macs = Vec::with_capacity(plans.len());
    for p in &plans {
        host_macs.push(attach(ctx, &mut host, pod, vm_name, p, undo)?);
    }
    if ctx.veth() {
        for p in &plans {
            ctx.agent
                .post_vm(&port_request(ctx, vm_name, p))
                .ctx("agent: POST /vm")?;
            undo.subscribed = Some(vm_uuid.clone());
        }
    }

    let ids: Vec<&str> = plans.iter().map(|p| p.vmi.id.as_str()).collect();
    let opers = ctx.agent.poll_vm(&vm_uuid, &ids)?;
    let mut result = CniResult::default();
    if let Some(lo) = pod_sock.link_by_name(&pod_ifname("lo")?)? {
        pod_sock
            .update_link(lo.index, &UP)
            .ctx("set lo up in the pod")?;
    }
    for ((p, oper), host_mac) in plans.iter().zip(&opers).zip(host_macs) {
        configure(
            ctx,
            &mut pod_sock,
            pod.path(),
            p,
            oper,
            host_mac,
            &mut result,
        )?;
    }
    // Our fd kept the namespace alive; if the runtime deleted it meanwhile,
    // the pod is gone and what we built must go too.
    if !pod.still_at_path() {
        return Err(Error::new(
            code::UNKNOWN_CONTAINER,
            format!(
                "the pod's network namespace {} was removed during ADD",
                pod.path()
            ),
        ));
    }
    match &ctx.req.conf.prev_result {
        Some(prev) => {
            let mut merged = CniResult::from_json(prev, &ctx.req.conf.cni_version)?;
            merged.append(result);
            Ok(merged)
        }
        None => Ok(result),
    }
}

/// The pod's VMIs from the agent. A Multus delegate first looks in the
/// cache the first delegate of the same sandbox wrote, so the agent is asked
/// once per pod; a cache of another sandbox (or pod incarnation) is ignored.
fn vm_config(ctx: &Ctx, vm_name: &str, undo: &mut Rollback) -> Result<Vec<VmiConfig>> {
    let pod_uid = ctx.req.env.args.pod_uid.clone().unwrap_or_default();
    if ctx.delegate {
        if let Some(cache) = ctx.store.read_multus_cache(vm_name) {
            if cache.container_id == ctx.container_id() && cache.pod_uid == pod_uid {
                debug!("using the Multus cache of {vm_name}");
                return Ok(cache.vmis);
            }
            info!(
                "Multus cache of {vm_name} belongs to container {}: refreshing",
                cache.container_id
            );
        }
    }
    let vmis = ctx.agent.poll_vm_cfg(vm_name)?;
    if let Some(uid) = &ctx.req.env.args.pod_uid {
        if let Some(stale) = vmis.iter().find(|v| &v.vm_uuid != uid) {
            return Err(Error::new(
                code::TRY_AGAIN_LATER,
                format!(
                    "agent at {} knows VM {vm_name} as {} but the pod UID is {uid}: a stale VM of an earlier pod with the same name",
                    ctx.agent.address(),
                    stale.vm_uuid
                ),
            ));
        }
    }
    if ctx.delegate {
        ctx.store.write_multus_cache(
            vm_name,
            &MultusCache {
                container_id: ctx.container_id().to_string(),
                pod_uid,
                vmis: vmis.clone(),
            },
        )?;
        undo.multus_cache = true;
    }
    Ok(vmis)
}

/// Decides which VMIs this call configures and the names they get.
fn plan(ctx: &Ctx, vm_name: &str, mut vmis: Vec<VmiConfig>) -> Result<Vec<Plan>> {
    vmis.sort_by_key(|v| v.annotations.index().map_or(u32::MAX, |(i, _)| i));
    if ctx.delegate {
        let network = ctx.delegate_network();
        // Attachments of the same network under other names in this sandbox
        // (a pod may attach one network twice) are taken already.
        let (ports, _) = ctx.store.read_ports(vm_name);
        let taken = |v: &VmiConfig| {
            ports.iter().any(|p| {
                p.port.vmi_uuid == v.id
                    && p.port.vm_id == ctx.container_id()
                    && p.port.vm_ifname != ctx.req.env.ifname
            })
        };
        let vmi = vmis
            .into_iter()
            .find(|v| v.annotations.network() == Some(network) && !taken(v))
            .ok_or_else(|| {
                Error::new(
                    code::INVALID_CONFIG,
                    format!(
                        "the agent has no (free) interface of pod {vm_name} on network {network:?}"
                    ),
                )
            })?;
        let ifname = ctx.req.env.ifname.clone();
        return Ok(vec![plan_one(ctx, vmi, ifname)?]);
    }
    let mut plans: Vec<Plan> = Vec::with_capacity(vmis.len());
    for vmi in vmis {
        let index = vmi.annotations.index().map_or(0, |(i, _)| i);
        let ifname = if index == 0 {
            ctx.req.env.ifname.clone()
        } else {
            vmi.annotations
                .interface()
                .map_or_else(|| format!("eth{index}"), str::to_string)
        };
        if plans.iter().any(|p| p.ifname == ifname) {
            return Err(Error::new(
                code::INVALID_CONFIG,
                format!("two interfaces of pod {vm_name} would be named {ifname}"),
            ));
        }
        plans.push(plan_one(ctx, vmi, ifname)?);
    }
    if plans.is_empty() {
        return Err(Error::new(
            code::TRY_AGAIN_LATER,
            format!("the agent listed no interface for {vm_name}"),
        ));
    }
    Ok(plans)
}

fn plan_one(ctx: &Ctx, vmi: VmiConfig, ifname: String) -> Result<Plan> {
    validate_ifname(&ifname).with_ctx(|| format!("interface name of VMI {}", vmi.id))?;
    let mac: Mac = parse_field("mac-address", &vmi.id, &vmi.mac_address)?;
    let index = vmi.annotations.index().map_or(0, |(i, _)| i);
    let (host_name, vlan_id) = match ctx.c.vif_type {
        VifType::Veth => (vif::tap_name(&vmi.vm_uuid, &ifname), None),
        VifType::Macvlan => {
            let id = u16::try_from(vmi.vlan_id)
                .ok()
                .filter(|id| (1..=4094).contains(id))
                .ok_or_else(|| {
                    Error::new(
                        code::INVALID_CONFIG,
                        format!(
                            "nested mode needs a VLAN id but VMI {} has {}{}",
                            vmi.id,
                            vmi.vlan_id,
                            if vmi.vlan_id == 65535 {
                                " (none: it is not a sub-interface)"
                            } else {
                                ""
                            }
                        ),
                    )
                })?;
            (vif::vlan_name(&vmi.vm_uuid, &ifname), Some(id))
        }
    };
    Ok(Plan {
        vmi,
        index,
        ifname,
        host_name,
        mac,
        vlan_id,
    })
}

/// A retried ADD, or the ADD of a new sandbox of the same pod, finds state
/// left behind: port files of an older sandbox (another container id; its
/// VMIs are about to be bound to our interfaces), or of our own container
/// for the VMIs we configure now (a failed or killed earlier attempt).
/// Their host links and files go first.
fn clear_leftovers(ctx: &Ctx, host: &mut Socket, vm_name: &str, plans: &[Plan]) -> Result<()> {
    let (ports, bad) = ctx.store.read_ports(vm_name);
    for pf in &ports {
        let older_sandbox = pf.port.vm_id != ctx.container_id();
        let retry = !older_sandbox && plans.iter().any(|p| p.vmi.id == pf.port.vmi_uuid);
        if older_sandbox || retry {
            info!(
                "removing leftover {} of container {} (VMI {})",
                pf.port.host_ifname, pf.port.vm_id, pf.port.vmi_uuid
            );
            remove_attachment(host, &ctx.store, pf)?;
        }
    }
    for b in &bad {
        let ours = plans
            .iter()
            .any(|p| b.path.file_name().is_some_and(|n| n == p.vmi.id.as_str()));
        if ours {
            warn!(
                "replacing unreadable port file {}: {}",
                b.path.display(),
                b.reason
            );
            ctx.store.remove_file(&b.path)?;
        }
    }
    Ok(())
}

fn port_request(ctx: &Ctx, vm_name: &str, p: &Plan) -> PortRequest {
    PortRequest {
        vm_uuid: p.vmi.vm_uuid.clone(),
        vm_name: vm_name.to_string(),
        host_ifname: p.host_name.clone(),
        vn_uuid: p.vmi.vn_id.clone(),
        vmi_uuid: p.vmi.id.clone(),
        vm_id: ctx.container_id().to_string(),
        vm_ifname: p.ifname.clone(),
        vm_namespace: ctx.req.env.netns.clone().unwrap_or_default(),
    }
}

/// Creates one interface and returns the host side's MAC (for the result).
/// The port file is written first, so that a process killed at any later
/// point leaves state a DEL or a retried ADD can find and remove.
fn attach(
    ctx: &Ctx,
    host: &mut Socket,
    pod: &NetNs,
    vm_name: &str,
    p: &Plan,
    undo: &mut Rollback,
) -> Result<Option<Mac>> {
    let pf = PortFile {
        port: port_request(ctx, vm_name, p),
        vif_type: if ctx.veth() { "veth" } else { "macvlan" }.to_string(),
        pod_uid: ctx.req.env.args.pod_uid.clone().unwrap_or_default(),
        network: p.vmi.annotations.network().unwrap_or_default().to_string(),
        index: p.index,
        vlan_id: p.vlan_id,
    };
    ctx.store.write_port(&pf)?;
    undo.steps.push(Undo::PortFile {
        vm_name: vm_name.to_string(),
        vmi: p.vmi.id.clone(),
    });
    let mtu = ctx.c.mtu;
    let host_link = match p.vlan_id {
        None => vif::create_veth(host, pod, &p.host_name, &p.ifname, p.mac, mtu)?,
        Some(id) => vif::create_macvlan_over_vlan(
            host,
            pod,
            &ctx.c.parent_interface,
            &p.host_name,
            id,
            &p.ifname,
            p.mac,
            mtu,
        )?,
    };
    undo.steps.push(Undo::HostLink(p.host_name.clone()));
    debug!(
        "created {} <-> {} for VMI {}",
        p.host_name, p.ifname, p.vmi.id
    );
    Ok(host_link.mac)
}

/// IFF_UP on, nothing else changed.
const UP: LinkUpdate = LinkUpdate {
    up: Some(true),
    mtu: None,
    mac: None,
    alias: None,
    group: None,
};

/// A pod interface name (already validated as CNI_IFNAME or from the
/// agent) as the netlink layer's [`IfName`].
fn pod_ifname(name: &str) -> Result<IfName> {
    IfName::parse(name).map_err(|e| Error::new(code::INVALID_ENV, e.to_string()))
}

fn parse_field<T: std::str::FromStr>(field: &str, vmi: &str, s: &str) -> Result<T> {
    s.parse().map_err(|_| {
        Error::new(
            code::AGENT,
            format!("agent sent VMI {vmi} with invalid {field} {s:?}"),
        )
    })
}

/// An address the agent reports, None when absent or unspecified (the agent
/// sends 0.0.0.0 for "no gateway / no DNS").
fn opt_ip<T: std::str::FromStr + Into<IpAddr> + Copy>(
    field: &str,
    vmi: &str,
    s: &Option<String>,
) -> Result<Option<T>> {
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => {
            let ip: T = parse_field(field, vmi, v)?;
            Ok(Some(ip).filter(|ip| !(*ip).into().is_unspecified()))
        }
    }
}

/// Configures one pod interface from the agent's answer (MAC, addresses,
/// routes on the primary interface, link up) and adds it to `result`.
fn configure(
    ctx: &Ctx,
    pod: &mut Socket,
    netns_path: &str,
    p: &Plan,
    oper: &VmiOper,
    host_mac: Option<Mac>,
    result: &mut CniResult,
) -> Result<()> {
    let vmi = oper.id.as_str();
    let link = pod
        .link_by_name(&pod_ifname(&p.ifname)?)?
        .ok_or_else(|| Error::new(code::KERNEL, format!("{} vanished from the pod", p.ifname)))?;
    let mut mac = p.mac;
    if !oper.mac_address.is_empty() {
        let agent_mac: Mac = parse_field("mac-address", vmi, &oper.mac_address)?;
        if agent_mac != mac {
            let set_mac = LinkUpdate {
                mac: Some(agent_mac),
                ..LinkUpdate::default()
            };
            pod.update_link(link.index, &set_mac)
                .ctx("set the agent's MAC")?;
            mac = agent_mac;
        }
    }
    let primary = p.index == 0;
    let v4: Option<Ipv4Addr> = opt_ip("ip-address", vmi, &oper.ip_address)?;
    let v6: Option<Ipv6Addr> = opt_ip("v6-ip-address", vmi, &oper.v6_ip_address)?;
    let mut addrs: Vec<(IpAddr, u8, Option<IpAddr>)> = Vec::new();
    if let Some(ip) = v4 {
        let plen = oper.plen.filter(|l| *l <= 32).ok_or_else(|| {
            Error::new(
                code::AGENT,
                format!("agent sent VMI {vmi} without a valid plen"),
            )
        })?;
        let gw: Option<Ipv4Addr> = opt_ip("gateway", vmi, &oper.gateway)?;
        addrs.push((ip.into(), plen, gw.map(Into::into)));
    }
    if let Some(ip) = v6 {
        // The agent sends no IPv6 prefix length: /128 with an on-link
        // gateway unless the operator configured the subnet's length.
        let plen = ctx.c.v6_prefix_len.unwrap_or(128);
        let gw: Option<Ipv6Addr> = opt_ip("v6-gateway", vmi, &oper.v6_gateway)?;
        addrs.push((ip.into(), plen, gw.map(Into::into)));
    }
    pod.update_link(link.index, &UP)
        .with_ctx(|| format!("set {} up", p.ifname))?;
    for (addr, plen, _) in &addrs {
        let net = IpNet::new(*addr, *plen).ok_or_else(|| {
            Error::new(
                code::AGENT,
                format!("agent sent VMI {vmi} with prefix length {plen} for {addr}"),
            )
        })?;
        pod.add_address(&Address {
            index: link.index,
            net,
        })
        .with_ctx(|| format!("add {addr}/{plen} to {}", p.ifname))?;
    }

    result.interfaces.push(Interface {
        name: p.host_name.clone(),
        mac: host_mac.map(|m| m.to_string()),
        mtu: Some(ctx.c.mtu),
        sandbox: None,
    });
    let ifindex = result.interfaces.len();
    result.interfaces.push(Interface {
        name: p.ifname.clone(),
        mac: Some(mac.to_string()),
        mtu: Some(ctx.c.mtu),
        sandbox: Some(netns_path.to_string()),
    });
    for (addr, plen, gw) in &addrs {
        result.ips.push(IpConfig {
            address: *addr,
            prefix_len: *plen,
            gateway: *gw,
            interface: Some(ifindex),
        });
        if let (true, Some(gw)) = (primary, gw) {
            pod.add_route(&Route {
                dst: None,
                gateway: Some(*gw),
                oif: link.index,
                onlink: true,
            })
            .with_ctx(|| format!("add default route via {gw} on {}", p.ifname))?;
            let any: IpAddr = if gw.is_ipv4() {
                Ipv4Addr::UNSPECIFIED.into()
            } else {
                Ipv6Addr::UNSPECIFIED.into()
            };
            result.routes.push(RouteEntry {
                dst: any,
                dst_len: 0,
                gw: Some(*gw),
            });
        }
    }
    for dns in [&oper.dns_server, &oper.v6_dns_server] {
        if let Some(ip) = opt_ip::<IpAddr>("dns-server", vmi, dns)? {
            let s = ip.to_string();
            if !result.dns.nameservers.contains(&s) {
                result.dns.nameservers.push(s);
            }
        }
    }
    info!(
        "configured {} (VMI {vmi}): {}",
        p.ifname,
        addrs
            .iter()
            .map(|(a, l, _)| format!("{a}/{l}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
