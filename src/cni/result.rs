//! One internal result model, encoded per `cniVersion`.
//!
//! CONTRACT (skeleton by the lead; the CNI-layer owner implements it).

use super::error::Result;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<RouteEntry>,
    pub dns: Dns,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// CNI_NETNS for container interfaces, None for host ones.
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub dst: IpAddr,
    pub dst_len: u8,
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl CniResult {
    /// The result JSON in exactly `version`'s shape (0.1.0/0.2.0 ip4/ip6;
    /// 0.3.x/0.4.0 with ips[].version; 1.x without).
    pub fn to_json(&self, version: &str) -> Result<serde_json::Value> {
        let _ = version;
        todo!("cni owner")
    }
    /// Parses a `prevResult` given under config version `version`; code 6.
    pub fn from_json(value: &serde_json::Value, version: &str) -> Result<CniResult> {
        let _ = (value, version);
        todo!()
    }
    /// Appends `other`, re-basing its interface indices; DNS nameservers merged.
    pub fn append(&mut self, other: CniResult) {
        let _ = other;
        todo!()
    }
}
