//! Orchestration of each CNI command: read what is needed once, decide
//! with the pure functions of [`plan`], then apply to the kernel, the agent
//! and the disk (docs/architecture.md). ADD records an undo for every step
//! and rolls back on failure; DEL and GC collect errors and go on; every
//! command runs against one deadline.

mod add;
mod check;
mod del;
mod gc;
pub mod plan;
mod status;
mod teardown;

pub use add::add;
pub use check::check;
pub use del::del;
pub use gc::gc;
pub use status::status;

use crate::agent::Agent;
use crate::cni::args::{Env, Target};
use crate::cni::error::{Error, Result};
use crate::config::{Contrail, Mode, NetConf};
use crate::deadline::Deadline;
use crate::ids::{Uuid, VmName};
use crate::store::{PodLock, Store};
use log::{info, warn};
use std::time::Duration;

/// What ADD and CHECK may spend beyond the agent's poll budget: the
/// kernel and file work around the agent phases.
pub const ADD_MARGIN: Duration = Duration::from_secs(2);
/// DEL's own deadline: it waits for the pod's lock, removes links and
/// files, and tells the agent; none of that polls.
pub const DEL_BUDGET: Duration = Duration::from_secs(10);
/// GC's deadline, for every stale pod of the node.
pub const GC_BUDGET: Duration = Duration::from_secs(60);

/// The time one unsubscribe (and its confirmation) may take.
const UNSUBSCRIBE_BUDGET: Duration = Duration::from_secs(1);

/// One invocation: validated environment plus merged configuration.
pub struct Request {
    pub env: Env,
    pub conf: NetConf,
}

/// What every command derives from the request once.
struct Ctx<'a> {
    req: &'a Request,
    c: &'a Contrail,
    store: Store,
    agent: Agent,
    deadline: Deadline,
    /// Set once the agent did not answer: best-effort requests stop.
    agent_down: std::sync::atomic::AtomicBool,
}

