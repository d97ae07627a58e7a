//! Configuration: built-in defaults <- node file <- stdin.
//!
//! The plugin keys live in a `"contrail": {...}` object, both in the node
//! file (the admin-owned `10-contrail.conf` of the reference) and on stdin.
//! The node file is the first file, in lexical order, whose name ends with
//! `contrail.conf` or `tf-cni.conf` in `/etc/cni/net.d`, else in
//! `/etc/kubernetes/cni/net.d` (both replaced by `$CONTRAIL_CNI_CONF_DIRS`).
//! A missing node file is fine; an unreadable or invalid one is code 7.
//!
//! Keys that decide where the plugin writes or which agent it trusts
//! ([`NODE_ONLY`]) keep the node file's value when it sets them: under Multus
//! part of stdin is written by users.
//!
//! Codes: stdin that cannot be decoded (not UTF-8, NUL bytes, not JSON, not
//! an object, nested too deep, `cniVersion` not a string) is 6; a value that
//! decodes but is wrong (type, range, missing `name`) is 7 naming the key.
//! Unknown keys are ignored everywhere. JSON `null` means "not set".
//!
//! | key | default | accepted |
//! | --- | --- | --- |
//! | `cluster-name` | `k8s` | `^[A-Za-z0-9][A-Za-z0-9_.-]*$` |
//! | `mode` | `k8s` | `k8s`, `mesos` |
//! | `meta-plugin` | `multus` | string; legacy bool: true = `multus`, false = "" |
//! | `delegate` | unset | bool |
//! | `vif-type` | `veth` | `veth`, `macvlan` |
//! | `parent-interface` | `eth0` | an interface name |
//! | `mtu` | 1500 | 68..=65535 |
//! | `network-name` | "" | string |
//! | `mesos-ip`, `mesos-port` | unset | IP / 1..=65535 ("" = unset) |
//! | `log-file` | `/var/log/contrail/cni/opencontrail.log` | absolute path |
//! | `log-level` | info | off/error/warn/info/debug/trace or 0..=5 (that order) |
//! | `log-max-size` | 10 MiB | bytes, 0 = never rotate |
//! | `log-max-files` | 10 | 0..=1000 |
//! | `vrouter-ip` | `127.0.0.1` | an IP address |
//! | `vrouter-port` | 9091 | 1..=65535 |
//! | `config-dir` | `/var/lib/contrail/ports/vm` | absolute path |
//! | `poll-timeout` | 3 (s) | 1..=3600 |
//! | `poll-retries` | 20 | 1..=100000 |
//! | `v6-prefix-len` | unset | 1..=128 |
//!
//! Integers may be JSON numbers or strings of digits (the reference writes
//! ports and the log level as strings).

use crate::cni::args::{is_container_id, printable, validate_ifname};
use crate::cni::error::{code, Error, Result};
use crate::cni::version::IMPLICIT;
use log::LevelFilter;
use serde_json::{Map, Value};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Environment variable: `:`-separated directories searched for the node
/// file instead of `/etc/cni/net.d:/etc/kubernetes/cni/net.d` (tests).
pub const CONF_DIRS_ENV: &str = "CONTRAIL_CNI_CONF_DIRS";

/// A JSON object.
type Object = Map<String, Value>;

/// Where the node file is looked for by default, in order.
pub const DEFAULT_CONF_DIRS: [&str; 2] = ["/etc/cni/net.d", "/etc/kubernetes/cni/net.d"];

/// Node-file names end with one of these.
const NODE_FILE_SUFFIXES: [&str; 2] = ["contrail.conf", "tf-cni.conf"];

/// Largest accepted stdin and node file: 1 MiB (skel reads without a limit).
pub const MAX_INPUT: usize = 1 << 20;

/// `contrail` keys stdin cannot override once the node file sets them.
pub const NODE_ONLY: [&str; 4] = ["config-dir", "log-file", "vrouter-ip", "vrouter-port"];

/// Interface type of the pod's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VifType {
    Veth,
    Macvlan,
}

