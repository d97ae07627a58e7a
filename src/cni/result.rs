//! One internal result model, encoded per `cniVersion` (spec §1.7):
//!
//! * 0.1.0, 0.2.0: `ip4`/`ip6` (first address of each family) with the routes
//!   of that family inside, no interfaces;
//! * 0.3.0, 0.3.1, 0.4.0: `interfaces`, `ips` with `version` "4"/"6",
//!   `routes`, `dns`;
//! * 1.0.0: the same without `ips[].version`;
//! * 1.1.0: plus `interfaces[].mtu`.
//!
//! Empty lists, empty strings and an empty `dns` are omitted. Parsing
//! (`prevResult`) accepts every one of these shapes. The 1.1.0-only fields
//! the model has no place for (`socketPath`, `pciID`, route `mtu`, `advmss`,
//! `priority`, `table`, `scope`) are dropped when a prevResult is re-printed.

use super::error::{code, Error, Result};
use super::version::{at_least, is_supported};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// The result of one attachment (or of a chain so far).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<RouteEntry>,
    pub dns: Dns,
}

/// An interface the attachment created, host-side or in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// CNI_NETNS for container interfaces, None for host ones.
    pub sandbox: Option<String>,
}

/// One address: `address/prefix_len`, on interface `interface`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    pub interface: Option<usize>,
}

/// A route `dst/dst_len` via optional `gw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub dst: IpAddr,
    pub dst_len: u8,
    pub gw: Option<IpAddr>,
}

/// The `dns` object; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    pub nameservers: Vec<String>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The three wire shapes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// 0.1.0, 0.2.0.
    Legacy,
    /// 0.3.0 .. 0.4.0 (`version` required) and 1.x (`version` absent).
    Current { ip_version: bool, mtu: bool },
}

fn shape(version: &str) -> Result<Shape> {
    if !is_supported(version) {
        return Err(Error::new(
            code::INCOMPATIBLE_VERSION,
            format!("cannot encode a result as cniVersion {version:?}"),
        ));
    }
    Ok(if !at_least(version, "0.3.0") {
        Shape::Legacy
    } else {
        Shape::Current {
            ip_version: !at_least(version, "1.0.0"),
            mtu: at_least(version, "1.1.0"),
        }
    })
}

fn cidr(addr: &IpAddr, len: u8) -> String {
    format!("{addr}/{len}")
}

impl RouteEntry {
    fn to_value(&self) -> Value {
        let mut o = Map::new();
        o.insert("dst".into(), cidr(&self.dst, self.dst_len).into());
        if let Some(gw) = self.gw {
            o.insert("gw".into(), gw.to_string().into());
        }
        Value::Object(o)
    }
}

impl Dns {
    fn is_empty(&self) -> bool {
        self == &Dns::default()
    }

    fn to_value(&self) -> Value {
        let mut o = Map::new();
        put_list(&mut o, "nameservers", &self.nameservers);
        if let Some(d) = self.domain.as_deref().filter(|d| !d.is_empty()) {
            o.insert("domain".into(), d.into());
        }
        put_list(&mut o, "search", &self.search);
        put_list(&mut o, "options", &self.options);
        Value::Object(o)
    }

    /// Adds `other`'s entries that are not there yet; keeps our domain.
    fn merge(&mut self, other: Dns) {
        for (mine, theirs) in [
            (&mut self.nameservers, other.nameservers),
            (&mut self.search, other.search),
            (&mut self.options, other.options),
        ] {
            for v in theirs {
                if !mine.contains(&v) {
                    mine.push(v);
                }
            }
        }
        if self.domain.is_none() {
            self.domain = other.domain;
        }
    }
}

fn put_list(o: &mut Map<String, Value>, key: &str, list: &[String]) {
    if !list.is_empty() {
        o.insert(key.into(), list.into());
    }
}

impl CniResult {
    /// The result JSON in exactly `version`'s shape (0.1.0/0.2.0 ip4/ip6;
    /// 0.3.x/0.4.0 with ips[].version; 1.x without; mtu only in 1.1.0).
    /// An unsupported `version` is code 1.
    pub fn to_json(&self, version: &str) -> Result<Value> {
        let mut o = Map::new();
        o.insert("cniVersion".into(), version.into());
        match shape(version)? {
            Shape::Legacy => self.legacy_into(&mut o),
            Shape::Current { ip_version, mtu } => self.current_into(&mut o, ip_version, mtu),
        }
        if !self.dns.is_empty() {
            o.insert("dns".into(), self.dns.to_value());
        }
        Ok(Value::Object(o))
    }

