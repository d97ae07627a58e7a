//! Orchestration of each CNI command: ADD and DEL with rollback, CHECK,
//! STATUS and GC. Data flows one way: the validated request, then the agent
//! and the kernel, then the result.

mod add;
mod check;
mod del;
mod gc;
mod status;

pub use add::add;
pub use check::check;
pub use del::del;
pub use gc::gc;
pub use status::status;

use crate::agent::Agent;
use crate::cni::args::Env;
use crate::cni::error::{code, Error, Result};
use crate::config::{Contrail, Mode, NetConf, VifType};
use crate::deadline::Deadline;
use crate::ids::{ContainerId, Uuid};
use crate::netlink::Socket;
use crate::store::{PortFile, Store};
use crate::vif;
use log::{info, warn};
use std::time::Duration;

/// The plugin's own type name; as a delegate network name it means "default".
pub const PLUGIN_NAME: &str = "contrail-k8s-cni";

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
    /// The command's one deadline for the agent: `poll-timeout` x
    /// `poll-retries`.
    deadline: Deadline,
    /// Multus delegate mode: one network per call.
    delegate: bool,
}

impl<'a> Ctx<'a> {
    fn new(req: &'a Request) -> Ctx<'a> {
        let c = &req.conf.contrail;
        let delegate = c
            .delegate
            .unwrap_or_else(|| parent_is_meta_plugin(&c.meta_plugin));
        Ctx {
            req,
            c,
            store: Store::new(&c.config_dir),
            agent: Agent::new(c.agent_addr(), Duration::from_secs(c.poll_timeout)),
            deadline: Deadline::after(
                Duration::from_secs(c.poll_timeout).saturating_mul(c.poll_retries),
            ),
            delegate,
        }
    }

    fn container_id(&self) -> &str {
        &self.req.env.container_id
    }

    fn veth(&self) -> bool {
        self.c.vif_type == VifType::Veth
    }

    /// The VM name the agent knows the pod by. Mesos has no pods: the
    /// container id names the VM, as in the reference.
    fn vm_name(&self) -> Result<String> {
        if self.c.mode == Mode::Mesos {
            return Ok(self.container_id().to_string());
        }
        self.req.env.args.vm_name(&self.c.cluster_name)
    }

    /// The network a delegate call configures: the config `name`, where the
    /// plugin's own name (or none) means the cluster's default network.
    fn delegate_network(&self) -> &str {
        let name = self.req.conf.name.as_str();
        if name.is_empty() || name == PLUGIN_NAME {
            "default"
        } else {
            name
        }
    }

    /// Does this port file belong to the attachment of this call? Standalone:
    /// every interface of the container; delegate: only `CNI_IFNAME`.
    fn owns(&self, pf: &PortFile) -> bool {
        pf.port.vm_id == self.container_id()
            && (!self.delegate || pf.port.vm_ifname.as_str() == self.req.env.ifname)
    }

    fn notify_mesos(&self, cmd: crate::mesos::Cmd) -> Result<()> {
        let addr = self.c.mesos_addr().ok_or_else(|| {
            Error::new(
                code::INVALID_CONFIG,
                "mode mesos needs mesos-ip and mesos-port",
            )
        })?;
        let cid = ContainerId::parse(self.container_id())
            .map_err(|e| Error::new(code::INVALID_ENV, e.to_string()))?;
        crate::mesos::notify(addr, cmd, &cid, &self.req.conf.raw, &self.deadline)
    }
}

/// Multus runs its delegates as a child process: thin Multus as `multus`,
/// thick Multus as `multus-daemon`. `comm` is cut at 15 bytes by the kernel.
fn parent_is_meta_plugin(meta_plugin: &str) -> bool {
    let ppid = std::os::unix::process::parent_id();
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    comm_matches(comm.trim_end_matches('\n'), meta_plugin)
}

fn comm_matches(comm: &str, meta_plugin: &str) -> bool {
    fn cut(s: &str) -> &str {
        let mut end = s.len().min(15);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        &s[..end]
    }
    if comm.is_empty() || meta_plugin.is_empty() {
        return false;
    }
    comm == cut(meta_plugin) || comm == cut(&format!("{meta_plugin}-daemon"))
}

/// Removes one attachment's state: its host link (veth tap or VLAN link,
/// which takes the macvlan with it) and its port file. Missing pieces are fine.
fn remove_attachment(host: &mut Socket, store: &Store, pf: &PortFile) -> Result<()> {
    let host_if = pf.port.host_ifname.as_str();
    if vif::delete_link(host, host_if)? {
        info!("deleted host link {host_if} of VMI {}", pf.port.vmi_uuid);
    }
    store.remove_port(pf.port.vm_name.as_str(), pf.port.vmi_uuid.as_str())
}

/// After the last attachment of a VM is gone: unsubscribe `subscription`
/// (the VM uuid, veth mode only; best effort, the agent answers 200 anyway),
/// remove the VM directory, and the Multus cache when `cache_is_stale` says
/// so of the container that wrote it.
fn finish_vm(
    ctx: &Ctx,
    vm_name: &str,
    subscription: Option<&Uuid>,
    cache_is_stale: &dyn Fn(&str) -> bool,
) {
    let (left, bad) = ctx.store.read_ports(vm_name);
    if !left.is_empty() || !bad.is_empty() {
        return;
    }
    if let Some(uuid) = subscription {
        // Best effort with its own short deadline: a rollback runs after
        // the command's deadline may have passed, and the agent drops
        // subscriptions on restart anyway.
        let deadline = Deadline::after(Duration::from_secs(ctx.c.poll_timeout));
        match ctx.agent.delete_vm(uuid, &deadline) {
            Ok(()) => info!("agent: unsubscribed VM {uuid}"),
            Err(e) => warn!(
                "agent: DELETE /vm/{uuid} failed (ignored, the agent drops it on restart): {e}"
            ),
        }
    }
    if let Err(e) = ctx.store.remove_vm_dir_if_empty(vm_name) {
        warn!("{e}");
    }
    remove_multus_cache_if(ctx, vm_name, cache_is_stale);
}

/// Removes the Multus cache of `vm_name` when `is_stale(container that
/// wrote it)`; a newer sandbox's cache is left alone.
fn remove_multus_cache_if(ctx: &Ctx, vm_name: &str, is_stale: &dyn Fn(&str) -> bool) {
    if let Some(cache) = ctx.store.read_multus_cache(vm_name) {
        if !is_stale(&cache.container_id) {
            return;
        }
        match ctx.store.remove_multus_cache(vm_name) {
            Ok(()) => info!(
                "removed the Multus cache of {vm_name} (container {})",
                cache.container_id
            ),
            Err(e) => warn!("{e}"),
        }
    }
}

/// The VM uuid to unsubscribe when these port files are removed: veth
/// attachments only (nested mode never subscribes).
fn subscription_of<'p>(ports: impl IntoIterator<Item = &'p PortFile>) -> Option<&'p Uuid> {
    ports
        .into_iter()
        .find(|p| p.vif_type == "veth")
        .map(|p| &p.port.vm_uuid)
}

/// Joins the errors of a best-effort sequence into one error.
fn join_errors(what: &str, errors: Vec<Error>) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let code = errors[0].code;
    let msg = errors
        .iter()
        .map(|e| e.msg.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::new(code, format!("{what}: {msg}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_plugin_detection_covers_thin_thick_and_truncation() {
        assert!(comm_matches("multus", "multus"));
        assert!(comm_matches("multus-daemon", "multus"));
        assert!(!comm_matches("containerd", "multus"));
        assert!(!comm_matches("", "multus"));
        assert!(!comm_matches("multus", ""));
        // comm is cut at 15 bytes.
        assert!(comm_matches("my-long-meta-pl", "my-long-meta-plugin"));
    }

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
