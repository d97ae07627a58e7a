//! The agent's JSON, decoded into typed values (docs/agent-api.md §3, §4,
//! §6 and §10).
//!
//! Everything the agent sends is untrusted data: UUIDs end up in file names
//! and URLs, MACs and addresses in netlink requests, interface names in the
//! pod. Decoding checks every value once and tells two kinds of rejection
//! apart ([`Reject`]): an answer that is not complete yet (poll again) and
//! one that can never be used (fail at once, code 101).

use crate::ids::{check_unicast, ContainerId, IfName, IpNet, Mac, Uuid, VmName};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The most VMIs (interfaces) one pod may have. A longer list, or an
/// `index` total above it, makes the answer invalid: each VMI costs a veth,
/// a port file and a POST within one command's deadline.
pub const MAX_VMIS: usize = 32;

/// The most annotations one VMI may carry (kube-manager writes about ten):
/// more makes the answer invalid, before they are parsed (each key is
/// looked up among the earlier ones).
pub const MAX_ANNOTATIONS: usize = 64;

/// `vlan-id` of a VMI that is not a VLAN sub-interface.
pub const NO_VLAN: u16 = 65535;

/// Why an agent answer was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Not complete yet (a partial list while kube-manager creates VMIs, a
    /// VMI with no address yet, a body cut short): poll again.
    NotYet(String),
    /// The answer can never be used (a multicast address, duplicate VMIs,
    /// more than [`MAX_VMIS`]...): fail at once.
    Invalid(String),
}

impl Reject {
    /// The reason, whatever the kind.
    pub fn reason(&self) -> &str {
        match self {
            Reject::NotYet(s) | Reject::Invalid(s) => s,
        }
    }
}

/// Parsed `annotations` of a `/vm-cfg` element: `{key:value}` strings, split
/// at the first `:`; unknown keys kept, each key once, in the agent's
/// order. A handful per VMI: a list, not a map (a `BTreeMap<String,
/// String>` costs about 3 KB of code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations(Vec<(String, String)>);

impl Annotations {
    /// Parses the agent's strings; malformed entries are skipped, never panic;
    /// of duplicate keys the last wins.
    ///
    /// The agent writes `{` + key + `:` + value + `}` with no quoting, so we
    /// strip exactly one brace on each side (tolerating their absence), split
    /// at the first `:` (values may contain colons) and keep the rest as is.
    pub fn parse(raw: &[String]) -> Annotations {
        let mut list: Vec<(String, String)> = Vec::new();
        for s in raw {
            let inner = s.strip_prefix('{').unwrap_or(s);
            let inner = inner.strip_suffix('}').unwrap_or(inner);
            match inner.split_once(':') {
                Some((k, v)) if !k.is_empty() => match list.iter_mut().find(|(n, _)| n == k) {
                    Some((_, old)) => *old = v.to_string(),
                    None => list.push((k.to_string(), v.to_string())),
                },
                _ => log::debug!("skipping malformed annotation {s:?}"),
            }
        }
        Annotations(list)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every (key, value), in the agent's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `index` as (i, total), None when absent or malformed (including
    /// `total == 0` and `i >= total`).
    pub fn index(&self) -> Option<(u32, u32)> {
        let (i, total) = self.get("index")?.split_once('/')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(i) || !digits(total) {
            return None;
        }
        let (i, total) = (i.parse::<u32>().ok()?, total.parse::<u32>().ok()?);
        (i < total).then_some((i, total))
    }

    /// The network name: `default` for the cluster network, else the
    /// NetworkAttachmentDefinition name.
    pub fn network(&self) -> Option<&str> {
        self.get("network")
    }

    /// The interface name the pod's networks annotation asked for, if any.
    pub fn interface(&self) -> Option<&str> {
        self.get("interface")
    }
}

/// One VMI of `GET /vm-cfg/<vm-name>`, checked. The Multus cache keeps it
/// in the agent's form ([`encode_vm_cfg`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmiConfig {
    /// The VMI (`id`).
    pub id: Uuid,
    /// The VM (`vm-uuid`, `instance-id` on older agents): the pod UID.
    pub vm_uuid: Uuid,
    /// The VMI's VN (`vn-id`): the `vn-uuid` of the POST.
    pub vn_id: Uuid,
    /// The VN's FQ name, informational.
    pub vn_name: String,
    /// The configured MAC, unicast.
    pub mac: Mac,
    /// The VLAN tag (1..=4094) of a sub-interface (nested mode); None when
    /// the agent says 65535, "not a sub-interface".
    pub vlan_id: Option<u16>,
    /// `i` of the `index` annotation `i/total`: 0 for the cluster network.
    pub index: u32,
    /// The `network` annotation.
    pub network: Option<String>,
    /// The `interface` annotation: the name the pod asked for.
    pub ifname: Option<IfName>,
    /// Every annotation, as parsed.
    pub annotations: Annotations,
}

impl VmiConfig {
    /// The invariants a type cannot carry: a unicast MAC, a VLAN tag in
    /// range, `index` equal to the annotation's. Checked on the agent's
    /// answer and on a cached copy alike.
    fn check(&self) -> Result<(), String> {
        let id = &self.id;
        // The agent stores a nil UUID but never binds it (docs/agent-api.md §4).
        for (field, u) in [
            ("id", id),
            ("vm-uuid", &self.vm_uuid),
            ("vn-id", &self.vn_id),
        ] {
            if is_nil(u) {
                return Err(format!("VMI {id}: {field} is the nil UUID"));
            }
        }
        self.mac
            .check_unicast("mac-address")
            .map_err(|e| format!("VMI {id}: {e}"))?;
        if let Some(v) = self.vlan_id {
            if !(1..=4094).contains(&v) {
                return Err(format!("VMI {id}: vlan-id {v} is not 1..=4094 or 65535"));
            }
        }
        match self.annotations.index() {
            Some((i, _)) if i == self.index => Ok(()),
            Some((i, _)) => Err(format!(
                "VMI {id}: index {} differs from its annotation {i}",
                self.index
            )),
            None => Err(format!(
                "VMI {id} has no valid index annotation (got {:?})",
                self.annotations.get("index").unwrap_or("nothing")
            )),
        }
    }

