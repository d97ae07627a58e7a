//! On-disk state: the port files the agent reloads, the Multus cache, the
//! per-pod lock.
//!
//! CONTRACT (skeleton by the lead; the agent owner implements it).
//!
//! Layout: `<config-dir>/<vm-name>/<vmi-uuid>` port files (dirs 0700, files
//! 0600, atomic: temp name not starting with a UUID, fsync, rename, fsync
//! dir); `<config-dir>/../multus/<vm-name>` Multus cache;
//! `<config-dir>/../cni-locks/<vm-name>.lock` per-pod flock.

use crate::agent::{PortRequest, VmiConfig};
use crate::cni::error::Result;
use std::path::{Path, PathBuf};

/// A port file: the agent's fields (flattened) plus what DEL, CHECK and GC
/// need so they never recompute a name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortFile {
    #[serde(flatten)]
    pub port: PortRequest,
    /// "veth" or "macvlan".
    #[serde(rename = "vif-type")]
    pub vif_type: String,
    /// Pod UID from CNI_ARGS K8S_POD_UID, empty when the runtime sent none.
    #[serde(rename = "pod-uid", default)]
    pub pod_uid: String,
    /// The CNI network name this VMI was configured for.
    #[serde(rename = "network", default)]
    pub network: String,
    /// The `index` of the VMI (0 = primary).
    #[serde(rename = "index", default)]
    pub index: u32,
    /// Nested mode: the VLAN id and VLAN link name on the parent.
    #[serde(rename = "vlan-id", default, skip_serializing_if = "Option::is_none")]
    pub vlan_id: Option<u16>,
}

/// The Multus cache: the `/vm-cfg` answer of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MultusCache {
    #[serde(rename = "container-id")]
    pub container_id: String,
    #[serde(rename = "pod-uid", default)]
    pub pod_uid: String,
    pub vmis: Vec<VmiConfig>,
}

/// A port file that could not be read or parsed.
#[derive(Debug, Clone)]
pub struct BadPortFile {
    pub path: PathBuf,
    pub reason: String,
}

/// Held for the whole command; released on drop.
pub struct PodLock {
    _private: (),
}

pub struct Store {
    dir: PathBuf,
}

#[allow(unused_variables)]
impl Store {
    pub fn new(config_dir: &Path) -> Store {
        Store {
            dir: config_dir.to_path_buf(),
        }
    }
    pub fn config_dir(&self) -> &Path {
        &self.dir
    }
    /// Takes the per-pod lock (blocking flock), creating directories as needed.
    pub fn lock_pod(&self, vm_name: &str) -> Result<PodLock> {
        todo!()
    }
    pub fn write_port(&self, pf: &PortFile) -> Result<()> {
        todo!()
    }
    /// Every port file of the VM; unreadable ones are reported, not fatal.
    pub fn read_ports(&self, vm_name: &str) -> (Vec<PortFile>, Vec<BadPortFile>) {
        todo!()
    }
    /// Removes one port file (absent is fine).
    pub fn remove_port(&self, vm_name: &str, vmi_uuid: &str) -> Result<()> {
        todo!()
    }
    /// Removes a bad file found by `read_ports` (absent is fine).
    pub fn remove_file(&self, path: &Path) -> Result<()> {
        todo!()
    }
    /// Removes the VM directory when it is empty (absent is fine).
    pub fn remove_vm_dir_if_empty(&self, vm_name: &str) -> Result<()> {
        todo!()
    }
    /// Names of every VM directory (for GC).
    pub fn vm_names(&self) -> Result<Vec<String>> {
        todo!()
    }
    pub fn write_multus_cache(&self, vm_name: &str, cache: &MultusCache) -> Result<()> {
        todo!()
    }
    /// None when absent or unreadable (an unreadable cache is removed and logged).
    pub fn read_multus_cache(&self, vm_name: &str) -> Option<MultusCache> {
        todo!()
    }
    pub fn remove_multus_cache(&self, vm_name: &str) -> Result<()> {
        todo!()
    }
}
