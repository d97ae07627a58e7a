//! The one way attachments are removed, for DEL, GC, ADD's leftovers and
//! rollback: check each host link is the plugin's own for that port file
//! ([`plan::may_delete`]), delete all of them in one kernel batch, then
//! remove the port files. A link that is not ours is left alone and its
//! port file still goes (the attachment it recorded is gone).

use super::plan;
use crate::cni::error::{Context, Error, Result};
use crate::ids::ContainerId;
use crate::netlink::Socket;
use crate::store::{BadFile, PortFile, Store};
use crate::vif;
use crate::vif::names::{owner, Owner};
use log::{info, warn};

/// Removes `ports` (their links, then their files) and the unreadable
/// entries `bad`. Every error is collected; as long as a link may still
/// exist its port file is kept, so a retry can find it.
pub fn remove(
    host: &mut Socket,
    store: &Store,
    ports: &[&PortFile],
    bad: &[&BadFile],
) -> Vec<Error> {
    let mut errors = Vec::new();
    let mut doomed = Vec::with_capacity(ports.len());
    for pf in ports {
        let name = &pf.port.host_ifname;
        match host.link_by_name(name) {
            Ok(Some(l)) if plan::may_delete(pf, l.alias.as_deref(), l.group) => {
                doomed.push(l.index)
            }
            Ok(Some(l)) => warn!(
                "host link {name} is not the plugin's link of container {} (alias {:?}, group {}): left alone",
                pf.port.vm_id, l.alias, l.group
            ),
            Ok(None) => {}
            Err(e) => errors.push(Error::from(e).context(format!("look up {name}"))),
        }
    }
    if let Err(e) = vif::delete(host, &doomed) {
        errors.push(e);
        return errors;
    }
    for pf in ports {
        info!(
            "removed {} of container {} (VMI {})",
            pf.port.host_ifname, pf.port.vm_id, pf.port.vmi_uuid
        );
        if let Err(e) = store.remove_port(&pf.port.vm_name, &pf.port.vmi_uuid) {
            errors.push(e);
        }
    }
    for b in bad {
        warn!(
            "removing unusable entry {} of {}: {}",
            b.name, b.vm, b.reason
        );
        if let Err(e) = store.remove_bad(b) {
            errors.push(e);
        }
    }
    errors
}

/// [`remove`] as one result.
pub fn remove_all(
    host: &mut Socket,
    store: &Store,
    ports: &[&PortFile],
    bad: &[&BadFile],
    what: &str,
) -> Result<()> {
    super::join_errors(what, remove(host, store, ports, bad))
}

/// Deletes every host link whose mark names a container `which` selects
/// (a sweep by mark: port files may be gone or corrupt). Returns how many.
pub fn remove_marked(host: &mut Socket, which: impl Fn(&ContainerId) -> bool) -> Result<usize> {
    let doomed: Vec<u32> = host
        .links()
        .ctx("list links")?
        .into_iter()
        .filter(|l| match owner(&l.name, l.alias.as_deref(), l.group) {
            Owner::Container(c) => which(&c),
            _ => false,
        })
        .inspect(|l| {
            info!(
                "removing {} ({})",
                l.name,
                l.alias.as_deref().unwrap_or_default()
            )
        })
        .map(|l| l.index)
        .collect();
    vif::delete(host, &doomed)?;
    Ok(doomed.len())
}
