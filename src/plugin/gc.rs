//! GC (CNI 1.1): remove the state of every attachment the runtime no longer
//! lists in `cni.dev/valid-attachments`: host links, port files, the agent
//! subscription, the Multus cache, and the lock file; and every host link
//! marked for a container that is not listed, even when its port file is
//! gone. All the links go in one kernel batch (per [`CHUNK`] pods). Without
//! the list nothing is removed (deleting every pod on absent input could
//! not be undone), and a call from the meta plugin is ignored: its list is
//! a tenant's configuration, not the runtime's view of the node.

use super::{del::subscription, GC_BUDGET};
use super::{join_errors, plan, remove_multus_cache_if, remove_vm_state, teardown};
use super::{vm_is_empty, Ctx, Request, Subscription};
use crate::cni::error::{Context, Error, Result};
use crate::ids::{ContainerId, Uuid, VmName};
use crate::netlink::Socket;
use crate::store::{BadFile, PodLock, PortFile, Ports};
use log::{info, warn};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// Pods handled (and locked) at once: bounds the open lock files.
const CHUNK: usize = 256;
/// How long GC waits for one pod's lock: a pod whose ADD holds it for long
/// must not stop the GC of the others.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// Threads removing the pods' directories and Multus caches. An `rmdir`
/// can wait for the file system (4 ms each on the ext4 of the development
/// machine: 200 ms for 50 pods in a row); waits on several threads
/// overlap.
const FS_THREADS: usize = 8;

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
    // Only pods with something stale are locked (read again under the
    // lock). The VMs of the kept pods' port files are never unsubscribed.
    let mut live: HashSet<Uuid> = HashSet::new();
    let mut candidates: Vec<VmName> = Vec::new();
    for vm in ctx.store.vm_names()? {
        let d = ctx.store.read_ports(&vm);
        let kept = d.good.iter().filter(|p| keep.contains(&p.port.vm_id));
        live.extend(kept.map(|p| p.port.vm_uuid.clone()));
        if !plan::plan_gc(&d, &keep).ours.is_empty() || !d.bad.is_empty() {
            candidates.push(vm);
        }
    }
    let mut removed = 0;
    for chunk in candidates.chunks(CHUNK) {
        removed += gc_pods(&ctx, &mut host, chunk, (&keep, &live), &mut errors);
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
    (keep, live): (&HashSet<&ContainerId>, &HashSet<Uuid>),
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
    // Under every pod's lock: the agent unsubscriptions, pod by pod on
    // this thread (the agent client is one kept-alive connection), while
    // FS_THREADS other threads remove the pods' directories and caches;
    // then the locks.
    let stale = |c: &ContainerId| !keep.contains(c);
    let store = &ctx.store;
    let emptied: Vec<bool> = locked
        .iter()
        .map(|(vm, _, _)| vm_is_empty(store, vm))
        .collect();
    let empty_vms = locked
        .iter()
        .zip(&emptied)
        .filter(|(_, empty)| **empty)
        .map(|((vm, _, _), _)| vm);
    in_parallel(
        empty_vms,
        |vm| remove_vm_state(store, vm, &stale),
        || {
            let pods = locked.iter().zip(&plans).zip(&emptied);
            for (((vm, _, _), d), _) in pods.filter(|(_, empty)| **empty) {
                // A VM a kept pod's port files record is that pod's.
                match subscription(&d.ours) {
                    Some(Subscription::Recorded(u)) if !live.contains(u) => {
                        ctx.unsubscribe(vm, Subscription::Unclaimed(u))
                    }
                    Some(Subscription::Recorded(u)) => {
                        info!("not unsubscribing VM {u}: a kept pod's port files record it")
                    }
                    Some(sub) => ctx.unsubscribe(vm, sub),
                    None => {}
                }
            }
        },
    );
    let n = ports.len();
    drop(plans);
    for (_, lock, _) in locked {
        lock.finish(store);
    }
    n
}

/// Calls `f` on every item on up to [`FS_THREADS`] threads, while this one
/// runs `meanwhile` and then helps; returns when all are done. A thread
/// that cannot be started leaves its share to the others.
///
/// Plain POSIX threads: `std::thread` would add about 22 KB to the binary
/// (names, spawn hooks, scoped packets) for what is a loop over a queue.
fn in_parallel<T: Send>(
    items: impl Iterator<Item = T> + Send,
    f: impl Fn(T) + Sync,
    meanwhile: impl FnOnce(),
) {
    let queue = Mutex::new(items);
    let next = || queue.lock().ok().and_then(|mut q| q.next());
    let work = || {
        while let Some(item) = next() {
            f(item);
        }
    };
    let work: &(dyn Fn() + Sync) = &work;
    extern "C" fn run(arg: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: `arg` points to `work` below, which outlives the thread:
        // every thread started is joined before `in_parallel` returns.
        let work = unsafe { &*(arg as *const &(dyn Fn() + Sync)) };
        work();
        std::ptr::null_mut()
    }
    let arg = &work as *const &(dyn Fn() + Sync) as *mut libc::c_void;
    let mut started = Vec::new();
    for _ in 0..FS_THREADS {
        let mut t = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
        // SAFETY: `t` is written by pthread_create on success; `run` is a
        // valid start routine and `arg` stays valid until the join below.
        if unsafe { libc::pthread_create(t.as_mut_ptr(), std::ptr::null(), run, arg) } != 0 {
            break;
        }
        // SAFETY: pthread_create returned 0, so it initialised `t`.
        started.push(unsafe { t.assume_init() });
    }
    meanwhile();
    work();
    for t in started {
        // SAFETY: `t` is a thread started above and not joined yet.
        unsafe { libc::pthread_join(t, std::ptr::null_mut()) };
    }
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
                    remove_multus_cache_if(&ctx.store, &vm, &stale);
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
