//! Configuration: built-in defaults <- node file <- stdin.
//!
//! CONTRACT (skeleton by the lead; the CNI-layer owner implements it).

use crate::cni::error::Result;
use std::path::PathBuf;

/// Environment variable: `:`-separated directories searched for the node
/// file instead of `/etc/cni/net.d:/etc/kubernetes/cni/net.d` (tests).
pub const CONF_DIRS_ENV: &str = "CONTRAIL_CNI_CONF_DIRS";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VifType {
    Veth,
    Macvlan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    K8s,
    Mesos,
}

/// The `contrail` object, merged and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contrail {
    pub cluster_name: String,
    pub mode: Mode,
    pub meta_plugin: String,
    /// Explicit delegate mode (`"delegate": true|false`); None = detect.
    pub delegate: Option<bool>,
    pub vif_type: VifType,
    pub parent_interface: String,
    pub mtu: u32,
    pub network_name: String,
    pub mesos_ip: String,
    pub mesos_port: u16,
    pub log_file: PathBuf,
    pub log_level: log::LevelFilter,
    /// Rotation: size of one file in bytes and how many rotated files to keep.
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub vrouter_ip: String,
    pub vrouter_port: u16,
    pub config_dir: PathBuf,
    /// Seconds.
    pub poll_timeout: u64,
    pub poll_retries: u32,
    /// IPv6 prefix length to use for the agent's v6 address (default 128).
    pub v6_prefix_len: Option<u8>,
}

/// One entry of `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
}

/// The whole request configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    /// "" in stdin means "0.1.0".
    pub cni_version: String,
    pub name: String,
    pub contrail: Contrail,
    pub prev_result: Option<serde_json::Value>,
    /// GC: `cni.dev/valid-attachments` (or `cni.dev/attachments`); None when absent.
    pub valid_attachments: Option<Vec<Attachment>>,
    /// The stdin bytes as received (Mesos forwards them).
    pub raw: String,
    /// Which node file was merged, if any.
    pub node_file: Option<PathBuf>,
}

/// Parses stdin and merges it over the node file and the defaults.
pub fn load(stdin: &[u8]) -> Result<NetConf> {
    let _ = stdin;
    todo!("cni owner")
}