    /// `ip4`/`ip6`: the first address of each family, with the routes whose
    /// destination is of that family (libcni's down-conversion).
    fn legacy_into(&self, o: &mut Map<String, Value>) {
        for (key, v4) in [("ip4", true), ("ip6", false)] {
            let Some(ip) = self.ips.iter().find(|ip| ip.address.is_ipv4() == v4) else {
                continue;
            };
            let mut e = Map::new();
            e.insert("ip".into(), cidr(&ip.address, ip.prefix_len).into());
            if let Some(gw) = ip.gateway {
                e.insert("gateway".into(), gw.to_string().into());
            }
            let routes: Vec<Value> = self
                .routes
                .iter()
                .filter(|r| r.dst.is_ipv4() == v4)
                .map(RouteEntry::to_value)
                .collect();
            if !routes.is_empty() {
                e.insert("routes".into(), routes.into());
            }
            o.insert(key.into(), Value::Object(e));
        }
    }

    fn current_into(&self, o: &mut Map<String, Value>, ip_version: bool, with_mtu: bool) {
        let interfaces: Vec<Value> = self
            .interfaces
            .iter()
            .map(|i| {
                let mut e = Map::new();
                e.insert("name".into(), i.name.clone().into());
                if let Some(mac) = i.mac.as_deref().filter(|m| !m.is_empty()) {
                    e.insert("mac".into(), mac.into());
                }
                if let (true, Some(mtu)) = (with_mtu, i.mtu) {
                    e.insert("mtu".into(), mtu.into());
                }
                if let Some(sb) = i.sandbox.as_deref().filter(|s| !s.is_empty()) {
                    e.insert("sandbox".into(), sb.into());
                }
                Value::Object(e)
            })
            .collect();
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut e = Map::new();
                if ip_version {
                    let v = if ip.address.is_ipv4() { "4" } else { "6" };
                    e.insert("version".into(), v.into());
                }
                e.insert("address".into(), cidr(&ip.address, ip.prefix_len).into());
                if let Some(gw) = ip.gateway {
                    e.insert("gateway".into(), gw.to_string().into());
                }
                if let Some(i) = ip.interface {
                    e.insert("interface".into(), i.into());
                }
                Value::Object(e)
            })
            .collect();
        let routes: Vec<Value> = self.routes.iter().map(RouteEntry::to_value).collect();
        for (key, list) in [("interfaces", interfaces), ("ips", ips), ("routes", routes)] {
            if !list.is_empty() {
                o.insert(key.into(), list.into());
            }
        }
    }

    /// Parses a `prevResult` given under config version `version`; code 6.
    ///
    /// A missing `cniVersion` in the prevResult means the config's (skel
    /// does the same); a different one is code 6, because the next plugin
    /// would parse our output as the config's version.
    pub fn from_json(value: &Value, version: &str) -> Result<CniResult> {
        let o = value
            .as_object()
            .ok_or_else(|| decode("prevResult is not a JSON object"))?;
        match o.get("cniVersion") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v == version || v.is_empty() => {}
            Some(v) => {
                return Err(decode(format!(
                    "prevResult cniVersion {v} differs from the config's {version:?}"
                )))
            }
        }
        let sh = shape(version).map_err(|e| decode(e.msg))?;
        let mut r = CniResult {
            dns: parse_dns(o.get("dns"))?,
            ..CniResult::default()
        };
        match sh {
            Shape::Legacy => {
                for key in ["ip4", "ip6"] {
                    let Some(e) = nonnull(o.get(key)) else {
                        continue;
                    };
                    let e = obj(e, key)?;
                    let (address, prefix_len) = parse_cidr(req_str(e, "ip", key)?, key)?;
                    if address.is_ipv4() != (key == "ip4") {
                        return Err(decode(format!("prevResult {key}.ip has the wrong family")));
                    }
                    r.ips.push(IpConfig {
                        address,
                        prefix_len,
                        gateway: opt_ip(e, "gateway", key)?,
                        interface: None,
                    });
                    r.routes.extend(parse_routes(e.get("routes"), key)?);
                }
            }
            Shape::Current { .. } => {
                for i in list(o.get("interfaces"), "interfaces")? {
                    let i = obj(i, "interfaces[]")?;
                    r.interfaces.push(Interface {
                        name: req_str(i, "name", "interfaces[]")?.to_string(),
                        mac: opt_str(i, "mac", "interfaces[]")?,
                        mtu: match nonnull(i.get("mtu")) {
                            None => None,
                            Some(v) => Some(
                                v.as_u64()
                                    .and_then(|m| u32::try_from(m).ok())
                                    .ok_or_else(|| decode("prevResult interfaces[].mtu"))?,
                            ),
                        },
                        sandbox: opt_str(i, "sandbox", "interfaces[]")?,
                    });
                }
                for ip in list(o.get("ips"), "ips")? {
                    let ip = obj(ip, "ips[]")?;
                    let (address, prefix_len) =
                        parse_cidr(req_str(ip, "address", "ips[]")?, "ips[]")?;
                    let interface = match nonnull(ip.get("interface")) {
                        None => None,
                        Some(v) => Some(
                            v.as_u64()
                                .and_then(|n| usize::try_from(n).ok())
                                .filter(|n| *n < r.interfaces.len())
                                .ok_or_else(|| {
                                    decode("prevResult ips[].interface is not an index into interfaces")
                                })?,
                        ),
                    };
                    r.ips.push(IpConfig {
                        address,
                        prefix_len,
                        gateway: opt_ip(ip, "gateway", "ips[]")?,
                        interface,
                    });
                }
                r.routes = parse_routes(o.get("routes"), "routes")?;
            }
        }
        Ok(r)
    }

    /// Appends `other`, re-basing its interface indices; DNS lists merged
    /// without duplicates, our domain kept.
    pub fn append(&mut self, other: CniResult) {
        let base = self.interfaces.len();
        self.interfaces.extend(other.interfaces);
        self.ips.extend(other.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + base);
            ip
        }));
        self.routes.extend(other.routes);
        self.dns.merge(other.dns);
    }
}

