//! ADD: poll the agent for the pod's VMIs, decide the plan, create one
//! interface per VMI in the pod's namespace, register it (port file, `POST
//! /vm`), wait for the addresses, configure them and print the result.
//! Every step records how to undo it; any failure undoes everything done so
//! far. All of it runs against one deadline: `poll-timeout` x
//! `poll-retries` plus [`super::ADD_MARGIN`].

use super::plan::{self, AddInput, Attach, PodAddrs};
use super::{finish_vm, remove_multus_cache_if, teardown, Ctx, Request, ADD_MARGIN};
use crate::agent::{PortRequest, VmiConfig, VmiOper};
use crate::cni::error::{code, Context, Error, Result};
use crate::cni::result::{CniResult, Interface, IpConfig, RouteEntry};
use crate::config::{Mode, VifType};
use crate::ids::{IfName, Mac, Uuid, VmName};
use crate::netlink::{Address, LinkUpdate, Route, Socket};
use crate::netns::NetNs;
use crate::store::{MultusCache, PortFile};
use crate::vif::{self, HostLink};
use log::{debug, info, warn};
use std::time::Instant;

/// The undo log of one ADD: the attachments whose port file was written
/// (their links may exist), then what depends on the files: the VM
/// directory, the agent subscription and the Multus cache.
struct Rollback {
    vm: VmName,
    attachments: Vec<PortFile>,
    /// The VM uuid, once a `POST /vm` succeeded.
    subscribed: Option<Uuid>,
    /// This ADD wrote the Multus cache.
    multus_cache: bool,
}

impl Rollback {
    fn run(self, ctx: &Ctx) {
        let Ok(t) = ctx.target() else { return };
        match Socket::new() {
            Ok(mut host) => {
                let ports: Vec<&PortFile> = self.attachments.iter().rev().collect();
                for e in teardown::remove(&mut host, &ctx.store, &ports, &[]) {
                    warn!("rollback: {e}");
                }
            }
            Err(e) => warn!("rollback: netlink socket: {e}"),
        }
        let own = |owner: &crate::ids::ContainerId| *owner == t.container_id;
        let sub = self.subscribed.as_ref().map(super::Subscription::Ours);
        finish_vm(ctx, &self.vm, sub, &own);
        if self.multus_cache {
            let left = ctx.store.read_ports(&self.vm);
            if !left.good.iter().any(|p| p.port.vm_id == t.container_id) {
                remove_multus_cache_if(&ctx.store, &self.vm, &own);
            }
        }
    }
}

/// One interface created: what was planned, what was registered, the host
/// side's MAC for the result and, for a veth, the pod side's ifindex (the
/// host end's IFLA_LINK), so that configuring it needs no lookup.
struct Attached<'p> {
    plan: &'p Attach,
    port: PortRequest,
    host_mac: Option<Mac>,
    pod_index: Option<u32>,
}

pub fn add(req: &Request) -> Result<CniResult> {
    let started = Instant::now();
    let ctx = Ctx::new(req, req.conf.contrail.poll_budget() + ADD_MARGIN);
    let t = ctx.target()?;
    let netns = t
        .netns
        .as_deref()
        .ok_or_else(|| Error::new(code::INVALID_ENV, "CNI_NETNS is required for ADD"))?;
    let pod = NetNs::open(netns)
        .map_err(|e| Error::new(code::INVALID_ENV, format!("CNI_NETNS {netns}: {e}")))?;
    let vm = ctx.vm_name()?;
    let delegate = ctx.delegate_network();
    if ctx.c.mode == Mode::Mesos {
        ctx.notify_mesos(crate::mesos::Cmd::Add)?;
    }
    let lock = ctx.lock(&vm)?;
    info!(
        "ADD {vm} ifname {} ({}{})",
        t.ifname,
        match ctx.c.vif_type {
            VifType::Veth => "veth",
            VifType::Macvlan => "nested macvlan",
        },
        delegate.map_or(String::new(), |n| format!(
            ", Multus delegate of network {n}"
        ))
    );
    let mut undo = Rollback {
        vm: vm.clone(),
        attachments: Vec::new(),
        subscribed: None,
        multus_cache: false,
    };
    // Success is logged once, by main ("ADD ok in ... ms").
    match add_locked(&ctx, &pod, &vm, delegate, &mut undo) {
        Ok(result) => {
            debug!("ADD {vm} done in {} us", started.elapsed().as_micros());
            Ok(result)
        }
        Err(e) => {
            warn!("ADD {vm} failed, rolling back: {e}");
            undo.run(&ctx);
            lock.finish(&ctx.store);
            Err(e)
        }
    }
}