    /// `total` of the `index` annotation.
    fn total(&self) -> u32 {
        self.annotations.index().map_or(0, |(_, t)| t)
    }
}

/// One VMI of `GET /vm/<vm-uuid>[/<vmi-uuid>]`, checked. `None` means the
/// agent sent nothing, an empty string or the unspecified address: no
/// address yet, no gateway, no DNS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmiOper {
    /// The VMI (`id`).
    pub id: Uuid,
    /// The oper MAC (`mac-address`), unicast.
    pub mac: Option<Mac>,
    /// `ip-address` / `plen`: a unicast host address (`IpNet::check_host`).
    pub v4: Option<IpNet>,
    /// `gateway`, an IPv4 unicast address.
    pub v4_gateway: Option<IpAddr>,
    /// `dns-server`, an IPv4 unicast address.
    pub v4_dns: Option<IpAddr>,
    /// `v6-ip-address`, unicast; the agent sends no IPv6 prefix length.
    pub v6: Option<Ipv6Addr>,
    /// `v6-gateway`, an IPv6 unicast address.
    pub v6_gateway: Option<IpAddr>,
    /// `v6-dns-server`, an IPv6 unicast address.
    pub v6_dns: Option<IpAddr>,
}

impl VmiOper {
    /// True once the agent has given the VMI an IPv4 or IPv6 address.
    pub fn has_address(&self) -> bool {
        self.v4.is_some() || self.v6.is_some()
    }
}

/// The body of `POST /vm`, also the agent's part of a port file
/// (docs/agent-api.md §4, §7). Every value is typed, so a port file that
/// names an impossible interface or VM does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    /// The pod UID (the VMIs' `vm-uuid`).
    pub vm_uuid: Uuid,
    /// The name the agent knows the pod by; also a directory name of the
    /// agent's own port file.
    pub vm_name: VmName,
    /// Host side: the veth's tap, or the VLAN link in nested mode.
    pub host_ifname: IfName,
    /// Must be the VMI's configured VN (`vn-id` of `/vm-cfg`).
    pub vn_uuid: Uuid,
    /// The VMI.
    pub vmi_uuid: Uuid,
    /// The CNI container id.
    pub vm_id: ContainerId,
    /// The interface name inside the pod.
    pub vm_ifname: IfName,
    /// The netns path (as the reference sends it); stored, never used.
    pub vm_namespace: String,
}

impl PortRequest {
    /// The members, named and ordered as the agent's own port files have
    /// them.
    pub fn members(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("vm-uuid", self.vm_uuid.as_str().into()),
            ("vm-name", self.vm_name.as_str().into()),
            ("host-ifname", self.host_ifname.as_str().into()),
            ("vn-uuid", self.vn_uuid.as_str().into()),
            ("vmi-uuid", self.vmi_uuid.as_str().into()),
            ("vm-id", self.vm_id.as_str().into()),
            ("vm-ifname", self.vm_ifname.as_str().into()),
            ("vm-namespace", self.vm_namespace.as_str().into()),
        ]
    }

    /// The `POST /vm` body.
    pub fn to_json(&self) -> String {
        object_text(&self.members(), false)
    }
}

/// The JSON object of `members`, in their order: compact (`{"k":v,...}`)
/// or pretty, as serde_json writes both. (serde_json's own maps sort their
/// keys; a derived `Serialize` for the two shapes costs 1.5 KB more.)
pub fn object_text(members: &[(&str, serde_json::Value)], pretty: bool) -> String {
    let (open, between, colon, close) = match pretty {
        true => ("{\n  ", ",\n  ", ": ", "\n}"),
        false => ("{", ",", ":", "}"),
    };
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}{colon}{v}", serde_json::Value::from(*k)))
        .collect();
    format!("{open}{}{close}", members.join(between))
}

/// A `/vm-cfg` element as the agent sends it. Agents before 2020-05 called
/// `vm-uuid` `instance-id`.
struct WireVmiConfig {
    id: String,
    vm_uuid: String,
    vn_id: String,
    vn_name: String,
    mac_address: String,
    /// Wider than the field, so that an out-of-range number is our error;
    /// 65535 when absent.
    vlan_id: u64,
    /// Left out by the agent when the VMI has no annotations.
    annotations: Vec<String>,
}

impl WireVmiConfig {
    fn read(m: &Members) -> Result<WireVmiConfig, String> {
        let vm_uuid = match m.string("vm-uuid", false)? {
            Some(u) => u,
            None => m
                .string("instance-id", false)?
                .ok_or("missing field `vm-uuid`")?,
        };
        Ok(WireVmiConfig {
            id: m.required("id")?,
            vm_uuid,
            vn_id: m.required("vn-id")?,
            vn_name: m.string("vn-name", false)?.unwrap_or_default(),
            mac_address: m.required("mac-address")?,
            vlan_id: m.number("vlan-id", false)?.unwrap_or(u64::from(NO_VLAN)),
            annotations: m.strings("annotations")?,
        })
    }
}

/// The members of one element of an agent answer, read by name: absent
/// ones get their default, one of the wrong type is an error naming its
/// key. By hand through `serde_json::Value` (parsed anyway) rather than a
/// derived `Deserialize` per wire struct, which costs several KB of code
/// each (docs/performance.md).
struct Members<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl Members<'_> {
    /// A string; None when absent or, with `null_is_none`, null.
    fn string(&self, key: &str, null_is_none: bool) -> Result<Option<String>, String> {
        match self.0.get(key) {
            None => Ok(None),
            Some(serde_json::Value::Null) if null_is_none => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(format!("{key} is a JSON {}, not a string", json_kind(v))),
        }
    }

    fn required(&self, key: &str) -> Result<String, String> {
        self.string(key, false)?
            .ok_or_else(|| format!("missing field `{key}`"))
    }

    /// A non-negative integer; None when absent or, with `null_is_none`,
    /// null.
    fn number(&self, key: &str, null_is_none: bool) -> Result<Option<u64>, String> {
        match self.0.get(key) {
            None => Ok(None),
            Some(serde_json::Value::Null) if null_is_none => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("{key} {v} is not a non-negative integer")),
        }
    }

    /// An array of strings; empty when absent.
    fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        let Some(v) = self.0.get(key) else {
            return Ok(Vec::new());
        };
        v.as_array()
            .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_string)).collect())
            .ok_or_else(|| format!("{key} is not an array of strings"))
    }
}

