//! The one way attachments are removed, for DEL, GC, ADD's leftovers and
//! rollback: check each host link is the plugin's own for that port file
//! ([`plan::may_delete`]), delete all of them in one kernel batch, then
//! remove the port files. A link that is not ours is left alone and its
//! port file still goes (the attachment it recorded is gone).

use super::plan;
use crate::cni::error::{Context, Error, Result};
use crate::ids::{ContainerId, IfName};
use crate::netlink::{Link, Socket};
use crate::store::{BadFile, PortFile, Store};
use crate::vif;
use crate::vif::names::{owner, Owner};
use log::{info, warn};
use std::collections::HashMap;

/// Removes `ports` (their links, then their files) and the unusable entries
/// `bad`, looking each link up by name. Every error is collected; as long
/// as a link may still exist its port file is kept, so a retry finds it.
pub fn remove(
    host: &mut Socket,
    store: &Store,
    ports: &[&PortFile],
    bad: &[&BadFile],
) -> Vec<Error> {
    let mut errors = Vec::new();
    let doomed = doomed_links(
        ports,
        |n| host.link_by_name(n).map_err(Error::from),
        &mut errors,
    );
    finish(host, store, ports, bad, doomed, errors)
}

/// [`remove`] for many attachments at once (GC, or a DEL whose directory
/// holds unusable entries), from one link dump, and also every host link
/// whose mark names a container `swept` selects, port file or not: all of
/// them in one kernel batch.
pub fn remove_swept(
    host: &mut Socket,
    store: &Store,
    ports: &[&PortFile],
    bad: &[&BadFile],
    swept: impl Fn(&ContainerId) -> bool,
) -> Vec<Error> {
    let mut errors = Vec::new();
    let links = match host.links().ctx("list links") {
        Ok(l) => l,
        Err(e) => return vec![e],
    };
    let by_name: HashMap<&str, &Link> = links.iter().map(|l| (l.name.as_str(), l)).collect();
    let mut doomed = doomed_links(
        ports,
        |n| Ok(by_name.get(n.as_str()).map(|l| (*l).clone())),
        &mut errors,
    );
    for l in &links {
        if let Owner::Container(c) = owner(&l.name, l.alias.as_deref(), l.group) {
            if swept(&c) && !doomed.contains(&l.index) {
                info!("removing {} marked for container {c}", l.name);
                doomed.push(l.index);
            }
        }
    }
    finish(host, store, ports, bad, doomed, errors)
}

/// The indexes of the links of `ports` the plugin may delete.
fn doomed_links(
    ports: &[&PortFile],
    mut link_of: impl FnMut(&IfName) -> Result<Option<Link>>,
    errors: &mut Vec<Error>,
) -> Vec<u32> {
    let mut doomed = Vec::with_capacity(ports.len());
    for pf in ports {
        let name = &pf.port.host_ifname;
        match link_of(name) {
            Ok(Some(l)) if plan::may_delete(pf, l.alias.as_deref(), l.group) => {
                doomed.push(l.index)
            }
            Ok(Some(l)) => warn!(
                "host link {name} is not the plugin's link of container {} (alias {:?}, group {}): left alone",
                pf.port.vm_id, l.alias, l.group
            ),
            Ok(None) => {}
            Err(e) => errors.push(e.context(format!("look up {name}"))),
        }
    }
    doomed
}

/// Deletes `doomed` in one batch, then the port files and bad entries.
fn finish(
    host: &mut Socket,
    store: &Store,
    ports: &[&PortFile],
    bad: &[&BadFile],
    doomed: Vec<u32>,
    mut errors: Vec<Error>,
) -> Vec<Error> {
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