/// Logs how long a step took, at debug.
fn step<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = Instant::now();
    let r = f();
    debug!("step {what}: {} us", t.elapsed().as_micros());
    r
}

fn add_locked(
    ctx: &Ctx,
    pod: &NetNs,
    vm: &VmName,
    delegate: Option<&str>,
    undo: &mut Rollback,
) -> Result<CniResult> {
    let t = ctx.target()?;
    let (vmis, cached) = step("vm-cfg", || vm_config(ctx, vm, delegate.is_some()))?;
    let ports = ctx.store.read_ports(vm);
    let plan = plan::plan_add(&AddInput {
        container: &t.container_id,
        ifname: &t.ifname,
        vif: ctx.c.vif_type,
        delegate,
        pod_uid: t.args.pod_uid.as_ref(),
        vm,
        vmis: &vmis,
        ports: &ports,
    })?;
    if delegate.is_some() && !cached {
        let cache = MultusCache {
            container_id: t.container_id.clone(),
            pod_uid: t.args.pod_uid.clone(),
            vmis: vmis.clone(),
        };
        ctx.store.write_multus_cache(vm, &cache)?;
        undo.multus_cache = true;
    }
    let mut host = Socket::new().ctx("open netlink socket")?;
    let mut pod_sock = pod
        .socket()
        .ctx("open netlink socket in the pod namespace")?;
    clear_leftovers(ctx, &mut host, &plan)?;
    // An interface name the pod already has makes the creation fail with
    // EEXIST, which vif turns into code 4 then; no lookup beforehand.
    let attached = step("interfaces", || {
        plan.attach
            .iter()
            .map(|a| attach(ctx, &mut host, pod, a, undo))
            .collect::<Result<Vec<_>>>()
    })?;
    let opers = step("agent", || register(ctx, &attached, undo))?;
    let result = step("configure", || {
        configure_all(ctx, &mut pod_sock, pod, &attached, &opers)
    })?;
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

/// The pod's VMIs, and whether they came from the cache. A Multus delegate
/// first looks in the cache the first delegate of the same sandbox wrote,
/// so the agent is asked once per pod; a cache of another sandbox (or pod
/// incarnation) is ignored.
fn vm_config(ctx: &Ctx, vm: &VmName, delegate: bool) -> Result<(Vec<VmiConfig>, bool)> {
    let t = ctx.target()?;
    if delegate {
        if let Some(cache) = ctx.store.read_multus_cache(vm) {
            match usable_cache(&cache, t) {
                Ok(()) => {
                    debug!("using the Multus cache of {vm}");
                    return Ok((cache.vmis, true));
                }
                Err(why) => info!("not using the Multus cache of {vm} ({why}): asking the agent"),
            }
        }
    }
    Ok((ctx.agent.poll_vm_cfg(vm, &ctx.deadline)?, false))
}

/// A Multus cache is a file: it is used only for the sandbox and pod UID
/// it was written for, when the runtime sent the pod UID (without it a
/// cache could not tell whose VMIs it lists), and when it passes the
/// agent's list rules again with every VMI of that pod.
fn usable_cache(
    cache: &MultusCache,
    t: &crate::cni::args::Target,
) -> std::result::Result<(), String> {
    let Some(uid) = &t.args.pod_uid else {
        return Err("no K8S_POD_UID to check it against".into());
    };
    if cache.container_id != t.container_id || cache.pod_uid.as_ref() != Some(uid) {
        return Err(format!("written for container {}", cache.container_id));
    }
    if cache.vmis.iter().any(|v| v.vm_uuid != *uid) {
        return Err("it lists VMIs of another VM".into());
    }
    crate::agent::wire::check_vm_cfg(&cache.vmis).map_err(|r| r.reason().to_string())
}

/// A retried ADD, or the ADD of a new sandbox of the same pod, finds state
/// left behind; it goes first.
fn clear_leftovers(ctx: &Ctx, host: &mut Socket, plan: &plan::AddPlan) -> Result<()> {
    if plan.leftovers.is_empty() && plan.bad.is_empty() {
        return Ok(());
    }
    for pf in &plan.leftovers {
        info!(
            "removing leftover {} of container {} (VMI {})",
            pf.port.host_ifname, pf.port.vm_id, pf.port.vmi_uuid
        );
    }
    let ports: Vec<&PortFile> = plan.leftovers.iter().collect();
    let bad: Vec<_> = plan.bad.iter().collect();
    teardown::remove_all(host, &ctx.store, &ports, &bad, "removing leftovers")
}

/// Creates one interface. The port file is written first, so that a
/// process killed at any later point leaves state a DEL or a retried ADD
/// can find and remove.
fn attach<'p>(
    ctx: &Ctx,
    host: &mut Socket,
    pod: &NetNs,
    a: &'p Attach,
    undo: &mut Rollback,
) -> Result<Attached<'p>> {
    let t = ctx.target()?;
    let pf = PortFile {
        port: PortRequest {
            vm_uuid: a.vmi.vm_uuid.clone(),
            vm_name: undo.vm.clone(),
            host_ifname: a.host.clone(),
            vn_uuid: a.vmi.vn_id.clone(),
            vmi_uuid: a.vmi.id.clone(),
            vm_id: t.container_id.clone(),
            vm_ifname: a.ifname.clone(),
            vm_namespace: pod.path().to_string(),
        },
        vif_type: ctx.c.vif_type,
        pod_uid: t.args.pod_uid.clone(),
        network: a.vmi.network.clone().unwrap_or_default(),
        index: a.vmi.index,
        vlan_id: a.vlan_id,
    };
    ctx.store.write_port(&pf)?;
    undo.attachments.push(pf.clone());
    let l = HostLink {
        name: &a.host,
        ifname: &a.ifname,
        mac: a.vmi.mac,
        mtu: ctx.c.mtu,
        container: &t.container_id,
    };
    let (link, pod_index) = match a.vlan_id {
        None => {
            let link = vif::create_veth(host, pod, &l)?;
            let peer = link.parent_index;
            (link, peer)
        }
        Some(id) => (
            vif::create_nested(host, pod, &ctx.c.parent_interface, id, &l)?,
            None,
        ),
    };
    debug!("created {} <-> {} for VMI {}", a.host, a.ifname, a.vmi.id);
    Ok(Attached {
        plan: a,
        port: pf.port,
        host_mac: link.mac,
        pod_index,
    })
}

