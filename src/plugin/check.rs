//! CHECK (CNI >= 0.4.0): compare what the final `prevResult` says (after
//! later plugins such as tuning changed it) and what the port files record
//! with the live kernel and the agent. Every difference is named.

use super::{plan, Ctx, Request, ADD_MARGIN};
use crate::cni::error::{code, Context, Error, Result};
use crate::cni::result::CniResult;
use crate::ids::VmName;
use crate::netlink::{Link, Socket};
use crate::netns::NetNs;
use crate::store::PortFile;
use crate::vif::names::{owner, Owner};
use std::net::IpAddr;

pub fn check(req: &Request) -> Result<()> {
    let ctx = Ctx::new(req, req.conf.contrail.poll_budget() + ADD_MARGIN);
    let t = ctx.target()?;
    let prev = req.conf.prev_result.as_ref().ok_or_else(|| {
        Error::new(
            code::INVALID_CONFIG,
            "CHECK needs prevResult (the ADD result)",
        )
    })?;
    let expected = CniResult::from_json(prev, &req.conf.cni_version)?;
    let netns_path = t
        .netns
        .as_deref()
        .ok_or_else(|| Error::new(code::INVALID_ENV, "CNI_NETNS is required for CHECK"))?;
    let pod = NetNs::open(netns_path)
        .map_err(|e| Error::new(code::INVALID_ENV, format!("CNI_NETNS {netns_path}: {e}")))?;
    let vm_name = ctx.vm_name()?;
    let lock = ctx.lock(&vm_name)?;
    let result = check_locked(&ctx, &pod, netns_path, &vm_name, &expected);
    // CHECK creates no state: a pod that has none keeps no lock file.
    lock.finish(&ctx.store);
    result
}

/// CHECK of `vm_name` with its lock held.
fn check_locked(
    ctx: &Ctx,
    pod: &NetNs,
    netns_path: &str,
    vm_name: &VmName,
    expected: &CniResult,
) -> Result<()> {
    let t = ctx.target()?;
    let ports = ctx.store.read_ports(vm_name);
    let delegate_ifname = ctx.delegate().then_some(&t.ifname);
    let ours = plan::plan_del(&ports, &t.container_id, delegate_ifname).ours;
    let mut diffs = Vec::new();
    for b in &ports.bad {
        diffs.push(format!("unusable port file {}: {}", b.name, b.reason));
    }
    if ours.is_empty() {
        diffs.push(format!(
            "no port file of container {} in {vm_name}",
            t.container_id
        ));
    }
    let mut host = Socket::new().ctx("open netlink socket")?;
    let mut pod_sock = pod
        .socket()
        .ctx("open netlink socket in the pod namespace")?;
    for pf in ours {
        check_one(
            ctx,
            &mut host,
            &mut pod_sock,
            netns_path,
            expected,
            pf,
            &mut diffs,
        )?;
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        code::CHECK_MISMATCH,
        format!("CHECK {vm_name}: {}", diffs.join("; ")),
    ))
}

fn check_one(
    ctx: &Ctx,
    host: &mut Socket,
    pod: &mut Socket,
    netns_path: &str,
    expected: &CniResult,
    pf: &PortFile,
    diffs: &mut Vec<String>,
) -> Result<()> {
    let p = &pf.port;
    if p.vm_namespace != netns_path {
        diffs.push(format!(
            "port file {} records netns {} not {netns_path}",
            p.vmi_uuid, p.vm_namespace
        ));
    }
    check_host_link(host, pf, diffs)?;
    let Some(link) = pod.link_by_name(&p.vm_ifname)? else {
        diffs.push(format!("{} is missing in {netns_path}", p.vm_ifname));
        return Ok(());
    };
    if !link.is_up() {
        diffs.push(format!("{} is down", p.vm_ifname));
    }
    let Some(idx) = expected
        .interfaces
        .iter()
        .position(|i| p.vm_ifname == i.name.as_str() && i.sandbox.as_deref() == Some(netns_path))
    else {
        diffs.push(format!(
            "prevResult does not list {} in {netns_path}",
            p.vm_ifname
        ));
        return Ok(());
    };
    check_link(
        pod,
        &link,
        expected,
        idx,
        p.vm_ifname == ctx.target()?.ifname,
        diffs,
    )?;
    check_agent(ctx, expected, idx, pf, diffs);
    Ok(())
}