/// Orchestrator mode; only `mesos` changes behaviour.
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
    /// None when unset.
    pub mesos_ip: Option<IpAddr>,
    /// 0 when unset.
    pub mesos_port: u16,
    pub log_file: PathBuf,
    pub log_level: log::LevelFilter,
    /// Rotation: size of one file in bytes and how many rotated files to keep.
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub vrouter_ip: IpAddr,
    pub vrouter_port: u16,
    pub config_dir: PathBuf,
    /// Seconds.
    pub poll_timeout: u64,
    pub poll_retries: u32,
    /// IPv6 prefix length to use for the agent's v6 address (default 128).
    pub v6_prefix_len: Option<u8>,
}

impl Default for Contrail {
    /// The reference's compiled-in defaults (log level: info).
    fn default() -> Self {
        Contrail {
            cluster_name: "k8s".into(),
            mode: Mode::K8s,
            meta_plugin: "multus".into(),
            delegate: None,
            vif_type: VifType::Veth,
            parent_interface: "eth0".into(),
            mtu: 1500,
            network_name: String::new(),
            mesos_ip: None,
            mesos_port: 0,
            log_file: "/var/log/contrail/cni/opencontrail.log".into(),
            log_level: LevelFilter::Info,
            log_max_size: 10 << 20,
            log_max_files: 10,
            vrouter_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            vrouter_port: 9091,
            config_dir: "/var/lib/contrail/ports/vm".into(),
            poll_timeout: 3,
            poll_retries: 20,
            v6_prefix_len: None,
        }
    }
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
    /// The config's `cniVersion`; missing or "" in stdin is stored as "0.1.0".
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
    load_verbose(stdin).map(|(conf, _)| conf)
}

/// [`load`], also returning warnings to log once logging is up (stdin tried
/// to override a [`NODE_ONLY`] key).
pub fn load_verbose(stdin: &[u8]) -> Result<(NetConf, Vec<String>)> {
    load_from(stdin, &conf_dirs())
}

/// [`load_verbose`] with explicit node-file directories.
pub fn load_from(stdin: &[u8], dirs: &[PathBuf]) -> Result<(NetConf, Vec<String>)> {
    let top = decode_object(stdin, code::DECODE).map_err(|e| e.context("stdin"))?;
    let cni_version = match top.get("cniVersion") {
        None | Some(Value::Null) => IMPLICIT.to_string(),
        Some(Value::String(v)) if v.is_empty() => IMPLICIT.to_string(),
        Some(Value::String(v)) => v.clone(),
        Some(_) => return Err(Error::new(code::DECODE, "cniVersion is not a string")),
    };
    let name = match top.get("name") {
        Some(Value::String(n)) if is_container_id(n) => n.clone(),
        Some(Value::String(n)) => {
            return Err(Error::new(
                code::INVALID_CONFIG,
                format!("invalid network name {}", printable(n, 64)),
            )
            .with_details("must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$"))
        }
        None | Some(Value::Null) => {
            return Err(Error::new(code::INVALID_CONFIG, "missing network name"))
        }
        Some(_) => {
            return Err(Error::new(
                code::INVALID_CONFIG,
                "network name is not a string",
            ))
        }
    };

    let (node_file, node) = read_node(dirs)?;
    let mut contrail = Contrail::default();
    if let (Some(path), Some(top)) = (&node_file, &node) {
        contrail_obj(top)
            .and_then(|obj| obj.map_or(Ok(()), |o| contrail.apply(o)))
            .map_err(|e| e.context(format!("node file {}", path.display())))?;
    }
    let warnings = match contrail_obj(&top).map_err(|e| e.context("stdin"))? {
        Some(obj) => contrail.apply_stdin(obj, node.as_ref())?,
        None => Vec::new(),
    };

    let prev_result = top.get("prevResult").filter(|v| !v.is_null()).cloned();
    let valid_attachments = ["cni.dev/valid-attachments", "cni.dev/attachments"]
        .into_iter()
        .find_map(|k| top.get(k).filter(|v| !v.is_null()).map(|v| (k, v)))
        .map(|(k, v)| attachments(k, v))
        .transpose()?;

    Ok((
        NetConf {
            cni_version,
            name,
            contrail,
            prev_result,
            valid_attachments,
            // decode_object checked UTF-8.
            raw: String::from_utf8_lossy(stdin).into_owned(),
            node_file,
        },
        warnings,
    ))
}