fn is_nil(u: &Uuid) -> bool {
    u.as_str() == "00000000-0000-0000-0000-000000000000"
}

fn uuid(field: &str, v: &str) -> Result<Uuid, String> {
    Uuid::parse(v).map_err(|e| format!("{field}: {e}"))
}

impl WireVmiConfig {
    fn decode(self) -> Result<VmiConfig, String> {
        let id = uuid("id", &self.id)?;
        let vlan_id = match self.vlan_id {
            v if v == u64::from(NO_VLAN) => None,
            v => Some(
                u16::try_from(v).map_err(|_| format!("VMI {id}: vlan-id {v} is out of range"))?,
            ),
        };
        if self.annotations.len() > MAX_ANNOTATIONS {
            return Err(format!(
                "VMI {id}: {} annotations, more than {MAX_ANNOTATIONS}",
                self.annotations.len()
            ));
        }
        let annotations = Annotations::parse(&self.annotations);
        let ifname = annotations
            .interface()
            .map(IfName::parse)
            .transpose()
            .map_err(|e| format!("VMI {id}: interface annotation: {e}"))?;
        Ok(VmiConfig {
            vm_uuid: uuid("vm-uuid", &self.vm_uuid).map_err(|e| format!("VMI {id}: {e}"))?,
            vn_id: uuid("vn-id", &self.vn_id).map_err(|e| format!("VMI {id}: {e}"))?,
            vn_name: self.vn_name,
            mac: Mac::parse(&self.mac_address).map_err(|e| format!("VMI {id}: {e}"))?,
            vlan_id,
            index: annotations.index().map_or(u32::MAX, |(i, _)| i),
            network: annotations.network().map(str::to_string),
            ifname,
            annotations,
            id,
        })
    }
}