/// veth mode: `POST /vm` each interface; then wait for every address.
fn register(ctx: &Ctx, attached: &[Attached], undo: &mut Rollback) -> Result<Vec<VmiOper>> {
    if ctx.c.vif_type == VifType::Veth {
        for a in attached {
            ctx.agent
                .post_vm(&a.port, &ctx.deadline)
                .ctx("agent: POST /vm")?;
            undo.subscribed = Some(a.port.vm_uuid.clone());
        }
    }
    let Some(first) = attached.first() else {
        return Ok(Vec::new());
    };
    let ids: Vec<&Uuid> = attached.iter().map(|a| &a.plan.vmi.id).collect();
    ctx.agent
        .poll_vm(&first.plan.vmi.vm_uuid, &ids, &ctx.deadline)
}

/// Configures every interface from the agent's answers and builds the
/// result.
fn configure_all(
    ctx: &Ctx,
    pod_sock: &mut Socket,
    pod: &NetNs,
    attached: &[Attached],
    opers: &[VmiOper],
) -> Result<CniResult> {
    // By name, without a lookup first (no group in the request, so a
    // missing name is ENODEV, never a group change).
    match pod_sock.update_link(&IfName::lo(), &LinkUpdate::up()) {
        Err(e) if e.errno == libc::ENODEV => {}
        r => r.ctx("set lo up in the pod")?,
    }
    let mut result = CniResult::default();
    for a in attached {
        let oper = opers
            .iter()
            .find(|o| o.id == a.plan.vmi.id)
            .ok_or_else(|| {
                Error::new(
                    code::AGENT,
                    format!("agent gave no answer for VMI {}", a.plan.vmi.id),
                )
            })?;
        let addrs = plan::pod_addrs(a.plan, oper, ctx.c.v6_prefix_len)?;
        let (index, mac) = match a.pod_index {
            Some(index) => (index, None),
            None => {
                let link = pod_sock.link_by_name(&a.plan.ifname)?.ok_or_else(|| {
                    Error::new(
                        code::KERNEL,
                        format!("{} vanished from the pod", a.plan.ifname),
                    )
                })?;
                (link.index, link.mac)
            }
        };
        apply(pod_sock, index, mac, &addrs, a.plan.primary())
            .with_ctx(|| format!("configure {}", a.plan.ifname))?;
        record(&mut result, a, &addrs, pod.path(), ctx.c.mtu);
        info!(
            "configured {} (VMI {}): {}",
            a.plan.ifname,
            a.plan.vmi.id,
            addrs
                .addrs
                .iter()
                .map(|(n, _)| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(result)
}

/// Writes the MAC (unless `mac`, the link's current one, is already
/// right), link state, addresses and, on the primary interface, the default
/// routes (on-link: the gateway need not be in the pod's subnet, e.g. the
/// IPv6 /128 case) of pod link `index`.
fn apply(
    pod: &mut Socket,
    index: u32,
    mac: Option<Mac>,
    addrs: &PodAddrs,
    primary: bool,
) -> Result<()> {
    let mut change = LinkUpdate::up();
    if mac != Some(addrs.mac) {
        change.mac = Some(addrs.mac);
    }
    pod.update_link(index, &change)?;
    for (net, _) in &addrs.addrs {
        pod.add_address(&Address { index, net: *net })
            .with_ctx(|| format!("add {net}"))?;
    }
    if !primary {
        return Ok(());
    }
    for gw in addrs.addrs.iter().filter_map(|(_, gw)| *gw) {
        pod.add_route(&Route {
            dst: None,
            gateway: Some(gw),
            oif: index,
            onlink: true,
        })
        .with_ctx(|| format!("add default route via {gw}"))?;
    }
    Ok(())
}

/// Adds one interface (host and pod side), its addresses, routes and DNS
/// to the result.
fn record(result: &mut CniResult, a: &Attached, addrs: &PodAddrs, netns: &str, mtu: u32) {
    result.interfaces.push(Interface {
        name: a.plan.host.to_string(),
        mac: a.host_mac.map(|m| m.to_string()),
        mtu: Some(mtu),
        sandbox: None,
    });
    let index = result.interfaces.len();
    result.interfaces.push(Interface {
        name: a.plan.ifname.to_string(),
        mac: Some(addrs.mac.to_string()),
        mtu: Some(mtu),
        sandbox: Some(netns.to_string()),
    });
    for (net, gw) in &addrs.addrs {
        result.ips.push(IpConfig {
            address: net.addr(),
            prefix_len: net.prefix(),
            gateway: *gw,
            interface: Some(index),
        });
        if let (true, Some(gw)) = (a.plan.primary(), gw) {
            result.routes.push(RouteEntry {
                dst: plan::default_dst(gw),
                dst_len: 0,
                gw: Some(*gw),
            });
        }
    }
    for d in &addrs.dns {
        let s = d.to_string();
        if !result.dns.nameservers.contains(&s) {
            result.dns.nameservers.push(s);
        }
    }
}
