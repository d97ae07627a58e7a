//! GC (CNI 1.1): remove the state of every attachment the runtime no longer
//! lists in `cni.dev/valid-attachments`: host links, port files, the agent
//! subscription, the Multus cache, and the lock file. Then a sweep by
//! mark: host links marked for a container that is not listed go too,
//! even when their port file is gone. Without the list nothing is removed
//! (deleting every pod on absent input could not be undone), and a call
//! from the meta plugin is ignored: its list is a tenant's configuration,
//! not the runtime's view of the node.

use super::{del::subscription, GC_BUDGET};
use super::{finish_vm, join_errors, plan, remove_multus_cache_if, teardown, Ctx, Request};
use crate::cni::error::{Context, Error, Result};
use crate::ids::{ContainerId, VmName};
use crate::netlink::Socket;
use log::{info, warn};
use std::collections::HashSet;

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
    let mut removed = 0;
    for vm in ctx.store.vm_names()? {
        match gc_vm(&ctx, &mut host, &vm, &keep) {
            Ok(n) => removed += n,
            Err(e) => errors.push(e),
        }
    }
    match teardown::remove_marked(&mut host, |c| !keep.contains(c)) {
        Ok(0) => {}
        Ok(n) => info!("GC: removed {n} marked host link(s) without a port file"),
        Err(e) => errors.push(e),
    }
    errors.extend(gc_debris(&ctx, &keep));
    info!(
        "GC: removed {removed} attachment(s), kept {} container(s)",
        keep.len()
    );
    join_errors("GC", errors)
}

/// The stale attachments of one pod; returns how many went.
fn gc_vm(ctx: &Ctx, host: &mut Socket, vm: &VmName, keep: &HashSet<&ContainerId>) -> Result<usize> {
    let lock = lock(ctx, vm)?;
    let ports = ctx.store.read_ports(vm);
    let d = plan::plan_gc(&ports, keep);
    for pf in &d.ours {
        info!(
            "GC: removing {} of container {} ({vm})",
            pf.port.host_ifname, pf.port.vm_id
        );
    }
    let errors = teardown::remove(host, &ctx.store, &d.ours, &d.bad);
    let stale = |c: &ContainerId| !keep.contains(c);
    finish_vm(ctx, vm, subscription(&d.ours), &stale);
    lock.finish(&ctx.store);
    join_errors(&format!("GC {vm}"), errors).map(|()| d.ours.len())
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
    vms.sort();
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

/// A pod's lock, waiting at most [`LOCK_WAIT`]: a pod whose ADD holds it
/// for long must not stop the GC of the others.
fn lock(ctx: &Ctx, vm: &VmName) -> Result<crate::store::PodLock> {
    let wait = crate::deadline::Deadline::after(ctx.deadline.cap(LOCK_WAIT));
    ctx.store.lock_pod(vm, &wait)
}

/// How long GC waits for one pod's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