/// A JSON array, or why not: bad syntax is "not yet" (a body cut short by a
/// dying agent looks the same), another JSON value is invalid.
fn array(body: &str) -> Result<Vec<serde_json::Value>, Reject> {
    // from_slice, as every parse in the plugin: one serde_json reader in
    // the binary, not two (about 5 KB, docs/performance.md).
    let v: serde_json::Value = serde_json::from_slice(body.as_bytes())
        .map_err(|e| Reject::NotYet(format!("body is not JSON ({e})")))?;
    match v {
        serde_json::Value::Array(a) if a.is_empty() => Err(Reject::NotYet("empty VMI list".into())),
        serde_json::Value::Array(a) if a.len() > MAX_VMIS => Err(Reject::Invalid(format!(
            "{} VMIs, more than the {MAX_VMIS} a pod may have",
            a.len()
        ))),
        serde_json::Value::Array(a) => Ok(a),
        other => Err(Reject::Invalid(format!(
            "body is a JSON {}, not an array",
            json_kind(&other)
        ))),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Element `i` of an answer, read by `read`.
fn element<T>(
    i: usize,
    v: &serde_json::Value,
    read: impl FnOnce(&Members) -> Result<T, String>,
) -> Result<T, Reject> {
    let members = v
        .as_object()
        .map(Members)
        .ok_or_else(|| format!("a JSON {}, not an object", json_kind(v)));
    members
        .and_then(|m| read(&m))
        .map_err(|e| Reject::Invalid(format!("element {i}: {e}")))
}

/// Decodes a `GET /vm-cfg/<vm-name>` answer: every VMI checked, then the
/// list as a whole ([`check_vm_cfg`]). Returns the VMIs sorted by index.
pub fn decode_vm_cfg(body: &str) -> Result<Vec<VmiConfig>, Reject> {
    let mut vmis = decode_vmis(&array(body)?)?;
    check_vm_cfg(&vmis)?;
    vmis.sort_unstable_by_key(|v| v.index);
    Ok(vmis)
}

/// Each element of `list` decoded and typed as a `/vm-cfg` element, in
/// order; the rules of a whole list ([`check_vm_cfg`]) are not applied.
/// Reads back the Multus cache's [`encode_vm_cfg`].
pub fn decode_vmis(list: &[serde_json::Value]) -> Result<Vec<VmiConfig>, Reject> {
    let mut vmis = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let wire = element(i, v, WireVmiConfig::read)?;
        vmis.push(wire.decode().map_err(Reject::Invalid)?);
    }
    Ok(vmis)
}

/// `vmis` as the agent sends them, for the Multus cache: read back by
/// [`decode_vmis`] into the same values.
pub fn encode_vm_cfg(vmis: &[VmiConfig]) -> serde_json::Value {
    let encode = |v: &VmiConfig| {
        let annotations: Vec<String> = v
            .annotations
            .iter()
            .map(|(k, x)| format!("{{{k}:{x}}}"))
            .collect();
        let mut o = serde_json::Map::new();
        o.insert("id".into(), v.id.as_str().into());
        o.insert("vm-uuid".into(), v.vm_uuid.as_str().into());
        o.insert("vn-id".into(), v.vn_id.as_str().into());
        o.insert("vn-name".into(), v.vn_name.as_str().into());
        o.insert("mac-address".into(), v.mac.to_string().into());
        o.insert("vlan-id".into(), v.vlan_id.unwrap_or(NO_VLAN).into());
        o.insert("annotations".into(), annotations.into());
        serde_json::Value::Object(o)
    };
    vmis.iter().map(encode).collect()
}

/// The rules of a VMI list (docs/agent-api.md §10), for the agent's answer
/// and for a cached copy: every VMI valid ([`VmiConfig`]), ids unique, one
/// VM, one `index` total of at most [`MAX_VMIS`], each index once,
/// `interface` names unique. All of these are [`Reject::Invalid`]; a list
/// that passes but is shorter than its total is [`Reject::NotYet`].
pub fn check_vm_cfg(vmis: &[VmiConfig]) -> Result<(), Reject> {
    let invalid = |s: String| Reject::Invalid(s);
    let Some(first) = vmis.first() else {
        return Err(Reject::NotYet("empty VMI list".into()));
    };
    if vmis.len() > MAX_VMIS {
        return Err(invalid(format!(
            "{} VMIs, more than the {MAX_VMIS} a pod may have",
            vmis.len()
        )));
    }
    let total = first.total();
    // At most MAX_VMIS entries: comparing with the ones before is cheaper
    // than hash sets, in time and in code.
    for (i, v) in vmis.iter().enumerate() {
        let before = &vmis[..i];
        v.check().map_err(invalid)?;
        if before.iter().any(|w| w.id == v.id) {
            return Err(invalid(format!("VMI {} is listed twice", v.id)));
        }
        if v.vm_uuid != first.vm_uuid {
            return Err(invalid(format!(
                "VMIs of different VMs: {} of {}, {} of {}",
                first.id, first.vm_uuid, v.id, v.vm_uuid
            )));
        }
        if v.total() != total {
            return Err(invalid(format!(
                "VMIs disagree on the index total: {} says {total}, {} says {}",
                first.id,
                v.id,
                v.total()
            )));
        }
        if before.iter().any(|w| w.index == v.index) {
            return Err(invalid(format!("index {} appears twice", v.index)));
        }
        if let Some(name) = &v.ifname {
            if before.iter().any(|w| w.ifname.as_ref() == Some(name)) {
                return Err(invalid(format!("two VMIs ask for interface name {name}")));
            }
        }
    }
    if total as usize > MAX_VMIS {
        return Err(invalid(format!(
            "index total {total} is more than the {MAX_VMIS} VMIs a pod may have"
        )));
    }
    if vmis.len() < total as usize {
        return Err(Reject::NotYet(format!(
            "incomplete: {} of {total} VMIs",
            vmis.len()
        )));
    }
    Ok(())
}

/// A `/vm` element as the agent sends it; fields we do not use are ignored.
/// Absent and null are the same.
struct WireVmiOper {
    id: String,
    instance_id: Option<String>,
    mac_address: Option<String>,
    ip_address: Option<String>,
    plen: Option<u64>,
    gateway: Option<String>,
    dns_server: Option<String>,
    v6_ip_address: Option<String>,
    v6_gateway: Option<String>,
    v6_dns_server: Option<String>,
}

/// An address field: None when absent, empty or unspecified ("none");
/// otherwise it must parse as the family `T` and be unicast.
fn addr<T>(field: &str, v: Option<&str>) -> Result<Option<T>, String>
where
    T: std::str::FromStr + Into<IpAddr> + Copy,
{
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let a: T = s
        .parse()
        .map_err(|_| format!("{field} {} is not an address of its family", printable(s)))?;
    let ip: IpAddr = a.into();
    if ip.is_unspecified() {
        return Ok(None);
    }
    check_unicast(&ip).map_err(|why| format!("{field} {ip} {why}"))?;
    Ok(Some(a))
}

fn printable(s: &str) -> String {
    crate::ids::printable(s, 64)
}

impl WireVmiOper {
    fn read(m: &Members) -> Result<WireVmiOper, String> {
        let s = |key| m.string(key, true);
        Ok(WireVmiOper {
            id: m.required("id")?,
            instance_id: s("instance-id")?,
            mac_address: s("mac-address")?,
            ip_address: s("ip-address")?,
            plen: m.number("plen", true)?,
            gateway: s("gateway")?,
            dns_server: s("dns-server")?,
            v6_ip_address: s("v6-ip-address")?,
            v6_gateway: s("v6-gateway")?,
            v6_dns_server: s("v6-dns-server")?,
        })
    }

    fn decode(self, vm: &Uuid) -> Result<VmiOper, String> {
        let id = uuid("id", &self.id)?;
        let ctx = |e: String| format!("VMI {id}: {e}");
        // Form 2 answers for the VMI whatever VM the path names
        // (docs/agent-api.md §6): a VMI of another VM is not ours.
        if let Some(owner) = self.instance_id.as_deref().filter(|s| !s.is_empty()) {
            let owner = uuid("instance-id", owner).map_err(ctx)?;
            if !is_nil(&owner) && owner != *vm {
                return Err(ctx(format!("belongs to VM {owner}, not {vm}")));
            }
        }
        let mac = match self.mac_address.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                Mac::parse(s)
                    .and_then(|m| m.check_unicast("mac-address"))
                    .map_err(|e| ctx(e.to_string()))?,
            ),
        };
        let v4 =
            match addr_any::<Ipv4Addr>("ip-address", self.ip_address.as_deref()).map_err(ctx)? {
                None => None,
                Some(a) => {
                    let plen = self
                        .plen
                        .ok_or_else(|| ctx(format!("ip-address {a} comes without plen")))?;
                    let net = u8::try_from(plen)
                        .ok()
                        .and_then(|p| IpNet::new(a.into(), p))
                        .ok_or_else(|| ctx(format!("plen {plen} is longer than 32")))?;
                    Some(net.check_host().map_err(|e| ctx(e.to_string()))?)
                }
            };
        let v6 = addr::<Ipv6Addr>("v6-ip-address", self.v6_ip_address.as_deref()).map_err(ctx)?;
        Ok(VmiOper {
            mac,
            v4,
            v4_gateway: addr::<Ipv4Addr>("gateway", self.gateway.as_deref())
                .map_err(ctx)?
                .map(IpAddr::from),
            v4_dns: addr::<Ipv4Addr>("dns-server", self.dns_server.as_deref())
                .map_err(ctx)?
                .map(IpAddr::from),
            v6,
            v6_gateway: addr::<Ipv6Addr>("v6-gateway", self.v6_gateway.as_deref())
                .map_err(ctx)?
                .map(IpAddr::from),
            v6_dns: addr::<Ipv6Addr>("v6-dns-server", self.v6_dns_server.as_deref())
                .map_err(ctx)?
                .map(IpAddr::from),
            id,
        })
    }
}

