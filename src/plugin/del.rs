//! DEL: remove what ADD created for this container, from the port files it
//! wrote. Idempotent and best effort: no port file, no netns, no agent, a
//! repeated DEL, a read-only or full state file system with nothing to
//! delete all end in success; only a piece that exists and cannot be
//! removed is an error (the runtime retries DEL). Bounded by
//! [`super::DEL_BUDGET`].

use super::{finish_vm, join_errors, plan, teardown, Ctx, Request, Subscription, DEL_BUDGET};
use crate::cni::error::{code, Context, Result};
use crate::config::{Mode, VifType};
use crate::ids::{ContainerId, IfName, VmName};
use crate::netlink::Socket;
use crate::store::PortFile;
use log::{info, warn};

pub fn del(req: &Request) -> Result<()> {
    let ctx = Ctx::new(req, DEL_BUDGET);
    let t = ctx.target()?;
    if ctx.c.mode == Mode::Mesos {
        if let Err(e) = ctx.notify_mesos(crate::mesos::Cmd::Del) {
            warn!("Mesos manager: {e} (DEL goes on)");
        }
    }
    let vms = match (ctx.vm_name(), &t.args.pod_name) {
        (Ok(vm), _) => vec![vm],
        // No pod in CNI_ARGS (a runtime that lost them): find the
        // container's state by scanning instead of giving up.
        (Err(_), None) => vms_of_container(&ctx, &t.container_id)?,
        (Err(e), Some(_)) => return Err(e),
    };
    let delegate_ifname = ctx.delegate().then_some(&t.ifname);
    let errors = vms
        .iter()
        .filter_map(|vm| del_vm(&ctx, vm, delegate_ifname).err())
        .collect();
    join_errors("DEL", errors)
}

/// VM directories holding a port file of `container`.
fn vms_of_container(ctx: &Ctx, container: &ContainerId) -> Result<Vec<VmName>> {
    let found: Vec<VmName> = ctx
        .store
        .vm_names()?
        .into_iter()
        .filter(|vm| {
            ctx.store
                .read_ports(vm)
                .good
                .iter()
                .any(|p| p.port.vm_id == *container)
        })
        .collect();
    info!("DEL without a pod name in CNI_ARGS: container found in {found:?}");
    Ok(found)
}

fn del_vm(ctx: &Ctx, vm: &VmName, delegate_ifname: Option<&IfName>) -> Result<()> {
    let t = ctx.target()?;
    let lock = match ctx.lock(vm) {
        Ok(l) => l,
        // A read-only or full file system: with nothing to delete, done.
        Err(e) if e.code == code::STATE && !ctx.store.has_state(vm) => {
            info!("DEL {vm}: no state, nothing to do ({e})");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let ports = ctx.store.read_ports(vm);
    let d = plan::plan_del(&ports, &t.container_id, delegate_ifname);
    if d.ours.is_empty() {
        match d.others.first() {
            // The reference's CanDelete rule: a DEL of an older sandbox
            // must not tear down the pod's current one.
            Some(other) => info!(
                "DEL {vm}: its interfaces belong to container {other}, not {}: nothing to do",
                t.container_id
            ),
            None => info!("DEL {vm}: no state for container {}", t.container_id),
        }
    }
    let mut errors = Vec::new();
    if !d.ours.is_empty() || !d.bad.is_empty() {
        let mut host = Socket::new().ctx("open netlink socket")?;
        errors = if d.bad.is_empty() {
            teardown::remove(&mut host, &ctx.store, &d.ours, &d.bad)
        } else {
            // An unusable entry may have been a port file of ours (replaced
            // by a FIFO, a symlink, garbage): the links' marks still tell.
            teardown::remove_swept(&mut host, &ctx.store, &d.ours, &d.bad, |c| {
                *c == t.container_id
            })
        };
    }
    let own = |c: &ContainerId| *c == t.container_id;
    finish_vm(ctx, vm, subscription(&d.ours), &own);
    lock.finish(&ctx.store);
    if errors.is_empty() {
        info!("DEL {vm}: removed {} interface(s)", d.ours.len());
    }
    join_errors(&format!("DEL {vm}"), errors)
}

/// The VM to unsubscribe when these attachments go: veth ones only
/// (nested mode never subscribes); read from port files, so it is only a
/// claim to confirm.
pub fn subscription<'p>(ports: &[&'p PortFile]) -> Option<Subscription<'p>> {
    ports
        .iter()
        .find(|p| p.vif_type == VifType::Veth)
        .map(|p| Subscription::Recorded(&p.port.vm_uuid))
}
