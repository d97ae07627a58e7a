//! Logging to a size-rotated file (simplelog), stderr when it cannot be opened.
//!
//! CONTRACT (skeleton by the lead; the CNI-layer owner implements it).

use crate::config::Contrail;

/// Installs the global logger. Each line carries time, level, pid, command
/// and container id. Never fails: falls back to stderr.
pub fn init(conf: &Contrail, command: &str, container_id: &str) {
    let _ = (conf, command, container_id);
    todo!("cni owner")
}