/// Like [`addr`] but without the unicast check: the host address gets the
/// stricter [`IpNet::check_host`] with its prefix length.
fn addr_any<T>(field: &str, v: Option<&str>) -> Result<Option<T>, String>
where
    T: std::str::FromStr + Into<IpAddr> + Copy,
{
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let a: T = s
        .parse()
        .map_err(|_| format!("{field} {} is not an address of its family", printable(s)))?;
    Ok((!a.into().is_unspecified()).then_some(a))
}

/// Decodes a `GET /vm/<vm>[/<vmi>]` answer for VM `vm`: every element
/// checked, ids unique, at most [`MAX_VMIS`], none of another VM.
pub fn decode_vm(body: &str, vm: &Uuid) -> Result<Vec<VmiOper>, Reject> {
    let mut opers: Vec<VmiOper> = Vec::new();
    for (i, v) in array(body)?.iter().enumerate() {
        let wire = element(i, v, WireVmiOper::read)?;
        let oper = wire.decode(vm).map_err(Reject::Invalid)?;
        if opers.iter().any(|o| o.id == oper.id) {
            return Err(Reject::Invalid(format!("VMI {} is listed twice", oper.id)));
        }
        opers.push(oper);
    }
    Ok(opers)
}

/// From a decoded `/vm` answer, the VMIs `wanted` in that order, each with
/// an address; "not yet" while one is missing or has none.
pub fn pick_ready(opers: &[VmiOper], wanted: &[&Uuid]) -> Result<Vec<VmiOper>, Reject> {
    wanted
        .iter()
        .map(|w| {
            let o = opers
                .iter()
                .find(|o| o.id == **w)
                .ok_or_else(|| Reject::NotYet(format!("VMI {w} missing from the answer")))?;
            if o.has_address() {
                Ok(o.clone())
            } else {
                Err(Reject::NotYet(format!("VMI {w} has no IP address yet")))
            }
        })
        .collect()
}