impl<'a> Ctx<'a> {
    fn new(req: &'a Request, budget: Duration) -> Ctx<'a> {
        let c = &req.conf.contrail;
        Ctx {
            req,
            c,
            store: Store::new(&c.config_dir),
            agent: Agent::new(c.vrouter(), Duration::from_secs(c.poll_timeout)),
            deadline: Deadline::after(budget),
            agent_down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn target(&self) -> Result<&'a Target> {
        self.req.env.target()
    }

    /// The VM name the agent knows the pod by. Mesos has no pods: the
    /// container id names the VM, as in the reference.
    fn vm_name(&self) -> Result<VmName> {
        let t = self.target()?;
        match self.c.mode {
            Mode::Mesos => Ok(VmName::mesos(&t.container_id)),
            Mode::K8s => t.args.vm_name(&self.c.cluster_name),
        }
    }

    /// Delegate mode (one network per call), forced or detected.
    fn delegate(&self) -> bool {
        plan::is_delegate(self.c.delegate, &parent_comm(), &self.c.meta_plugin)
    }

    /// In delegate mode, the network this call configures.
    fn delegate_network(&self) -> Option<&str> {
        self.delegate()
            .then(|| plan::delegate_network(self.req.conf.name.as_str()))
    }

    fn notify_mesos(&self, cmd: crate::mesos::Cmd) -> Result<()> {
        let t = self.target()?;
        let addr = self.c.mesos().ok_or_else(|| {
            Error::new(
                crate::cni::error::code::INVALID_CONFIG,
                "mode mesos needs mesos-ip and mesos-port in the node configuration",
            )
        })?;
        crate::mesos::notify(
            addr,
            cmd,
            &t.container_id,
            &self.req.conf.raw,
            &self.deadline,
        )
    }

    /// Takes the pod's lock within the command's deadline.
    fn lock(&self, vm: &VmName) -> Result<PodLock> {
        self.store.lock_pod(vm, &self.deadline)
    }
}

/// The parent process's name (`comm`), "" when it cannot be read.
fn parent_comm() -> String {
    let ppid = std::os::unix::process::parent_id();
    std::fs::read_to_string(format!("/proc/{ppid}/comm"))
        .map(|c| c.trim_end_matches('\n').to_string())
        .unwrap_or_default()
}

/// The VM whose agent subscription goes with a pod's last attachment.
#[derive(Clone, Copy)]
pub(crate) enum Subscription<'a> {
    /// The VM this ADD subscribed itself (the agent's own answer).
    Ours(&'a Uuid),
    /// A VM uuid read from port files: data, unsubscribed only once
    /// confirmed to be the pod's ([`Ctx::confirms`]).
    Recorded(&'a Uuid),
    /// GC: a VM uuid read from a stale pod's port files that no port file
    /// of a kept pod on the node records (a live pod's VM always has its
    /// port files here: the node's agent knows no other pod).
    Unclaimed(&'a Uuid),
}

/// After the attachments of a VM were removed: when no port file is left,
/// unsubscribe the VM from the agent (best effort: the agent drops
/// subscriptions on restart anyway), remove the VM directory, and the
/// Multus cache when `cache_is_stale` says so of the container that wrote
/// it.
fn finish_vm(
    ctx: &Ctx,
    vm: &VmName,
    subscription: Option<Subscription>,
    cache_is_stale: &dyn Fn(&crate::ids::ContainerId) -> bool,
) {
    if vm_is_empty(&ctx.store, vm) {
        if let Some(sub) = subscription {
            ctx.unsubscribe(vm, sub);
        }
        remove_vm_state(&ctx.store, vm, cache_is_stale);
    }
}

/// True when `vm` has no port file left, usable or not.
fn vm_is_empty(store: &Store, vm: &VmName) -> bool {
    let left = store.read_ports(vm);
    left.good.is_empty() && left.bad.is_empty()
}

/// The file system half of [`finish_vm`]: the (empty) VM directory and
/// the stale Multus cache; GC runs it on several threads.
fn remove_vm_state(
    store: &Store,
    vm: &VmName,
    cache_is_stale: &dyn Fn(&crate::ids::ContainerId) -> bool,
) {
    if let Err(e) = store.remove_vm_dir_if_empty(vm) {
        warn!("{e}");
    }
    remove_multus_cache_if(store, vm, cache_is_stale);
}

impl Ctx<'_> {
    /// `DELETE /vm/<uuid>`, within [`UNSUBSCRIBE_BUDGET`] of its own (a
    /// rollback may run after the command's deadline, and a DEL must not
    /// wait long on a dead agent); once the agent did not answer, the rest
    /// of the command does not ask again.
    fn unsubscribe(&self, vm: &VmName, sub: Subscription) {
        if self.agent_down.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let deadline = Deadline::after(UNSUBSCRIBE_BUDGET);
        let uuid = match sub {
            Subscription::Ours(u) | Subscription::Unclaimed(u) => u,
            Subscription::Recorded(u) if self.confirms(vm, u, &deadline) => u,
            Subscription::Recorded(u) => {
                info!("not unsubscribing VM {u}: nothing confirms it is the VM of {vm}");
                return;
            }
        };
        match self.agent.delete_vm(uuid, &deadline) {
            Ok(()) => info!("agent: unsubscribed VM {uuid}"),
            Err(e) => {
                self.note_agent_down(&e);
                warn!(
                    "agent: DELETE /vm/{uuid} failed (ignored, the agent drops it on restart): {e}"
                )
            }
        }
    }

    /// After a failed agent request: no answer at all means later
    /// best-effort requests of this command are not sent.
    fn note_agent_down(&self, e: &Error) {
        if e.code == crate::cni::error::code::TRY_AGAIN_LATER {
            self.agent_down
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Is `uuid` (read from a file) the VM of pod `vm`? The runtime's
    /// `K8S_POD_UID` says so when it sent one; otherwise the agent's
    /// `/vm-cfg/<vm>` must name it.
    fn confirms(&self, vm: &VmName, uuid: &Uuid, deadline: &Deadline) -> bool {
        if let Some(uid) = self.target().ok().and_then(|t| t.args.pod_uid.as_ref()) {
            return uid == uuid;
        }
        match self.agent.vm_uuid_of(vm, deadline) {
            Ok(known) => known.as_ref() == Some(uuid),
            Err(e) => {
                self.note_agent_down(&e);
                warn!("agent: cannot confirm the VM of {vm}: {e}");
                false
            }
        }
    }
}

/// Removes the Multus cache of `vm` when `is_stale(container that wrote
/// it)`; a newer sandbox's cache is left alone.
fn remove_multus_cache_if(
    store: &Store,
    vm: &VmName,
    is_stale: &dyn Fn(&crate::ids::ContainerId) -> bool,
) {
    let Some(cache) = store.read_multus_cache(vm) else {
        return;
    };
    if !is_stale(&cache.container_id) {
        return;
    }
    match store.remove_multus_cache(vm) {
        Ok(()) => info!(
            "removed the Multus cache of {vm} (container {})",
            cache.container_id
        ),
        Err(e) => warn!("{e}"),
    }
}

/// A failed kernel operation is CNI error 100, with the operation, the
/// errno and the kernel's text.
impl From<crate::netlink::Error> for Error {
    fn from(e: crate::netlink::Error) -> Self {
        Error::new(crate::cni::error::code::KERNEL, e.to_string())
    }
}

/// Joins the errors of a best-effort sequence into one error.
fn join_errors(what: &str, errors: Vec<Error>) -> Result<()> {
    let Some(first) = errors.first() else {
        return Ok(());
    };
    let msg = errors
        .iter()
        .map(|e| e.msg.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::new(first.code, format!("{what}: {msg}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::error::code;

    #[test]
    fn error_join_keeps_first_code_and_every_message() {
        let e = join_errors(
            "DEL",
            vec![Error::new(code::KERNEL, "a"), Error::new(code::STATE, "b")],
        )
        .unwrap_err();
        assert_eq!(e.code, code::KERNEL);
        assert_eq!(e.msg, "DEL: a; b");
        assert!(join_errors("DEL", vec![]).is_ok());
    }
}