/// The directories searched for the node file: `$CONTRAIL_CNI_CONF_DIRS`
/// (`:`-separated) when set and non-empty, else [`DEFAULT_CONF_DIRS`].
pub fn conf_dirs() -> Vec<PathBuf> {
    match std::env::var(CONF_DIRS_ENV) {
        Ok(v) if !v.is_empty() => v
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect(),
        _ => DEFAULT_CONF_DIRS.iter().map(PathBuf::from).collect(),
    }
}

/// Best-effort configuration for logging an error when [`load`] failed:
/// defaults with every valid key of the node file applied (bad keys and a
/// broken file are skipped), so the failure is logged where the admin
/// expects it.
pub fn fallback_contrail(dirs: &[PathBuf]) -> Contrail {
    let mut c = Contrail::default();
    if let Ok((_, Some(node))) = read_node(dirs) {
        if let Ok(Some(obj)) = contrail_obj(&node) {
            for (k, v) in obj {
                let _ = c.set(k, v);
            }
        }
    }
    c
}

/// `bytes` as a JSON object, else error `code` (6 for stdin, 7 for the
/// node file). serde_json's recursion limit (128) turns deep nesting into an
/// error, not a stack overflow.
fn decode_object(stdin: &[u8], code: u32) -> Result<Object> {
    let bad = |why: String| Error::new(code, format!("cannot decode: {why}"));
    if stdin.len() > MAX_INPUT {
        return Err(bad(format!("larger than {MAX_INPUT} bytes")));
    }
    if stdin.contains(&0) {
        return Err(bad("contains a NUL byte".into()));
    }
    if stdin.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("empty".into()));
    }
    let text = std::str::from_utf8(stdin).map_err(|_| bad("not UTF-8".into()))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(bad("not a JSON object".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// The first node file in `dirs` and its parsed content. A directory that
/// cannot be read is skipped, as in the reference; a matching file that
/// cannot be read or parsed is code 7 naming it.
fn read_node(dirs: &[PathBuf]) -> Result<(Option<PathBuf>, Option<Object>)> {
    let Some(path) = dirs.iter().find_map(|d| find_node_file(d)) else {
        return Ok((None, None));
    };
    let ctx = |e: Error| e.context(format!("node file {}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_INPUT as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| ctx(Error::new(code::INVALID_CONFIG, e.to_string())))?;
    let obj = decode_object(&bytes, code::INVALID_CONFIG).map_err(ctx)?;
    Ok((Some(path), Some(obj)))
}

fn find_node_file(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| NODE_FILE_SUFFIXES.iter().any(|s| n.ends_with(s)))
        })
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// The `contrail` object of a config, if any; code 7 when it is not an object.
fn contrail_obj(top: &Map<String, Value>) -> Result<Option<&Map<String, Value>>> {
    match top.get("contrail") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(Error::new(
            code::INVALID_CONFIG,
            "contrail is not an object",
        )),
    }
}

fn attachments(key: &str, v: &Value) -> Result<Vec<Attachment>> {
    let bad = || {
        Error::new(
            code::INVALID_CONFIG,
            format!("{key} must be a list of {{\"containerID\": string, \"ifname\": string}}"),
        )
    };
    v.as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|a| {
            let field = |f: &str| a.get(f).and_then(Value::as_str).map(String::from);
            Ok(Attachment {
                container_id: field("containerID").ok_or_else(bad)?,
                ifname: field("ifname").ok_or_else(bad)?,
            })
        })
        .collect()
}

/// Code 7 naming `contrail.<key>` and showing (a bounded copy of) the value.
fn invalid(key: &str, v: &Value, why: &str) -> Error {
    Error::new(
        code::INVALID_CONFIG,
        format!("invalid contrail.{key} {}: {why}", shown(v)),
    )
}

