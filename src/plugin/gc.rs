//! GC (CNI 1.1): remove the state of every attachment the runtime no longer
//! lists in `cni.dev/valid-attachments`: host links, port files, the agent
//! subscription, the Multus cache, and the lock file; and every host link
//! marked for a container that is not listed, even when its port file is
//! gone. All the links go in one kernel batch (per [`CHUNK`] pods). Without
//! the list nothing is removed (deleting every pod on absent input could
//! not be undone), and a call from the meta plugin is ignored: its list is
//! a tenant's configuration, not the runtime's view of the node.

use super::{del::subscription, GC_BUDGET};
use super::{finish_vm, join_errors, plan, remove_multus_cache_if, teardown, Ctx, Request};
use crate::cni::error::{Context, Error, Result};
use crate::ids::{ContainerId, VmName};
use crate::netlink::Socket;
use crate::store::{BadFile, PodLock, PortFile, Ports};
use log::{info, warn};
use std::collections::HashSet;
use std::time::Duration;

/// Pods handled (and locked) at once: bounds the open lock files.
const CHUNK: usize = 256;
/// How long GC waits for one pod's lock: a pod whose ADD holds it for long
/// must not stop the GC of the others.
const LOCK_WAIT: Duration = Duration::from_secs(2);

pub fn gc(req: &Request) -> Result<()> {
    let ctx = Ctx::new(req, GC_BUDGET);
    let Some(valid) = &req.conf.valid_attachments else {
        warn!("GC without cni.dev/valid-attachments: nothing removed");
        return Ok(());
    };
    if plan::called_by(&super::parent_comm(), &ctx.c.meta_plugin) {
        warn!("GC from the meta plugin ({}): ignored", ctx.c.meta_plugin);
        return Ok(());
    }
    let keep: HashSet<&ContainerId> = valid.iter().map(|a| &a.container_id).collect();
    let mut host = Socket::new().ctx("open netlink socket")?;
    let mut errors = Vec::new();
    // Only pods with something stale are locked (read again under the lock).
    let candidates: Vec<VmName> = ctx
        .store
        .vm_names()?
        .into_iter()
        .filter(|vm| {
            let d = ctx.store.read_ports(vm);
            !plan::plan_gc(&d, &keep).ours.is_empty() || !d.bad.is_empty()
        })
        .collect();
    let mut removed = 0;
    for chunk in candidates.chunks(CHUNK) {
        removed += gc_pods(&ctx, &mut host, chunk, &keep, &mut errors);
    }
    if candidates.is_empty() {
        // No port file is stale; marked links may still be.
        let sweep = teardown::remove_swept(&mut host, &ctx.store, &[], &[], |c| !keep.contains(c));
        errors.extend(sweep);
    }
    errors.extend(gc_debris(&ctx, &keep));
    info!(
        "GC: removed {removed} attachment(s), kept {} container(s)",
        keep.len()
    );
    join_errors("GC", errors)
}

/// The stale attachments of `vms`, with every stale marked link, in one
/// batch; returns how many attachments went.
fn gc_pods(
    ctx: &Ctx,
    host: &mut Socket,
    vms: &[VmName],
    keep: &HashSet<&ContainerId>,
    errors: &mut Vec<Error>,
) -> usize {
    let mut locked: Vec<(VmName, PodLock, Ports)> = Vec::new();
    for vm in vms {
        match lock(ctx, vm) {
            Ok(l) => locked.push((vm.clone(), l, ctx.store.read_ports(vm))),
            Err(e) => errors.push(e),
        }
    }
    let plans: Vec<plan::DelPlan> = locked
        .iter()
        .map(|(_, _, p)| plan::plan_gc(p, keep))
        .collect();
    let ports: Vec<&PortFile> = plans.iter().flat_map(|d| d.ours.iter().copied()).collect();
    let bad: Vec<&BadFile> = plans.iter().flat_map(|d| d.bad.iter().copied()).collect();
    for pf in &ports {
        info!(
            "GC: removing {} of container {} ({})",
            pf.port.host_ifname, pf.port.vm_id, pf.port.vm_name
        );
    }
    errors.extend(teardown::remove_swept(
        host,
        &ctx.store,
        &ports,
        &bad,
        |c| !keep.contains(c),
    ));
    let stale = |c: &ContainerId| !keep.contains(c);
    for ((vm, _, _), d) in locked.iter().zip(&plans) {
        finish_vm(ctx, vm, subscription(&d.ours), &stale);
    }
    let n = ports.len();
    drop(plans);
    for (_, lock, _) in locked {
        lock.finish(&ctx.store);
    }
    n
}

/// Multus caches and lock files of pods without state (an ADD killed
/// between writing one and the first port file; locks of older versions).
fn gc_debris(ctx: &Ctx, keep: &HashSet<&ContainerId>) -> Vec<Error> {
    let stale = |c: &ContainerId| !keep.contains(c);
    let mut errors = Vec::new();
    let mut vms = Vec::new();
    for names in [ctx.store.multus_cache_names(), ctx.store.lock_names()] {
        match names {
            Ok(n) => vms.extend(n),
            Err(e) => errors.push(e),
        }
    }
    vms.sort_unstable();
    vms.dedup();
    for vm in vms {
        if ctx.store.read_ports(&vm).good.is_empty() {
            match lock(ctx, &vm) {
                Ok(lock) => {
                    remove_multus_cache_if(ctx, &vm, &stale);
                    lock.finish(&ctx.store);
                }
                Err(e) => errors.push(e),
            }
        }
    }
    errors
}

/// A pod's lock, waiting at most [`LOCK_WAIT`].
fn lock(ctx: &Ctx, vm: &VmName) -> Result<PodLock> {
    let wait = crate::deadline::Deadline::after(ctx.deadline.cap(LOCK_WAIT));
    ctx.store.lock_pod(vm, &wait)
}
