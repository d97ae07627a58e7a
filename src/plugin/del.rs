//! DEL: remove what ADD created for this container, from the port files it
//! wrote. Idempotent and best effort: no port file, no netns, no agent, a
//! repeated DEL all end in success; only a piece that exists and cannot be
//! removed is an error (the runtime retries DEL).

use super::{finish_vm, join_errors, remove_attachment, subscription_of, Ctx, Request};
use crate::cni::error::{Context, Result};
use crate::config::Mode;
use crate::netlink::Socket;
use log::{info, warn};

pub fn del(req: &Request) -> Result<()> {
    let ctx = Ctx::new(req);
    if ctx.c.mode == Mode::Mesos {
        if let Err(e) = ctx.notify_mesos(crate::mesos::Cmd::Del) {
            warn!("Mesos manager: {e} (DEL goes on)");
        }
    }
    let vm_names = match (ctx.vm_name(), &req.env.args.pod_name) {
        (Ok(name), _) => vec![name],
        // No pod in CNI_ARGS (a runtime that lost them): find the
        // container's state by scanning instead of giving up.
        (Err(_), None) => vms_of_container(&ctx)?,
        (Err(e), Some(_)) => return Err(e),
    };
    let mut errors = Vec::new();
    for vm_name in vm_names {
        let _lock = ctx.store.lock_pod(&vm_name)?;
        if let Err(e) = del_vm(&ctx, &vm_name) {
            errors.push(e);
        }
    }
    join_errors("DEL", errors)
}

/// VM directories holding a port file of this container.
fn vms_of_container(ctx: &Ctx) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for vm in ctx.store.vm_names()? {
        let (ports, _) = ctx.store.read_ports(&vm);
        if ports.iter().any(|p| p.port.vm_id == ctx.container_id()) {
            found.push(vm);
        }
    }
    info!("DEL without a pod name in CNI_ARGS: container found in {found:?}");
    Ok(found)
}

fn del_vm(ctx: &Ctx, vm_name: &str) -> Result<()> {
    let (ports, bad) = ctx.store.read_ports(vm_name);
    let others: Vec<&str> = ports
        .iter()
        .filter(|p| p.port.vm_id != ctx.container_id())
        .map(|p| p.port.vm_id.as_str())
        .collect();
    let ours: Vec<_> = ports.iter().filter(|p| ctx.owns(p)).collect();
    if ours.is_empty() {
        if let Some(other) = others.first() {
            // The reference's CanDelete rule: a DEL of an older sandbox must
            // not tear down the pod's current one.
            info!(
                "DEL {vm_name}: its interfaces belong to container {other}, not {}: nothing to do",
                ctx.container_id()
            );
        } else {
            info!(
                "DEL {vm_name}: no state for container {}: nothing to do",
                ctx.container_id()
            );
        }
    }
    let mut errors = Vec::new();
    if !ours.is_empty() {
        let mut host = Socket::new().ctx("open netlink socket")?;
        for pf in &ours {
            if let Err(e) = remove_attachment(&mut host, &ctx.store, pf) {
                errors.push(e);
            }
        }
    }
    // An unreadable file cannot say whose it is. When nothing in the
    // directory belongs to another sandbox, it is ours (or nobody's).
    if others.is_empty() && !ctx.delegate {
        for b in &bad {
            warn!(
                "DEL {vm_name}: removing unreadable port file {}: {}",
                b.path.display(),
                b.reason
            );
            if let Err(e) = ctx.store.remove_file(&b.path) {
                errors.push(e);
            }
        }
    }
    let own = |owner: &str| owner == ctx.container_id();
    finish_vm(ctx, vm_name, subscription_of(ours.iter().copied()), &own);
    if errors.is_empty() {
        info!("DEL {vm_name}: removed {} interface(s)", ours.len());
    }
    join_errors(&format!("DEL {vm_name}"), errors)
}