/// The host link of `pf`: present, marked for its container, up.
fn check_host_link(host: &mut Socket, pf: &PortFile, diffs: &mut Vec<String>) -> Result<()> {
    let p = &pf.port;
    match host.link_by_name(&p.host_ifname)? {
        None => diffs.push(format!("host interface {} is missing", p.host_ifname)),
        Some(l)
            if owner(&l.name, l.alias.as_deref(), l.group) != Owner::Container(p.vm_id.clone()) =>
        {
            diffs.push(format!(
                "host interface {} is not marked for container {} (alias {:?})",
                p.host_ifname, p.vm_id, l.alias
            ))
        }
        Some(l) if !l.is_up() => diffs.push(format!("host interface {} is down", p.host_ifname)),
        Some(_) => {}
    }
    Ok(())
}

/// The agent still knows the VMI, and every address it assigns is in the
/// result's interface `idx`.
fn check_agent(
    ctx: &Ctx,
    expected: &CniResult,
    idx: usize,
    pf: &PortFile,
    diffs: &mut Vec<String>,
) {
    let p = &pf.port;
    match ctx.agent.get_vmi(&p.vm_uuid, &p.vmi_uuid, &ctx.deadline) {
        Ok(Some(oper)) => {
            let want: Vec<IpAddr> = expected
                .ips
                .iter()
                .filter(|ip| ip.interface == Some(idx))
                .map(|ip| ip.address)
                .collect();
            let live = [oper.v4.map(|n| n.addr()), oper.v6.map(IpAddr::V6)];
            for ip in live.into_iter().flatten() {
                if !want.contains(&ip) {
                    diffs.push(format!(
                        "agent assigns {ip} to VMI {} but prevResult does not list it",
                        p.vmi_uuid
                    ));
                }
            }
        }
        Ok(None) => diffs.push(format!("agent does not know VMI {}", p.vmi_uuid)),
        Err(e) => diffs.push(format!("agent: {}", e.msg)),
    }
}

/// MAC, addresses and (for `CNI_IFNAME`, which the result's routes concern)
/// routes of one container interface.
fn check_link(
    pod: &mut Socket,
    link: &Link,
    expected: &CniResult,
    idx: usize,
    routes_apply: bool,
    diffs: &mut Vec<String>,
) -> Result<()> {
    let name = &link.name;
    if let Some(want) = &expected.interfaces[idx].mac {
        let live = link.mac.map(|m| m.to_string()).unwrap_or_default();
        if !live.eq_ignore_ascii_case(want) {
            diffs.push(format!("{name} has MAC {live}, prevResult says {want}"));
        }
    }
    let live = pod.addresses(Some(link.index))?;
    for ip in expected.ips.iter().filter(|ip| ip.interface == Some(idx)) {
        if !live
            .iter()
            .any(|a| a.net.addr() == ip.address && a.net.prefix() == ip.prefix_len)
        {
            diffs.push(format!(
                "{name} lacks address {}/{}",
                ip.address, ip.prefix_len
            ));
        }
    }
    if routes_apply {
        let live = pod.routes()?;
        for r in &expected.routes {
            let found = live.iter().filter(|l| l.oif == link.index).any(|l| {
                let dst_ok = match l.dst {
                    None => {
                        r.dst_len == 0 && l.gateway.is_none_or(|g| g.is_ipv4() == r.dst.is_ipv4())
                    }
                    Some(d) => d.addr() == r.dst && d.prefix() == r.dst_len,
                };
                dst_ok && (r.gw.is_none() || l.gateway == r.gw)
            });
            if !found {
                let via = r.gw.map(|g| format!(" via {g}")).unwrap_or_default();
                diffs.push(format!("route {}/{}{via} is missing", r.dst, r.dst_len));
            }
        }
    }
    Ok(())
}
