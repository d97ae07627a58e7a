//! vRouter agent port-IPC client (blocking ureq, timeouts on every request).
//!
//! CONTRACT (skeleton by the lead; the agent owner implements it).

use crate::cni::error::Result;
use std::collections::BTreeMap;
use std::time::Duration;

/// Parsed `annotations` of a `/vm-cfg` element: `{key:value}` strings, split
/// at the first `:`; unknown keys kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Annotations(pub BTreeMap<String, String>);

impl Annotations {
    /// Parses the agent's strings; malformed entries are skipped, never panic.
    pub fn parse(raw: &[String]) -> Annotations {
        let _ = raw;
        todo!("agent owner")
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// `index` as (i, total), None when absent or malformed.
    pub fn index(&self) -> Option<(u32, u32)> {
        todo!()
    }
    pub fn network(&self) -> Option<&str> {
        self.get("network")
    }
    pub fn interface(&self) -> Option<&str> {
        self.get("interface")
    }
}

/// One element of `GET /vm-cfg/<vm-name>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VmiConfig {
    /// VMI UUID (`id`), lower-cased.
    pub id: String,
    /// VM UUID (`vm-uuid`): the pod UID, lower-cased.
    pub vm_uuid: String,
    pub vn_id: String,
    pub vn_name: String,
    pub mac_address: String,
    /// 65535 when the VMI is not a VLAN sub-interface.
    pub vlan_id: u32,
    pub annotations: Annotations,
}

/// One element of `GET /vm/<vm-uuid>[/<vmi-uuid>]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VmiOper {
    pub id: String,
    pub instance_id: String,
    pub vn_id: String,
    pub mac_address: String,
    pub ip_address: Option<String>,
    pub plen: Option<u8>,
    pub gateway: Option<String>,
    pub dns_server: Option<String>,
    pub v6_ip_address: Option<String>,
    pub v6_gateway: Option<String>,
    pub v6_dns_server: Option<String>,
}

/// The body of `POST /vm`, also the content of the port file's agent part.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortRequest {
    #[serde(rename = "vm-uuid")]
    pub vm_uuid: String,
    #[serde(rename = "vm-name")]
    pub vm_name: String,
    #[serde(rename = "host-ifname")]
    pub host_ifname: String,
    #[serde(rename = "vn-uuid")]
    pub vn_uuid: String,
    #[serde(rename = "vmi-uuid")]
    pub vmi_uuid: String,
    /// The CNI container id.
    #[serde(rename = "vm-id")]
    pub vm_id: String,
    /// The interface name inside the pod.
    #[serde(rename = "vm-ifname")]
    pub vm_ifname: String,
    /// The netns path (as the reference sends it).
    #[serde(rename = "vm-namespace")]
    pub vm_namespace: String,
}

/// A client of one agent, with the poll budget of one phase:
/// `poll_retries` x `poll_timeout`.
pub struct Agent {
    _private: (),
}

#[allow(unused_variables)]
impl Agent {
    pub fn new(ip: &str, port: u16, poll_timeout: Duration, poll_retries: u32) -> Agent {
        todo!()
    }
    /// `ip:port`, for messages.
    pub fn address(&self) -> String {
        todo!()
    }
    /// Polls `/vm-cfg/<vm_name>` until the list is complete (`index` total);
    /// code 11 when the deadline passes, naming agent, VM, last status and body.
    pub fn poll_vm_cfg(&self, vm_name: &str) -> Result<Vec<VmiConfig>> {
        todo!()
    }
    /// Polls `/vm/<vm_uuid>` (or `/vm/<vm_uuid>/<vmi>` when exactly one VMI
    /// is asked for) until every VMI in `vmis` has an IPv4 or IPv6 address.
    /// Returns them in the order of `vmis`. Code 11 on deadline.
    pub fn poll_vm(&self, vm_uuid: &str, vmis: &[&str]) -> Result<Vec<VmiOper>> {
        todo!()
    }
    /// One `GET /vm/<vm>/<vmi>` (no polling), for CHECK.
    pub fn get_vmi(&self, vm_uuid: &str, vmi_uuid: &str) -> Result<Option<VmiOper>> {
        todo!()
    }
    pub fn post_vm(&self, req: &PortRequest) -> Result<()> {
        todo!()
    }
    /// `DELETE /vm/<vm_uuid>`.
    pub fn delete_vm(&self, vm_uuid: &str) -> Result<()> {
        todo!()
    }
    /// Ok when the agent answers any HTTP response within `timeout` (STATUS).
    pub fn probe(&self, timeout: Duration) -> Result<()> {
        todo!()
    }
}

/// Mesos manager notification: `POST http://<ip>:<port>/<add|del>_cni_info`
/// with `{"cid","cmd","args"}` (args = the raw stdin config as a string).
pub fn mesos_notify(ip: &str, port: u16, cmd: &str, container_id: &str, stdin: &str) -> Result<()> {
    let _ = (ip, port, cmd, container_id, stdin);
    todo!()
}
