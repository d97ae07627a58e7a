//! GC (CNI 1.1): remove the state of every attachment the runtime no longer
//! lists in `cni.dev/valid-attachments`: host links, port files, the agent
//! subscription and the Multus cache. Without the list nothing is removed:
//! deleting every pod on absent input could not be undone.

use super::{finish_vm, join_errors, remove_attachment, subscription_of, Ctx, Request};
use crate::cni::error::{Context, Result};
use crate::netlink::Socket;
use log::{info, warn};
use std::collections::HashSet;

pub fn gc(req: &Request) -> Result<()> {
    let ctx = Ctx::new(req);
    let Some(valid) = &req.conf.valid_attachments else {
        warn!("GC without cni.dev/valid-attachments: nothing removed");
        return Ok(());
    };
    let keep: HashSet<&str> = valid.iter().map(|a| a.container_id.as_str()).collect();
    let stale_owner = |owner: &str| !keep.contains(owner);
    let mut host: Option<Socket> = None;
    let mut errors = Vec::new();
    let mut removed = 0;
    for vm_name in ctx.store.vm_names()? {
        let _lock = ctx.store.lock_pod(&vm_name)?;
        let (ports, bad) = ctx.store.read_ports(&vm_name);
        let stale: Vec<_> = ports
            .iter()
            .filter(|p| stale_owner(p.port.vm_id.as_str()))
            .collect();
        if !stale.is_empty() && host.is_none() {
            host = Some(Socket::new().ctx("open netlink socket")?);
        }
        if let Some(h) = host.as_mut() {
            for pf in &stale {
                info!(
                    "GC: removing {} of container {} ({vm_name})",
                    pf.port.host_ifname, pf.port.vm_id
                );
                match remove_attachment(h, &ctx.store, pf) {
                    Ok(()) => removed += 1,
                    Err(e) => errors.push(e),
                }
            }
        }
        // Unreadable files go too when nothing valid is left beside them.
        if stale.len() == ports.len() {
            for b in &bad {
                warn!(
                    "GC: removing unreadable port file {}: {}",
                    b.path.display(),
                    b.reason
                );
                if let Err(e) = ctx.store.remove_file(&b.path) {
                    errors.push(e);
                }
            }
        }
        finish_vm(
            &ctx,
            &vm_name,
            subscription_of(stale.iter().copied()),
            &stale_owner,
        );
    }
    // Multus caches of pods that have no state left (an ADD killed between
    // the cache write and the first port file).
    for vm_name in ctx.store.multus_cache_names()? {
        if !ctx.store.vm_dir(&vm_name)?.exists() {
            let _lock = ctx.store.lock_pod(&vm_name)?;
            super::remove_multus_cache_if(&ctx, &vm_name, &stale_owner);
        }
    }
    info!(
        "GC: removed {removed} attachment(s), kept {} container(s)",
        keep.len()
    );
    join_errors("GC", errors)
}