fn decode(msg: impl Into<String>) -> Error {
    Error::new(code::DECODE, msg)
}

/// JSON `null` is treated as absent everywhere, as Go's decoder does.
fn nonnull(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| decode(format!("prevResult {what} is not an object")))
}

fn list<'a>(v: Option<&'a Value>, what: &str) -> Result<&'a [Value]> {
    match nonnull(v) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(decode(format!("prevResult {what} is not a list"))),
    }
}

fn opt_str(o: &Map<String, Value>, key: &str, what: &str) -> Result<Option<String>> {
    match nonnull(o.get(key)) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(decode(format!("prevResult {what}.{key} is not a string"))),
    }
}

fn req_str<'a>(o: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str> {
    match o.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(decode(format!("prevResult {what}.{key} is missing"))),
    }
}

fn opt_ip(o: &Map<String, Value>, key: &str, what: &str) -> Result<Option<IpAddr>> {
    opt_str(o, key, what)?
        .map(|s| {
            s.parse()
                .map_err(|_| decode(format!("prevResult {what}.{key} is not an IP address")))
        })
        .transpose()
}

/// `addr/len` with `len` within the family's width.
fn parse_cidr(s: &str, what: &str) -> Result<(IpAddr, u8)> {
    let bad = || decode(format!("prevResult {what}: {s:?} is not an address/prefix"));
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(bad());
    }
    Ok((addr, len))
}

fn parse_routes(v: Option<&Value>, what: &str) -> Result<Vec<RouteEntry>> {
    list(v, what)?
        .iter()
        .map(|r| {
            let r = obj(r, what)?;
            let (dst, dst_len) = parse_cidr(req_str(r, "dst", what)?, what)?;
            Ok(RouteEntry {
                dst,
                dst_len,
                gw: opt_ip(r, "gw", what)?,
            })
        })
        .collect()
}