/// The agent's error text: the `error` member of a JSON error body, else the
/// body itself; bounded and escaped for messages.
pub fn error_text(body: &str) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body.as_bytes());
    let error = parsed.ok().and_then(|v| match v.get("error") {
        Some(serde_json::Value::String(e)) => Some(e.clone()),
        _ => None,
    });
    crate::ids::printable(error.as_deref().unwrap_or(body), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(raw: &[&str]) -> Annotations {
        Annotations::parse(&raw.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn annotations_split_at_first_colon_and_keep_unknown_keys() {
        let a = ann(&[
            "{index:1/3}",
            "{network:a:b:c}",
            "{extra:x}",
            "{nocolon}",
            "{:empty-key}",
            "",
            "{",
            "}",
        ]);
        assert_eq!(a.index(), Some((1, 3)));
        assert_eq!(a.network(), Some("a:b:c"));
        assert_eq!(a.get("extra"), Some("x"));
        assert_eq!(a.0.len(), 3);
        // Of duplicate keys the last wins, in the first one's place.
        let a = ann(&["{k:1}", "{j:2}", "{k:3}"]);
        let all: Vec<_> = a.iter().collect();
        assert_eq!(all, [("k", "3"), ("j", "2")]);
    }

    #[test]
    fn annotations_strip_exactly_one_brace_each_side() {
        let a = ann(&["{{k:v}}", "missing:braces", "{half:open", "quote:\"\\x"]);
        assert_eq!(a.get("{k"), Some("v}"));
        assert_eq!(a.get("missing"), Some("braces"));
        assert_eq!(a.get("half"), Some("open"));
        assert_eq!(a.get("quote"), Some("\"\\x"));
    }

    #[test]
    fn index_rejects_malformed() {
        for bad in [
            "{index:1}",
            "{index:3/3}",
            "{index:0/0}",
            "{index:-1/2}",
            "{index:+1/2}",
            "{index:a/b}",
            "{index: 0/1}",
        ] {
            assert_eq!(ann(&[bad]).index(), None, "{bad}");
        }
        assert_eq!(ann(&["{index:0/1}"]).index(), Some((0, 1)));
    }

    const VM: &str = "11111111-0000-4000-8000-000000000000";

    /// A `/vm-cfg` element: VMI `id`, `index` annotation, extra fields
    /// replaced with `edit` (key, raw JSON value; `None` removes the key).
    fn cfg(id: u8, index: &str, edit: &[(&str, Option<&str>)]) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": format!("00000000-0000-4000-8000-0000000000{id:02x}"),
            "vm-uuid": VM,
            "vn-id": "22222222-0000-4000-8000-000000000000",
            "vn-name": "d:p:n",
            "mac-address": format!("02:00:00:00:00:{id:02x}"),
            "sub-interface": false,
            "vlan-id": 65535,
            "annotations": [format!("{{index:{index}}}"), "{network:default}"],
        });
        for (k, val) in edit {
            match val {
                Some(raw) => v[*k] = serde_json::from_str(raw).unwrap(),
                None => {
                    v.as_object_mut().unwrap().remove(*k);
                }
            }
        }
        v
    }

    fn list(items: &[serde_json::Value]) -> String {
        serde_json::to_string(items).unwrap()
    }

    #[test]
    fn vm_cfg_decodes_typed_and_sorted_by_index() {
        let body = list(&[
            cfg(
                2,
                "1/2",
                &[(
                    "annotations",
                    Some(r#"["{index:1/2}","{network:blue}","{interface:net1}"]"#),
                )],
            ),
            cfg(1, "0/2", &[]),
        ]);
        let v = decode_vm_cfg(&body).unwrap();
        assert_eq!(v[0].index, 0);
        assert_eq!(v[0].vlan_id, None);
        assert_eq!(v[0].network.as_deref(), Some("default"));
        assert_eq!(v[0].mac.to_string(), "02:00:00:00:00:01");
        assert_eq!(v[1].index, 1);
        assert_eq!(v[1].ifname.as_ref().map(IfName::as_str), Some("net1"));
        assert_eq!(v[1].vm_uuid.as_str(), VM);
        // Upper case in, lower case out; `instance-id` is the old name of
        // `vm-uuid`; a left-out vlan-id is 65535; nested VLAN tags kept.
        let old = list(&[cfg(
            1,
            "0/1",
            &[
                ("vm-uuid", None),
                ("instance-id", Some(&format!("\"{}\"", VM.to_uppercase()))),
                ("id", Some(r#""0000000A-0000-4000-8000-000000000001""#)),
                ("vlan-id", None),
            ],
        )]);
        let v = decode_vm_cfg(&old).unwrap();
        assert_eq!(v[0].vm_uuid.as_str(), VM);
        assert_eq!(v[0].id.as_str(), "0000000a-0000-4000-8000-000000000001");
        assert_eq!(v[0].vlan_id, None);
        let nested = list(&[cfg(1, "0/1", &[("vlan-id", Some("4094"))])]);
        assert_eq!(decode_vm_cfg(&nested).unwrap()[0].vlan_id, Some(4094));
        // No annotations at all: no index, which is invalid.
        let bare = list(&[cfg(1, "0/1", &[("annotations", None)])]);
        assert!(matches!(decode_vm_cfg(&bare), Err(Reject::Invalid(_))));
    }

    /// Every "not yet" answer of `/vm-cfg`: poll again.
    #[test]
    fn vm_cfg_not_yet() {
        let cases = [
            ("[]".to_string(), "empty"),
            ("garbage <html>".to_string(), "not JSON"),
            ("[{\"id\":".to_string(), "not JSON"),
            (list(&[cfg(1, "0/2", &[])]), "incomplete: 1 of 2"),
            (
                list(&[cfg(1, "0/3", &[]), cfg(3, "2/3", &[])]),
                "incomplete: 2 of 3",
            ),
        ];
        for (body, why) in cases {
            match decode_vm_cfg(&body) {
                Err(Reject::NotYet(e)) => assert!(e.contains(why), "{body}: {e}"),
                other => panic!("{body}: expected not yet ({why}), got {other:?}"),
            }
        }
    }

    /// Every invalid `/vm-cfg` answer: fail at once.
    #[test]
    fn vm_cfg_invalid() {
        let many: Vec<_> = (0..=MAX_VMIS as u8)
            .map(|i| cfg(i, &format!("{i}/{}", MAX_VMIS + 1), &[]))
            .collect();
        let noisy: Vec<String> = (0..=MAX_ANNOTATIONS)
            .map(|i| format!("{{k{i}:v}}"))
            .collect();
        let noisy = serde_json::to_string(&noisy).unwrap();
        let cases = [
            (
                list(&[cfg(1, "0/1", &[("annotations", Some(&noisy))])]),
                "65 annotations, more than 64",
            ),
            ("{}".to_string(), "not an array"),
            ("null".to_string(), "not an array"),
            (list(&many), "more than the 32"),
            (
                list(&[cfg(1, "0/40", &[])]),
                "index total 40 is more than the 32",
            ),
            (
                list(&[cfg(1, "0/2", &[]), cfg(1, "1/2", &[])]),
                "listed twice",
            ),
            (
                list(&[cfg(1, "0/2", &[]), cfg(2, "0/2", &[])]),
                "index 0 appears twice",
            ),
            (list(&[cfg(1, "0/2", &[]), cfg(2, "1/3", &[])]), "disagree"),
            (
                list(&[
                    cfg(1, "0/2", &[]),
                    cfg(
                        2,
                        "1/2",
                        &[("vm-uuid", Some(r#""33333333-0000-4000-8000-000000000000""#))],
                    ),
                ]),
                "different VMs",
            ),
            (list(&[cfg(1, "bad", &[])]), "no valid index"),
            (list(&[cfg(1, "1/1", &[])]), "no valid index"),
            (
                list(&[
                    cfg(1, "0/3", &[]),
                    cfg(
                        2,
                        "1/3",
                        &[("annotations", Some(r#"["{index:1/3}","{interface:net1}"]"#))],
                    ),
                    cfg(
                        3,
                        "2/3",
                        &[("annotations", Some(r#"["{index:2/3}","{interface:net1}"]"#))],
                    ),
                ]),
                "interface name net1",
            ),
            (
                list(&[cfg(
                    1,
                    "0/1",
                    &[("annotations", Some(r#"["{index:0/1}","{interface:a/b}"]"#))],
                )]),
                "interface annotation",
            ),
            (
                list(&[cfg(
                    1,
                    "0/1",
                    &[(
                        "annotations",
                        Some(r#"["{index:0/1}","{interface:eth%d}"]"#),
                    )],
                )]),
                "interface annotation",
            ),
            (
                list(&[cfg(1, "0/1", &[("id", Some(r#""../../x""#))])]),
                "id: invalid UUID",
            ),
            (
                list(&[cfg(1, "0/1", &[("vm-uuid", Some(r#""x""#))])]),
                "vm-uuid",
            ),
            (list(&[cfg(1, "0/1", &[("vn-id", Some(r#""""#))])]), "vn-id"),
            (
                list(&[cfg(
                    1,
                    "0/1",
                    &[("vm-uuid", Some(r#""00000000-0000-0000-0000-000000000000""#))],
                )]),
                "vm-uuid is the nil UUID",
            ),
            (
                list(&[cfg(1, "0/1", &[("id", None)])]),
                "missing field `id`",
            ),
            (
                list(&[cfg(1, "0/1", &[("vm-uuid", None)])]),
                "missing field `vm-uuid`",
            ),
            (
                list(&[cfg(
                    1,
                    "0/1",
                    &[("mac-address", Some(r#""01:00:5e:00:00:01""#))],
                )]),
                "multicast",
            ),
            (
                list(&[cfg(
                    1,
                    "0/1",
                    &[("mac-address", Some(r#""ff:ff:ff:ff:ff:ff""#))],
                )]),
                "multicast",
            ),
            (
                list(&[cfg(
                    1,
                    "0/1",
                    &[("mac-address", Some(r#""00:00:00:00:00:00""#))],
                )]),
                "all zeros",
            ),
            (
                list(&[cfg(
                    1,
                    "0/1",
                    &[("mac-address", Some(r#""02-00-00-00-00-01""#))],
                )]),
                "MAC",
            ),
            (
                list(&[cfg(1, "0/1", &[("vlan-id", Some("0"))])]),
                "vlan-id 0",
            ),
            (
                list(&[cfg(1, "0/1", &[("vlan-id", Some("4095"))])]),
                "vlan-id 4095",
            ),
            (
                list(&[cfg(1, "0/1", &[("vlan-id", Some("70000"))])]),
                "out of range",
            ),
            (
                list(&[cfg(1, "0/1", &[("vlan-id", Some("-1"))])]),
                "element 0",
            ),
            (
                list(&[cfg(1, "0/1", &[("annotations", Some("null"))])]),
                "element 0",
            ),
        ];
        for (body, why) in cases {
            match decode_vm_cfg(&body) {
                Err(Reject::Invalid(e)) => assert!(e.contains(why), "{why:?} not in {e:?}"),
                other => panic!("{body}: expected invalid ({why}), got {other:?}"),
            }
        }
    }

    #[test]
    fn vm_cfg_round_trips_through_the_cache_format() {
        let edits = [(
            "annotations",
            Some(r#"["{index:1/2}", "{interface:net1}", "{k:a:b}}"]"#),
        )];
        let v = decode_vm_cfg(&list(&[
            cfg(1, "0/2", &[("vlan-id", Some("100"))]),
            cfg(2, "1/2", &edits),
        ]))
        .unwrap();
        let json = encode_vm_cfg(&v);
        let text = json.to_string();
        assert!(text.contains("\"vm-uuid\""), "{text}");
        let back = decode_vmis(json.as_array().unwrap()).unwrap();
        assert_eq!(back, v);
        assert_eq!(back[1].annotations.get("k"), Some("a:b}"));
        assert_eq!(back[1].ifname.as_ref().map(IfName::as_str), Some("net1"));
        assert_eq!(back[0].vlan_id, Some(100));
        // A cache edited to break a rule the types cannot carry is caught.
        let mut bad = back.clone();
        bad[0].mac = Mac([1, 0, 0x5e, 0, 0, 1]);
        assert!(matches!(check_vm_cfg(&bad), Err(Reject::Invalid(_))));
        let mut bad = back;
        bad[0].index = 3;
        assert!(matches!(check_vm_cfg(&bad), Err(Reject::Invalid(_))));
    }

    const VMI: &str = "00000000-0000-4000-8000-00000000000a";

    /// Fields to replace (key, raw JSON value) or remove (`None`).
    type Edit<'a> = &'a [(&'a str, Option<&'a str>)];

    /// A `/vm` element with `edit` applied as in [`cfg`].
    fn oper(edit: Edit) -> String {
        let mut v = serde_json::json!({
            "id": VMI, "instance-id": VM, "vn-id": "22222222-0000-4000-8000-000000000000",
            "vm-project-id": "00000000-0000-4000-8000-00000000beef",
            "mac-address": "02:00:00:00:00:01", "system-name": "tap0",
            "rx-vlan-id": 65535, "tx-vlan-id": 65535, "vhostuser-mode": 0,
            "ip-address": "10.0.0.5", "plen": 24, "dns-server": "10.0.0.2", "gateway": "10.0.0.1",
            "author": "agent", "time": "1:2:3",
        });
        for (k, val) in edit {
            match val {
                Some(raw) => v[*k] = serde_json::from_str(raw).unwrap(),
                None => {
                    v.as_object_mut().unwrap().remove(*k);
                }
            }
        }
        format!("[{v}]")
    }

    fn vm() -> Uuid {
        Uuid::parse(VM).unwrap()
    }

    #[test]
    fn vm_decodes_typed_values_and_none_for_unspecified() {
        let o = decode_vm(&oper(&[]), &vm()).unwrap().remove(0);
        assert_eq!(o.id.as_str(), VMI);
        assert_eq!(o.v4.unwrap().to_string(), "10.0.0.5/24");
        assert_eq!(o.v4_gateway, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(o.v4_dns, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(o.mac.unwrap().to_string(), "02:00:00:00:00:01");
        assert!(o.has_address());
        let v6 = decode_vm(
            &oper(&[
                ("ip-address", None),
                ("plen", None),
                ("gateway", None),
                ("dns-server", None),
                ("v6-ip-address", Some(r#""FD00::5""#)),
                ("v6-gateway", Some(r#""fe80::1""#)),
                ("v6-dns-server", Some(r#""::""#)),
            ]),
            &vm(),
        )
        .unwrap()
        .remove(0);
        assert_eq!(v6.v4, None);
        assert_eq!(v6.v6, Some("fd00::5".parse().unwrap()));
        assert_eq!(v6.v6_gateway, Some("fe80::1".parse().unwrap()));
        assert_eq!(v6.v6_dns, None);
        // 0.0.0.0 and :: mean none: no address yet, no gateway, no DNS.
        let none = decode_vm(
            &oper(&[
                ("ip-address", Some(r#""0.0.0.0""#)),
                ("gateway", Some(r#""0.0.0.0""#)),
                ("dns-server", Some(r#""""#)),
                ("v6-ip-address", Some(r#""::""#)),
                ("mac-address", Some(r#""""#)),
                ("instance-id", Some(r#""""#)),
            ]),
            &vm(),
        )
        .unwrap()
        .remove(0);
        assert!(!none.has_address());
        assert_eq!((none.v4_gateway, none.v4_dns, none.mac), (None, None, None));
    }

    #[test]
    fn vm_not_yet() {
        let id = Uuid::parse(VMI).unwrap();
        let other = Uuid::parse("00000000-0000-4000-8000-00000000000b").unwrap();
        for body in ["[]", "not json", "[{"] {
            assert!(
                matches!(decode_vm(body, &vm()), Err(Reject::NotYet(_))),
                "{body}"
            );
        }
        let no_addr = decode_vm(&oper(&[("ip-address", Some(r#""0.0.0.0""#))]), &vm()).unwrap();
        let e = pick_ready(&no_addr, &[&id]).unwrap_err();
        assert!(
            matches!(&e, Reject::NotYet(s) if s.contains("no IP address yet")),
            "{e:?}"
        );
        let ready = decode_vm(&oper(&[]), &vm()).unwrap();
        let e = pick_ready(&ready, &[&id, &other]).unwrap_err();
        assert!(
            matches!(&e, Reject::NotYet(s) if s.contains("missing")),
            "{e:?}"
        );
        assert_eq!(pick_ready(&ready, &[&id]).unwrap()[0].id, id);
    }

    /// Every invalid `/vm` answer: the agent's nonsense addresses never
    /// reach a pod.
    #[test]
    fn vm_invalid() {
        let cases: &[(Edit, &str)] = &[
            (
                &[("ip-address", Some(r#""224.0.0.1""#)), ("plen", Some("32"))],
                "multicast",
            ),
            (
                &[
                    ("ip-address", Some(r#""255.255.255.255""#)),
                    ("plen", Some("32")),
                ],
                "broadcast",
            ),
            (&[("ip-address", Some(r#""127.0.0.1""#))], "loopback"),
            (&[("plen", Some("0"))], "prefix length 0"),
            (&[("plen", Some("33"))], "plen 33"),
            (&[("plen", Some("-1"))], "element 0"),
            (&[("plen", None)], "without plen"),
            (&[("ip-address", Some(r#""10.0.0.0""#))], "network address"),
            (
                &[("ip-address", Some(r#""10.0.0.255""#))],
                "broadcast address",
            ),
            (&[("ip-address", Some(r#""fd00::5""#))], "ip-address"),
            (&[("ip-address", Some(r#""10.0.0.5/24""#))], "ip-address"),
            (&[("ip-address", Some("5"))], "element 0"),
            (
                &[("gateway", Some(r#""224.0.0.1""#))],
                "gateway 224.0.0.1 is a multicast",
            ),
            (&[("gateway", Some(r#""255.255.255.255""#))], "broadcast"),
            (&[("gateway", Some(r#""fe80::1""#))], "gateway"),
            (&[("dns-server", Some(r#""127.0.0.53""#))], "loopback"),
            (&[("v6-ip-address", Some(r#""ff02::1""#))], "multicast"),
            (&[("v6-ip-address", Some(r#""::1""#))], "loopback"),
            (&[("v6-ip-address", Some(r#""10.0.0.9""#))], "v6-ip-address"),
            (&[("v6-gateway", Some(r#""ff02::2""#))], "multicast"),
            (&[("v6-dns-server", Some(r#""::1""#))], "loopback"),
            (
                &[("mac-address", Some(r#""00:00:00:00:00:00""#))],
                "all zeros",
            ),
            (
                &[("mac-address", Some(r#""33:33:00:00:00:01""#))],
                "multicast",
            ),
            (&[("mac-address", Some(r#""zz""#))], "MAC"),
            (&[("id", Some(r#""../x""#))], "id: invalid UUID"),
            (&[("id", None)], "missing field `id`"),
            (&[("instance-id", Some(r#""x""#))], "instance-id"),
            (
                &[(
                    "instance-id",
                    Some(r#""33333333-0000-4000-8000-000000000000""#),
                )],
                "belongs to VM",
            ),
        ];
        for (edit, why) in cases {
            let body = oper(edit);
            match decode_vm(&body, &vm()) {
                Err(Reject::Invalid(e)) => assert!(e.contains(why), "{why:?} not in {e:?}"),
                other => panic!("{edit:?}: expected invalid ({why}), got {other:?}"),
            }
        }
        for body in ["{}", "\"x\""] {
            assert!(
                matches!(decode_vm(body, &vm()), Err(Reject::Invalid(_))),
                "{body}"
            );
        }
        let one = oper(&[]);
        let twice = format!("[{0},{0}]", &one[1..one.len() - 1]);
        let e = decode_vm(&twice, &vm()).unwrap_err();
        assert!(
            matches!(&e, Reject::Invalid(s) if s.contains("twice")),
            "{e:?}"
        );
        let elem = &one[1..one.len() - 1];
        let many = format!("[{}]", vec![elem; MAX_VMIS + 1].join(","));
        let e = decode_vm(&many, &vm()).unwrap_err();
        assert!(
            matches!(&e, Reject::Invalid(s) if s.contains("more than")),
            "{e:?}"
        );
    }

    #[test]
    fn port_request_json_is_the_agents() {
        let req = PortRequest {
            vm_uuid: vm(),
            vm_name: VmName::parse("k8s__default__web-1").unwrap(),
            host_ifname: IfName::parse("tap0123").unwrap(),
            vn_uuid: Uuid::parse("22222222-0000-4000-8000-000000000000").unwrap(),
            vmi_uuid: Uuid::parse(VMI).unwrap(),
            vm_id: ContainerId::parse("c0ffee").unwrap(),
            vm_ifname: IfName::parse("eth0").unwrap(),
            vm_namespace: "/proc/1/ns/net".into(),
        };
        let body = req.to_json();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "host-ifname",
                "vm-id",
                "vm-ifname",
                "vm-name",
                "vm-namespace",
                "vm-uuid",
                "vmi-uuid",
                "vn-uuid"
            ]
        );
        assert_eq!(v["vm-uuid"], VM);
        // Compact, in the agent's order, escaped as JSON.
        assert!(body.starts_with(&format!("{{\"vm-uuid\":\"{VM}\",\"vm-name\":")));
        let odd = PortRequest {
            vm_namespace: "/run/netns/a\"b\\c\u{1}".into(),
            ..req
        };
        let v: serde_json::Value = serde_json::from_str(&odd.to_json()).unwrap();
        assert_eq!(v["vm-namespace"], "/run/netns/a\"b\\c\u{1}");
        let pretty = object_text(&[("a", 1.into()), ("b", "x".into())], true);
        assert_eq!(pretty, "{\n  \"a\": 1,\n  \"b\": \"x\"\n}");
    }

    #[test]
    fn error_text_prefers_the_error_member() {
        assert_eq!(
            error_text(r#"{"error":"{ Not Found }"}"#),
            "\"{ Not Found }\""
        );
        assert_eq!(error_text("plain"), "\"plain\"");
        assert_eq!(error_text("a\u{1b}[2J"), "\"a\\u{1b}[2J\"");
    }
}
