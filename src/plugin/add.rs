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
use crate::ids::{ContainerId, IfName, Uuid, VmName};
use crate::netlink::{Address, Mac, Route, Socket};
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
    subscribed: Option<Uuid>,
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
        finish_vm(ctx, &vm_name, self.subscribed.as_ref(), &own);
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
        ctx.notify_mesos(crate::mesos::Cmd::Add)?;
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
        if pod_sock.link_by_name(&p.ifname)?.is_some() {
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
                .post_vm(&port_request(ctx, vm_name, p)?, &ctx.deadline)
                .ctx("agent: POST /vm")?;
            undo.subscribed = Some(vm_uuid.clone());
        }
    }

    let ids: Vec<&Uuid> = plans.iter().map(|p| &p.vmi.id).collect();
    let opers = ctx.agent.poll_vm(&vm_uuid, &ids, &ctx.deadline)?;
    let mut result = CniResult::default();
    if let Some(lo) = pod_sock.link_by_name("lo")? {
        pod_sock
            .set_link_up(lo.index, true)
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
    let vm = VmName::parse(vm_name).map_err(|e| Error::new(code::INVALID_ENV, e.to_string()))?;
    let vmis = ctx.agent.poll_vm_cfg(&vm, &ctx.deadline)?;
    if let Some(uid) = &ctx.req.env.args.pod_uid {
        if let Some(stale) = vmis.iter().find(|v| v.vm_uuid.as_str() != uid) {
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
    vmis.sort_by_key(|v| v.index);
    if ctx.delegate {
        let network = ctx.delegate_network();
        // Attachments of the same network under other names in this sandbox
        // (a pod may attach one network twice) are taken already.
        let (ports, _) = ctx.store.read_ports(vm_name);
        let taken = |v: &VmiConfig| {
            ports.iter().any(|p| {
                p.port.vmi_uuid == v.id
                    && p.port.vm_id == ctx.container_id()
                    && p.port.vm_ifname.as_str() != ctx.req.env.ifname
            })
        };
        let vmi = vmis
            .into_iter()
            .find(|v| v.network.as_deref() == Some(network) && !taken(v))
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
        let index = vmi.index;
        let ifname = if index == 0 {
            ctx.req.env.ifname.clone()
        } else {
            vmi.ifname
                .as_ref()
                .map_or_else(|| format!("eth{index}"), IfName::to_string)
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
    let mac = Mac(vmi.mac.0);
    let index = vmi.index;
    let (host_name, vlan_id) = match ctx.c.vif_type {
        VifType::Veth => (vif::tap_name(vmi.vm_uuid.as_str(), &ifname), None),
        VifType::Macvlan => {
            let id = vmi.vlan_id.ok_or_else(|| {
                Error::new(
                    code::INVALID_CONFIG,
                    format!(
                        "nested mode needs a VLAN id but VMI {} has vlan-id 65535 (none: it is not a sub-interface)",
                        vmi.id
                    ),
                )
            })?;
            (vif::vlan_name(vmi.vm_uuid.as_str(), &ifname), Some(id))
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

fn port_request(ctx: &Ctx, vm_name: &str, p: &Plan) -> Result<PortRequest> {
    let env = |e: crate::ids::Invalid| Error::new(code::INVALID_ENV, e.to_string());
    Ok(PortRequest {
        vm_uuid: p.vmi.vm_uuid.clone(),
        vm_name: VmName::parse(vm_name).map_err(env)?,
        host_ifname: IfName::parse(&p.host_name).map_err(env)?,
        vn_uuid: p.vmi.vn_id.clone(),
        vmi_uuid: p.vmi.id.clone(),
        vm_id: ContainerId::parse(ctx.container_id()).map_err(env)?,
        vm_ifname: IfName::parse(&p.ifname).map_err(env)?,
        vm_namespace: ctx.req.env.netns.clone().unwrap_or_default(),
    })
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
        port: port_request(ctx, vm_name, p)?,
        vif_type: if ctx.veth() { "veth" } else { "macvlan" }.to_string(),
        pod_uid: ctx.req.env.args.pod_uid.clone().unwrap_or_default(),
        network: p.vmi.network.clone().unwrap_or_default(),
        index: p.index,
        vlan_id: p.vlan_id,
    };
    ctx.store.write_port(&pf)?;
    undo.steps.push(Undo::PortFile {
        vm_name: vm_name.to_string(),
        vmi: p.vmi.id.to_string(),
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
        .link_by_name(&p.ifname)?
        .ok_or_else(|| Error::new(code::KERNEL, format!("{} vanished from the pod", p.ifname)))?;
    let mut mac = p.mac;
    if let Some(agent_mac) = oper.mac.map(|m| Mac(m.0)) {
        if agent_mac != mac {
            pod.set_link_mac(link.index, agent_mac)
                .ctx("set the agent's MAC")?;
            mac = agent_mac;
        }
    }
    let primary = p.index == 0;
    let mut addrs: Vec<(IpAddr, u8, Option<IpAddr>)> = Vec::new();
    if let Some(net) = oper.v4 {
        addrs.push((net.addr(), net.prefix(), oper.v4_gateway));
    }
    if let Some(ip) = oper.v6 {
        // The agent sends no IPv6 prefix length: /128 with an on-link
        // gateway unless the operator configured the subnet's length.
        let plen = ctx.c.v6_prefix_len.unwrap_or(128);
        addrs.push((ip.into(), plen, oper.v6_gateway));
    }
    pod.set_link_up(link.index, true)
        .with_ctx(|| format!("set {} up", p.ifname))?;
    for (addr, plen, _) in &addrs {
        pod.add_address(&Address {
            index: link.index,
            addr: *addr,
            prefix_len: *plen,
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
    for ip in [oper.v4_dns, oper.v6_dns].into_iter().flatten() {
        let s = ip.to_string();
        if !result.dns.nameservers.contains(&s) {
            result.dns.nameservers.push(s);
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