/// A JSON value as text for messages, bounded (JSON is already escaped).
fn shown(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn string(key: &str, v: &Value) -> Result<String> {
    v.as_str()
        .map(String::from)
        .ok_or_else(|| invalid(key, v, "must be a string"))
}

/// A number or a string of decimal digits (the reference writes ports and
/// the log level as strings) within `min..=max`.
fn uint(key: &str, v: &Value, min: u64, max: u64) -> Result<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
    .ok_or_else(|| invalid(key, v, "must be a non-negative integer"))?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(invalid(key, v, &format!("must be in {min}..={max}")))
    }
}

fn abs_path(key: &str, v: &Value) -> Result<PathBuf> {
    let s = string(key, v)?;
    if s.starts_with('/') && !s.contains('\0') && s.len() < 4096 {
        Ok(PathBuf::from(s))
    } else {
        Err(invalid(key, v, "must be an absolute path"))
    }
}

fn ip(key: &str, v: &Value) -> Result<IpAddr> {
    string(key, v)?
        .parse::<IpAddr>()
        .map_err(|_| invalid(key, v, "must be an IP address"))
}

/// `log-level`: a name (off, error, warn/warning, info, debug, trace; any
/// case) or 0..=5 as a number or string, in the `log` crate's order:
/// 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace. The reference's
/// never-used default `"4"` is therefore debug.
fn level(key: &str, v: &Value) -> Result<LevelFilter> {
    const BY_NUMBER: [LevelFilter; 6] = [
        LevelFilter::Off,
        LevelFilter::Error,
        LevelFilter::Warn,
        LevelFilter::Info,
        LevelFilter::Debug,
        LevelFilter::Trace,
    ];
    let by_number = uint(key, v, 0, 5)
        .ok()
        .and_then(|n| BY_NUMBER.get(n as usize));
    if let Some(l) = by_number {
        return Ok(*l);
    }
    match v.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("warning") => Ok(LevelFilter::Warn),
        Some(s) => s.parse().map_err(|_| {
            invalid(
                key,
                v,
                "must be off, error, warn, info, debug, trace or 0..=5",
            )
        }),
        None => Err(invalid(key, v, "must be a string or a number")),
    }
}