fn parse_dns(v: Option<&Value>) -> Result<Dns> {
    let Some(v) = nonnull(v) else {
        return Ok(Dns::default());
    };
    let o = obj(v, "dns")?;
    let strings = |key: &str| -> Result<Vec<String>> {
        list(o.get(key), "dns")?
            .iter()
            .map(|s| {
                s.as_str()
                    .map(String::from)
                    .ok_or_else(|| decode(format!("prevResult dns.{key} holds a non-string")))
            })
            .collect()
    };
    Ok(Dns {
        nameservers: strings("nameservers")?,
        domain: opt_str(o, "domain", "dns")?,
        search: strings("search")?,
        options: strings("options")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's §1.7 examples, as one model: a host veth, the container
    /// interface, one v4 and one v6 address, routes of both families.
    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "tapd1f0c2a3-11".into(),
                    mac: Some("02:aa:bb:cc:dd:01".into()),
                    mtu: Some(1500),
                    sandbox: None,
                },
                Interface {
                    name: "eth0".into(),
                    mac: Some("02:aa:bb:cc:dd:02".into()),
                    mtu: Some(1500),
                    sandbox: Some("/run/netns/pod1".into()),
                },
            ],
            ips: vec![
                IpConfig {
                    address: "10.1.2.5".parse().unwrap(),
                    prefix_len: 24,
                    gateway: Some("10.1.2.1".parse().unwrap()),
                    interface: Some(1),
                },
                IpConfig {
                    address: "fd00::5".parse().unwrap(),
                    prefix_len: 64,
                    gateway: Some("fd00::1".parse().unwrap()),
                    interface: Some(1),
                },
            ],
            routes: vec![
                RouteEntry {
                    dst: "0.0.0.0".parse().unwrap(),
                    dst_len: 0,
                    gw: None,
                },
                RouteEntry {
                    dst: "10.9.0.0".parse().unwrap(),
                    dst_len: 16,
                    gw: Some("10.1.2.254".parse().unwrap()),
                },
                RouteEntry {
                    dst: "::".parse().unwrap(),
                    dst_len: 0,
                    gw: None,
                },
            ],
            dns: Dns {
                nameservers: vec!["10.1.2.1".into()],
                domain: Some("x".into()),
                search: vec!["a.b".into()],
                options: vec!["ndots:5".into()],
            },
        }
    }

    fn v(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn legacy_matches_spec_example() {
        for ver in ["0.1.0", "0.2.0"] {
            let got = sample().to_json(ver).unwrap();
            let want = v(&format!(
                r#"{{"cniVersion": "{ver}",
                "ip4": {{"ip": "10.1.2.5/24", "gateway": "10.1.2.1",
                        "routes": [{{"dst": "0.0.0.0/0"}}, {{"dst": "10.9.0.0/16", "gw": "10.1.2.254"}}]}},
                "ip6": {{"ip": "fd00::5/64", "gateway": "fd00::1", "routes": [{{"dst": "::/0"}}]}},
                "dns": {{"nameservers": ["10.1.2.1"], "domain": "x", "search": ["a.b"], "options": ["ndots:5"]}}}}"#
            ));
            assert_eq!(got, want, "{ver}");
        }
    }

    fn current(ver: &str, version_field: bool, mtu: bool) -> Value {
        let ver4 = if version_field {
            r#""version": "4","#
        } else {
            ""
        };
        let ver6 = if version_field {
            r#""version": "6","#
        } else {
            ""
        };
        let mtu = if mtu { r#""mtu": 1500,"# } else { "" };
        v(&format!(
            r#"{{"cniVersion": "{ver}",
            "interfaces": [
              {{"name": "tapd1f0c2a3-11", {mtu} "mac": "02:aa:bb:cc:dd:01"}},
              {{"name": "eth0", {mtu} "mac": "02:aa:bb:cc:dd:02", "sandbox": "/run/netns/pod1"}}],
            "ips": [{{{ver4} "address": "10.1.2.5/24", "gateway": "10.1.2.1", "interface": 1}},
                    {{{ver6} "address": "fd00::5/64", "gateway": "fd00::1", "interface": 1}}],
            "routes": [{{"dst": "0.0.0.0/0"}}, {{"dst": "10.9.0.0/16", "gw": "10.1.2.254"}}, {{"dst": "::/0"}}],
            "dns": {{"nameservers": ["10.1.2.1"], "domain": "x", "search": ["a.b"], "options": ["ndots:5"]}}}}"#
        ))
    }

    #[test]
    fn current_shapes_match_spec() {
        for ver in ["0.3.0", "0.3.1", "0.4.0"] {
            assert_eq!(sample().to_json(ver).unwrap(), current(ver, true, false));
        }
        assert_eq!(
            sample().to_json("1.0.0").unwrap(),
            current("1.0.0", false, false)
        );
        assert_eq!(
            sample().to_json("1.1.0").unwrap(),
            current("1.1.0", false, true)
        );
    }

    #[test]
    fn empty_parts_are_omitted() {
        assert_eq!(
            CniResult::default().to_json("1.0.0").unwrap(),
            v(r#"{"cniVersion":"1.0.0"}"#)
        );
        assert_eq!(
            CniResult::default().to_json("0.2.0").unwrap(),
            v(r#"{"cniVersion":"0.2.0"}"#)
        );
        assert_eq!(CniResult::default().to_json("1.0").unwrap_err().code, 1);
    }

    #[test]
    fn round_trips_every_version() {
        for ver in crate::cni::version::SUPPORTED {
            let json = sample().to_json(ver).unwrap();
            let back = CniResult::from_json(&json, ver).unwrap();
            let mut want = sample();
            if !at_least(ver, "0.3.0") {
                want.interfaces.clear();
                want.ips.iter_mut().for_each(|ip| ip.interface = None);
                // Routes come back grouped by family: v4 then v6, as here.
            }
            if !at_least(ver, "1.1.0") {
                want.interfaces.iter_mut().for_each(|i| i.mtu = None);
            }
            assert_eq!(back, want, "{ver}");
        }
    }

    #[test]
    fn prev_result_errors_are_code_6() {
        for (bad, ver) in [
            (r#"[]"#, "1.0.0"),
            (r#"{"cniVersion":"0.4.0"}"#, "1.0.0"),
            (r#"{"ips":[{"address":"10.0.0.1"}]}"#, "1.0.0"),
            (r#"{"ips":[{"address":"10.0.0.1/33"}]}"#, "1.0.0"),
            (
                r#"{"ips":[{"address":"10.0.0.1/24","interface":0}]}"#,
                "1.0.0",
            ),
            (r#"{"interfaces":[{"mac":"x"}]}"#, "1.0.0"),
            (r#"{"interfaces":{}}"#, "1.0.0"),
            (r#"{"dns":{"nameservers":[1]}}"#, "1.0.0"),
            (r#"{"ip4":{"ip":"fd00::1/64"}}"#, "0.2.0"),
            (r#"{"routes":[{"gw":"1.2.3.4"}]}"#, "0.4.0"),
        ] {
            let e = CniResult::from_json(&v(bad), ver).unwrap_err();
            assert_eq!(e.code, 6, "{bad}");
        }
        // libcni's re-serialised form: dns {} and no cniVersion are fine.
        let r = CniResult::from_json(
            &v(r#"{"dns":{},"interfaces":[{"name":"a","sandbox":""}]}"#),
            "1.0.0",
        )
        .unwrap();
        assert_eq!(r.interfaces[0].sandbox, None);
    }

    #[test]
    fn append_rebases_indices_and_merges_dns() {
        let mut prev = CniResult {
            interfaces: vec![Interface {
                name: "sriov0".into(),
                ..Interface::default()
            }],
            ips: vec![IpConfig {
                address: "192.168.0.2".parse().unwrap(),
                prefix_len: 24,
                gateway: None,
                interface: Some(0),
            }],
            dns: Dns {
                nameservers: vec!["10.1.2.1".into(), "8.8.8.8".into()],
                ..Dns::default()
            },
            ..CniResult::default()
        };
        prev.append(sample());
        assert_eq!(prev.interfaces.len(), 3);
        assert_eq!(prev.ips[0].interface, Some(0));
        assert_eq!(prev.ips[1].interface, Some(2));
        assert_eq!(prev.ips[2].interface, Some(2));
        assert_eq!(prev.dns.nameservers, ["10.1.2.1", "8.8.8.8"]);
        assert_eq!(prev.dns.domain.as_deref(), Some("x"));
    }
}