impl Contrail {
    /// The agent's address: `vrouter-ip` and `vrouter-port`.
    pub fn agent_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.vrouter_ip, self.vrouter_port)
    }

    /// The Mesos manager's address, None unless `mesos-ip` and `mesos-port`
    /// are both set.
    pub fn mesos_addr(&self) -> Option<std::net::SocketAddr> {
        let ip = self.mesos_ip?;
        (self.mesos_port != 0).then(|| std::net::SocketAddr::new(ip, self.mesos_port))
    }

    /// Applies a `contrail` object; the first bad known key is code 7.
    fn apply(&mut self, obj: &Map<String, Value>) -> Result<()> {
        obj.iter().try_for_each(|(k, v)| self.set(k, v))
    }

    /// Applies stdin's `contrail` object, except the [`NODE_ONLY`] keys the
    /// node file sets; returns a warning for each such key stdin tried to
    /// change.
    fn apply_stdin(
        &mut self,
        obj: &Map<String, Value>,
        node: Option<&Map<String, Value>>,
    ) -> Result<Vec<String>> {
        let node_sets = |k: &str| {
            node.and_then(|n| contrail_obj(n).ok().flatten())
                .and_then(|c| c.get(k))
                .is_some_and(|v| !v.is_null())
        };
        let mut warnings = Vec::new();
        for (k, v) in obj {
            if NODE_ONLY.contains(&k.as_str()) && node_sets(k) {
                let mut probe = self.clone();
                if probe.set(k, v).is_err() || probe != *self {
                    warnings.push(format!(
                        "stdin sets contrail.{k} = {}; keeping the node file's value",
                        shown(v)
                    ));
                }
                continue;
            }
            self.set(k, v).map_err(|e| e.context("stdin"))?;
        }
        Ok(warnings)
    }

    /// Sets one key; unknown keys and `null` are ignored.
    fn set(&mut self, key: &str, v: &Value) -> Result<()> {
        if v.is_null() {
            return Ok(());
        }
        match key {
            "cluster-name" => {
                let s = string(key, v)?;
                if !is_container_id(&s) {
                    return Err(invalid(key, v, "must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$"));
                }
                self.cluster_name = s;
            }
            "mode" => {
                self.mode = match string(key, v)?.as_str() {
                    "k8s" => Mode::K8s,
                    "mesos" => Mode::Mesos,
                    _ => return Err(invalid(key, v, "must be k8s or mesos")),
                }
            }
            // A bool in R5.1-R2003: true meant multus.
            "meta-plugin" => {
                self.meta_plugin = match v {
                    Value::Bool(true) => "multus".into(),
                    Value::Bool(false) => String::new(),
                    _ => string(key, v)?,
                }
            }
            "delegate" => {
                self.delegate = Some(
                    v.as_bool()
                        .ok_or_else(|| invalid(key, v, "must be a boolean"))?,
                )
            }
            "vif-type" => {
                self.vif_type = match string(key, v)?.as_str() {
                    "veth" => VifType::Veth,
                    "macvlan" => VifType::Macvlan,
                    _ => return Err(invalid(key, v, "must be veth or macvlan")),
                }
            }
            "parent-interface" => {
                let s = string(key, v)?;
                validate_ifname(&s).map_err(|e| invalid(key, v, &e.msg))?;
                self.parent_interface = s;
            }
            "mtu" => self.mtu = uint(key, v, 68, 65535)? as u32,
            "network-name" => self.network_name = string(key, v)?,
            "mesos-ip" => {
                self.mesos_ip = match v.as_str() {
                    Some("") => None,
                    _ => Some(ip(key, v)?),
                }
            }
            "mesos-port" => {
                self.mesos_port = match v.as_str() {
                    Some("") => 0,
                    _ => uint(key, v, 1, 65535)? as u16,
                }
            }
            "log-file" => self.log_file = abs_path(key, v)?,
            "log-level" => self.log_level = level(key, v)?,
            // 0 disables rotation.
            "log-max-size" => self.log_max_size = uint(key, v, 0, u64::MAX)?,
            "log-max-files" => self.log_max_files = uint(key, v, 0, 1000)? as u32,
            "vrouter-ip" => self.vrouter_ip = ip(key, v)?,
            "vrouter-port" => self.vrouter_port = uint(key, v, 1, 65535)? as u16,
            "config-dir" => self.config_dir = abs_path(key, v)?,
            "poll-timeout" => self.poll_timeout = uint(key, v, 1, 3600)?,
            "poll-retries" => self.poll_retries = uint(key, v, 1, 100_000)? as u32,
            "v6-prefix-len" => self.v6_prefix_len = Some(uint(key, v, 1, 128)? as u8),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A temp dir holding an optional node file; removed on drop.
    struct Dir(PathBuf);
    impl Dir {
        fn new(node: Option<(&str, &str)>) -> Dir {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "ccni-config-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            if let Some((name, body)) = node {
                std::fs::write(p.join(name), body).unwrap();
            }
            Dir(p)
        }
        fn load(&self, stdin: &str) -> Result<(NetConf, Vec<String>)> {
            load_from(stdin.as_bytes(), std::slice::from_ref(&self.0))
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn defaults_without_node_file() {
        let d = Dir::new(None);
        let (c, w) = d.load(r#"{"name":"net"}"#).unwrap();
        assert_eq!(c.cni_version, "0.1.0");
        assert_eq!(c.contrail, Contrail::default());
        assert_eq!(c.node_file, None);
        assert!(w.is_empty());
        assert_eq!(c.prev_result, None);
        assert_eq!(c.valid_attachments, None);
    }

    #[test]
    fn reference_config_parses() {
        let d = Dir::new(None);
        let (c, _) = d
            .load(
                r#"{"cniVersion":"0.3.1","name":"contrail-k8s-cni","type":"contrail-k8s-cni",
                "ipam":{},"dns":{},"args":{},"runtimeConfig":{},"capabilities":{},"cni.dev/x":1,
                "contrail":{"cluster-name":"c1","mode":"k8s","meta-plugin":"multus","vif-type":"macvlan",
                "parent-interface":"eth1","mtu":1400,"vrouter-ip":"10.0.0.1","vrouter-port":"9092",
                "config-dir":"/tmp/x","poll-timeout":5,"poll-retries":15,"log-file":"/tmp/l.log",
                "log-level":"4","mesos-ip":"","mesos-port":"6991","network-name":"n","unknown":[1],
                "v6-prefix-len":64,"delegate":true,"log-max-size":"1024","log-max-files":3}}"#,
            )
            .unwrap();
        let k = &c.contrail;
        assert_eq!(c.cni_version, "0.3.1");
        assert_eq!(k.cluster_name, "c1");
        assert_eq!(k.vif_type, VifType::Macvlan);
        assert_eq!(k.mtu, 1400);
        assert_eq!(k.vrouter_port, 9092);
        assert_eq!(k.mesos_port, 6991);
        assert_eq!(k.log_level, LevelFilter::Debug);
        assert_eq!(k.log_max_size, 1024);
        assert_eq!(k.v6_prefix_len, Some(64));
        assert_eq!(k.delegate, Some(true));
    }

    #[test]
    fn node_file_then_stdin_with_protected_keys() {
        let d = Dir::new(Some((
            "10-contrail.conf",
            r#"{"cniVersion":"0.3.1","name":"x","contrail":{"log-file":"/tmp/node.log","mtu":1450,
               "vrouter-port":9091,"cluster-name":"node"}}"#,
        )));
        std::fs::write(d.0.join("20-contrail.conf"), "garbage").unwrap();
        std::fs::write(d.0.join("05-other.conflist"), "garbage").unwrap();
        let (c, w) = d
            .load(
                r#"{"cniVersion":"1.0.0","name":"n","contrail":{"log-file":"/tmp/evil","mtu":1400,
                   "vrouter-port":"9091","config-dir":"/tmp/cd"}}"#,
            )
            .unwrap();
        assert_eq!(c.node_file, Some(d.0.join("10-contrail.conf")));
        assert_eq!(c.contrail.log_file, PathBuf::from("/tmp/node.log"));
        assert_eq!(c.contrail.mtu, 1400);
        assert_eq!(c.contrail.cluster_name, "node");
        // Not set by the node file: stdin decides.
        assert_eq!(c.contrail.config_dir, PathBuf::from("/tmp/cd"));
        // Same port, only the spelling differs: no warning.
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("log-file"));
    }

    #[test]
    fn second_dir_and_tf_name() {
        let a = Dir::new(None);
        let b = Dir::new(Some(("10-tf-cni.conf", r#"{"contrail":{"mtu":9000}}"#)));
        let (c, _) = load_from(
            br#"{"name":"n"}"#,
            &[a.0.clone(), PathBuf::from("/nonexistent"), b.0.clone()],
        )
        .unwrap();
        assert_eq!(c.contrail.mtu, 9000);
    }

    #[test]
    fn bad_node_file_is_code_7_naming_it() {
        let d = Dir::new(Some(("10-contrail.conf", "{not json")));
        let e = d.load(r#"{"name":"n"}"#).unwrap_err();
        assert_eq!(e.code, 7);
        assert!(e.msg.contains("10-contrail.conf"), "{}", e.msg);
        let d = Dir::new(Some((
            "10-contrail.conf",
            r#"{"contrail":{"mtu":"x","log-file":"/tmp/fallback.log"}}"#,
        )));
        let e = d.load(r#"{"name":"n"}"#).unwrap_err();
        assert!(
            e.msg.contains("10-contrail.conf") && e.msg.contains("mtu"),
            "{}",
            e.msg
        );
        let f = fallback_contrail(std::slice::from_ref(&d.0));
        assert_eq!(f.log_file, PathBuf::from("/tmp/fallback.log"));
        assert_eq!(f.mtu, 1500);
    }

    #[test]
    fn decode_errors_are_code_6() {
        let d = Dir::new(None);
        let deep = "[".repeat(100_000);
        let big = format!(r#"{{"name":"n","x":"{}"}}"#, "a".repeat(MAX_INPUT));
        for bad in [
            "",
            "  \n",
            "nope",
            "[]",
            "\"s\"",
            "{\"name\":\"n\"\0}",
            &deep,
            &big,
            r#"{"name":"n","cniVersion":1}"#,
        ] {
            let e = d.load(bad).unwrap_err();
            assert_eq!(e.code, 6, "{:?}", &bad[..bad.len().min(40)]);
        }
        let e = load_from(b"{\"name\":\"n\",\"x\":\"\xff\"}", &[]).unwrap_err();
        assert_eq!(e.code, 6);
    }

    #[test]
    fn invalid_values_are_code_7_naming_the_key() {
        let d = Dir::new(None);
        for (key, val) in [
            ("mtu", r#""x""#),
            ("mtu", "70000"),
            ("mtu", "67"),
            ("mtu", "-1"),
            ("mtu", "1.5"),
            ("vrouter-port", "0"),
            ("vrouter-port", r#""99999""#),
            ("vif-type", r#""foo""#),
            ("mode", r#""bar""#),
            ("vrouter-ip", r#""localhost""#),
            ("config-dir", r#""relative/dir""#),
            ("log-file", r#""x.log""#),
            ("log-level", r#""loud""#),
            ("log-level", "6"),
            ("poll-timeout", "0"),
            ("poll-retries", "0"),
            ("v6-prefix-len", "129"),
            ("parent-interface", r#""a/b""#),
            ("cluster-name", r#""../x""#),
            ("delegate", r#""yes""#),
            ("mesos-ip", r#""x""#),
            ("meta-plugin", "1"),
        ] {
            let e = d
                .load(&format!(r#"{{"name":"n","contrail":{{"{key}":{val}}}}}"#))
                .unwrap_err();
            assert_eq!(e.code, 7, "{key}={val}");
            assert!(e.msg.contains(key), "{key}: {}", e.msg);
        }
        for (top, what) in [
            (r#"{}"#, "name"),
            (r#"{"name":""}"#, "name"),
            (r#"{"name":"../x"}"#, "name"),
            (r#"{"name":"a b"}"#, "name"),
            (r#"{"name":7}"#, "name"),
            (r#"{"name":"n","contrail":[]}"#, "contrail"),
            (
                r#"{"name":"n","cni.dev/valid-attachments":{}}"#,
                "valid-attachments",
            ),
        ] {
            let e = d.load(top).unwrap_err();
            assert_eq!(e.code, 7, "{top}");
            assert!(e.msg.contains(what), "{top}: {}", e.msg);
        }
    }

    #[test]
    fn log_levels() {
        let d = Dir::new(None);
        for (val, want) in [
            (r#""debug""#, LevelFilter::Debug),
            (r#""WARNING""#, LevelFilter::Warn),
            (r#""error""#, LevelFilter::Error),
            ("0", LevelFilter::Off),
            (r#""3""#, LevelFilter::Info),
        ] {
            let (c, _) = d
                .load(&format!(
                    r#"{{"name":"n","contrail":{{"log-level":{val}}}}}"#
                ))
                .unwrap();
            assert_eq!(c.contrail.log_level, want, "{val}");
        }
    }

    #[test]
    fn attachments_prefer_valid_key() {
        let d = Dir::new(None);
        let (c, _) = d
            .load(
                r#"{"name":"n","cni.dev/attachments":[{"containerID":"old","ifname":"eth0"}],
                   "cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}],
                   "prevResult":{"cniVersion":"1.0.0"}}"#,
            )
            .unwrap();
        let att = c.valid_attachments.unwrap();
        assert_eq!(
            att,
            [Attachment {
                container_id: "a".into(),
                ifname: "eth0".into()
            }]
        );
        assert!(c.prev_result.is_some());
        let (c, _) = d.load(r#"{"name":"n","cni.dev/attachments":[]}"#).unwrap();
        assert_eq!(c.valid_attachments, Some(vec![]));
    }
}
