//! Configuration: built-in defaults <- node configuration <- stdin.
//!
//! Who writes what (docs/security.md): the node configuration is the
//! admin's, root-owned, and trusted; stdin is written by whoever wrote the
//! network configuration, which under Multus is any tenant allowed to create
//! a NetworkAttachmentDefinition. So stdin may set only keys whose effect
//! stays inside the calling pod; every key that names a path, an address, a
//! host interface, a mode, another pod's VM or what is logged where is
//! node-only ([`KEYS`], column `node_only`). A node-only key in stdin that
//! differs from the effective value is ignored with one warning, never an
//! error, so old configurations keep working.
//!
//! The node configuration is the first file, in lexical order, of the first
//! node directory that has one, whose name ends with `contrail.conf` or
//! `tf-cni.conf` (the reference's node file), or contains `contrail` and
//! ends with `.conflist` (what `contrail-k8s-cni install` writes: the
//! `contrail` object of its `contrail-k8s-cni` entry). The directories are
//! `/etc/cni/net.d` then `/etc/kubernetes/cni/net.d`, or
//! `$CONTRAIL_CNI_CONF_DIRS` (the runtime's environment is trusted). The file
//! is read without following a symlink and must be a regular file owned by
//! root (or the plugin's user) and writable by nobody else. None at all is
//! fine: the built-in defaults apply.
//!
//! Codes: stdin that cannot be decoded (not UTF-8, NUL bytes, not JSON, not
//! an object, nested too deep, `cniVersion` not a string) is 6; a value that
//! decodes but is wrong (type, range, missing `name`) is 7 naming the key.
//! Unknown keys are ignored everywhere. JSON `null` means "not set".
//! Integers may be JSON numbers or strings of digits (the reference writes
//! ports and the log level as strings).

use crate::cni::error::{code, Error, Result};
use crate::cni::version::IMPLICIT;
use crate::ids::{ContainerId, IfName, NetName};
use log::LevelFilter;
use serde_json::{Map, Value};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Environment variable: `:`-separated directories searched for the node
/// configuration instead of [`DEFAULT_CONF_DIRS`].
pub const CONF_DIRS_ENV: &str = "CONTRAIL_CNI_CONF_DIRS";

/// Where the node configuration is looked for by default, in order.
pub const DEFAULT_CONF_DIRS: [&str; 2] = ["/etc/cni/net.d", "/etc/kubernetes/cni/net.d"];

/// The plugin's `type`; as a delegate network name it means "default".
pub const PLUGIN_TYPE: &str = "contrail-k8s-cni";

/// Largest accepted stdin and node file: 1 MiB (skel reads without a limit).
pub const MAX_INPUT: usize = 1 << 20;

/// The longest the agent phases of one ADD may take, whatever
/// `poll-timeout` x `poll-retries` says.
pub const MAX_POLL_BUDGET: Duration = Duration::from_secs(600);

/// A JSON object.
type Object = Map<String, Value>;

/// Interface type of the pod's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
    pub cluster_name: NetName,
    pub mode: Mode,
    /// The parent process name that means "called by a meta plugin";
    /// empty: never.
    pub meta_plugin: String,
    /// Explicit delegate mode (`"delegate": true|false`); None = detect.
    pub delegate: Option<bool>,
    pub vif_type: VifType,
    pub parent_interface: IfName,
    pub mtu: u32,
    pub mesos_ip: Option<IpAddr>,
    pub mesos_port: Option<u16>,
    pub log_file: PathBuf,
    pub log_level: LevelFilter,
    /// Rotation: size of one file in bytes (0: never rotate) and how many
    /// rotated files to keep.
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
    /// The reference's compiled-in defaults (log level: info). A unit test
    /// checks that they are the defaults [`KEYS`] documents.
    fn default() -> Self {
        Contrail {
            cluster_name: NetName::parse("k8s").unwrap_or_else(|_| unreachable!()),
            mode: Mode::K8s,
            meta_plugin: "multus".into(),
            delegate: None,
            vif_type: VifType::Veth,
            parent_interface: IfName::parse("eth0").unwrap_or_else(|_| unreachable!()),
            mtu: 1500,
            mesos_ip: None,
            mesos_port: None,
            log_file: "/var/log/contrail/cni/opencontrail.log".into(),
            log_level: LevelFilter::Info,
            log_max_size: 10 << 20,
            log_max_files: 10,
            vrouter_ip: IpAddr::from([127, 0, 0, 1]),
            vrouter_port: 9091,
            config_dir: "/var/lib/contrail/ports/vm".into(),
            poll_timeout: 3,
            poll_retries: 20,
            v6_prefix_len: None,
        }
    }
}

impl Contrail {
    /// The vRouter agent's address.
    pub fn vrouter(&self) -> SocketAddr {
        SocketAddr::new(self.vrouter_ip, self.vrouter_port)
    }

    /// The Mesos manager's address, when both halves are set.
    pub fn mesos(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.mesos_ip?, self.mesos_port?))
    }

    /// The time the agent phases of one ADD share: `poll-timeout` x
    /// `poll-retries`, at most [`MAX_POLL_BUDGET`].
    pub fn poll_budget(&self) -> Duration {
        Duration::from_secs(self.poll_timeout)
            .saturating_mul(self.poll_retries)
            .min(MAX_POLL_BUDGET)
    }
}

/// One configuration key: the single table the docs, the installer and
/// the merge rules come from.
pub struct Key {
    pub name: &'static str,
    /// The default as JSON text (`null`: unset).
    pub default: &'static str,
    /// What is accepted, for the docs.
    pub accepted: &'static str,
    /// True: only the node configuration may set it.
    pub node_only: bool,
    /// What it does, for the docs.
    pub notes: &'static str,
    set: fn(&mut Contrail, &Value) -> std::result::Result<(), String>,
}

/// Every key of the `contrail` object.
pub const KEYS: &[Key] = &[
    Key {
        name: "cluster-name",
        default: r#""k8s""#,
        accepted: "`^[A-Za-z0-9][A-Za-z0-9_.-]*$`",
        node_only: true,
        notes: "first part of the VM name `<cluster>__<namespace>__<pod>`",
        set: |c, v| {
            c.cluster_name = NetName::parse(&string(v)?).map_err(why)?;
            Ok(())
        },
    },
    Key {
        name: "mode",
        default: r#""k8s""#,
        accepted: "`k8s`, `mesos`",
        node_only: true,
        notes: "`mesos`: notify the Mesos manager, VM name = container id",
        set: |c, v| {
            c.mode = match string(v)?.as_str() {
                "k8s" => Mode::K8s,
                "mesos" => Mode::Mesos,
                _ => return Err("must be k8s or mesos".into()),
            };
            Ok(())
        },
    },
    Key {
        name: "meta-plugin",
        default: r#""multus""#,
        accepted: "a process name (legacy: `true` = multus, `false` = none)",
        node_only: true,
        notes: "parent process that means \"Multus delegate\" (`<name>-daemon` too)",
        set: |c, v| {
            c.meta_plugin = match v {
                // A bool in R5.1-R2003: true meant multus.
                Value::Bool(true) => "multus".into(),
                Value::Bool(false) => String::new(),
                _ => {
                    let s = string(v)?;
                    if s.len() > 64 || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
                        return Err("must be a process name".into());
                    }
                    s
                }
            };
            Ok(())
        },
    },
    Key {
        name: "delegate",
        default: "null",
        accepted: "`true`, `false`",
        node_only: false,
        notes: "forces Multus delegate mode on or off instead of detecting it",
        set: |c, v| {
            c.delegate = Some(v.as_bool().ok_or("must be a boolean")?);
            Ok(())
        },
    },
    Key {
        name: "vif-type",
        default: r#""veth""#,
        accepted: "`veth`, `macvlan`",
        node_only: true,
        notes: "`macvlan`: nested mode (Kubernetes inside OpenStack VMs)",
        set: |c, v| {
            c.vif_type = match string(v)?.as_str() {
                "veth" => VifType::Veth,
                "macvlan" => VifType::Macvlan,
                _ => return Err("must be veth or macvlan".into()),
            };
            Ok(())
        },
    },
    Key {
        name: "parent-interface",
        default: r#""eth0""#,
        accepted: "an interface name",
        node_only: true,
        notes: "nested mode: the VM's interface carrying the VLANs",
        set: |c, v| {
            c.parent_interface = IfName::parse(&string(v)?).map_err(why)?;
            Ok(())
        },
    },
    Key {
        name: "mtu",
        default: "1500",
        accepted: "68..=65535",
        node_only: false,
        notes: "both ends of the pod's interface",
        set: |c, v| {
            c.mtu = uint(v, 68, 65535)? as u32;
            Ok(())
        },
    },
    Key {
        name: "vrouter-ip",
        default: r#""127.0.0.1""#,
        accepted: "an IP address",
        node_only: true,
        notes: "the vRouter agent",
        set: |c, v| {
            c.vrouter_ip = ip(v)?;
            Ok(())
        },
    },
    Key {
        name: "vrouter-port",
        default: "9091",
        accepted: "1..=65535",
        node_only: true,
        notes: "the vRouter agent",
        set: |c, v| {
            c.vrouter_port = uint(v, 1, 65535)? as u16;
            Ok(())
        },
    },
    Key {
        name: "config-dir",
        default: r#""/var/lib/contrail/ports/vm""#,
        accepted: "an absolute path below /",
        node_only: true,
        notes: "port files; `multus/` and `cni-locks/` go beside it",
        set: |c, v| {
            c.config_dir = abs_path(v)?;
            Ok(())
        },
    },
    Key {
        name: "poll-timeout",
        default: "3",
        accepted: "1..=60 (seconds)",
        node_only: false,
        notes: "longest single agent request and sleep between attempts",
        set: |c, v| {
            c.poll_timeout = uint(v, 1, 60)?;
            Ok(())
        },
    },
    Key {
        name: "poll-retries",
        default: "20",
        accepted: "1..=1000",
        node_only: false,
        notes: "ADD's deadline is poll-timeout x poll-retries (at most 600 s) + 2 s",
        set: |c, v| {
            c.poll_retries = uint(v, 1, 1000)? as u32;
            Ok(())
        },
    },
    Key {
        name: "log-file",
        default: r#""/var/log/contrail/cni/opencontrail.log""#,
        accepted: "an absolute path below /",
        node_only: true,
        notes: "stderr when it cannot be opened",
        set: |c, v| {
            c.log_file = abs_path(v)?;
            Ok(())
        },
    },
    Key {
        name: "log-level",
        default: r#""info""#,
        accepted: "`off`, `error`, `warn`, `info`, `debug`, `trace`, or 0..=5",
        node_only: true,
        notes: "the reference's `\"4\"` is debug",
        set: |c, v| {
            c.log_level = level(v)?;
            Ok(())
        },
    },
    Key {
        name: "log-max-size",
        default: "10485760",
        accepted: "bytes; 0 = never rotate",
        node_only: true,
        notes: "rotation at startup, under a lock",
        set: |c, v| {
            c.log_max_size = uint(v, 0, u64::MAX)?;
            Ok(())
        },
    },
    Key {
        name: "log-max-files",
        default: "10",
        accepted: "0..=1000",
        node_only: true,
        notes: "rotated files kept",
        set: |c, v| {
            c.log_max_files = uint(v, 0, 1000)? as u32;
            Ok(())
        },
    },
    Key {
        name: "v6-prefix-len",
        default: "null",
        accepted: "1..=128",
        node_only: false,
        notes: "the agent sends no IPv6 prefix length: /128 and an on-link route when unset",
        set: |c, v| {
            c.v6_prefix_len = Some(uint(v, 1, 128)? as u8);
            Ok(())
        },
    },
    Key {
        name: "mesos-ip",
        default: "null",
        accepted: "an IP address (`\"\"` = unset)",
        node_only: true,
        notes: "the Mesos manager",
        set: |c, v| {
            c.mesos_ip = match v.as_str() {
                Some("") => None,
                _ => Some(ip(v)?),
            };
            Ok(())
        },
    },
    Key {
        name: "mesos-port",
        default: "null",
        accepted: "1..=65535 (`\"\"` = unset)",
        node_only: true,
        notes: "the Mesos manager",
        set: |c, v| {
            c.mesos_port = match v.as_str() {
                Some("") => None,
                _ => Some(uint(v, 1, 65535)? as u16),
            };
            Ok(())
        },
    },
];

/// The key called `name`.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The key table as Markdown, for README.md and docs (a test keeps the
/// README's copy equal to it).
pub fn keys_markdown() -> String {
    let mut out = String::from(
        "| key | default | accepted | node-only | notes |\n| --- | --- | --- | --- | --- |\n",
    );
    for k in KEYS {
        let default = match k.default {
            "null" => "unset".to_string(),
            d => format!("`{}`", d.trim_matches('"')),
        };
        out.push_str(&format!(
            "| `{}` | {default} | {} | {} | {} |\n",
            k.name,
            k.accepted,
            if k.node_only { "yes" } else { "no" },
            k.notes
        ));
    }
    out
}

/// The `contrail` object with every key that has a default, for the
/// configuration `contrail-k8s-cni install` writes.
pub fn defaults_object() -> Object {
    KEYS.iter()
        .filter_map(|k| {
            let v: Value = serde_json::from_slice(k.default.as_bytes()).ok()?;
            (!v.is_null()).then(|| (k.name.to_string(), v))
        })
        .collect()
}

/// Validates a `contrail` object the way the node configuration's is
/// applied (every key, by the setters ADD uses) and returns the effective
/// configuration: built-in defaults overridden by `obj`. A bad value is code
/// 7 naming the key; unknown keys are ignored, as everywhere (`install`
/// refuses them itself).
pub fn validate_contrail(obj: &Object) -> Result<Contrail> {
    let mut c = Contrail::default();
    c.apply_node(obj)?;
    Ok(c)
}

/// The names in `dir` the plugin reads as node configuration
/// (`*contrail.conf`, `*tf-cni.conf`, `*contrail*.conflist`), in the order
/// it tries them (lexical).
pub fn node_file_names(dir: &Path) -> std::io::Result<Vec<String>> {
    Ok(node_files(dir)?.into_iter().map(|(n, _)| n).collect())
}

/// [`node_file_names`] with the kind of each.
fn node_files(dir: &Path) -> std::io::Result<Vec<(String, NodeKind)>> {
    let mut names: Vec<(String, NodeKind)> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| node_kind(&n).map(|k| (n, k)))
        .collect();
    names.sort();
    Ok(names)
}

/// One entry of `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: ContainerId,
    pub ifname: IfName,
}

/// Where the node configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConf {
    pub path: PathBuf,
    /// The `contrail` object (empty when the file has none).
    pub contrail: Object,
}

/// The whole request configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    /// The config's `cniVersion`; missing or "" in stdin is "0.1.0".
    pub cni_version: String,
    pub name: NetName,
    pub contrail: Contrail,
    pub prev_result: Option<Value>,
    /// GC: `cni.dev/valid-attachments` (or `cni.dev/attachments`); None when absent.
    pub valid_attachments: Option<Vec<Attachment>>,
    /// The stdin bytes as received (Mesos forwards them).
    pub raw: String,
    /// Which node configuration was merged, if any.
    pub node_file: Option<PathBuf>,
}

/// Parses stdin and merges it over the node configuration and the
/// defaults, with the node directories of [`conf_dirs`].
pub fn load(stdin: &[u8]) -> Result<NetConf> {
    load_verbose(stdin).map(|(conf, _)| conf)
}

/// [`load`], also returning the warnings to log once logging is up (stdin
/// tried to change a node-only key).
pub fn load_verbose(stdin: &[u8]) -> Result<(NetConf, Vec<String>)> {
    load_from(stdin, &conf_dirs())
}

/// [`load_verbose`] with explicit node directories.
pub fn load_from(stdin: &[u8], dirs: &[PathBuf]) -> Result<(NetConf, Vec<String>)> {
    let top = decode_object(stdin, code::DECODE).map_err(|e| e.context("stdin"))?;
    let cni_version = match top.get("cniVersion") {
        None | Some(Value::Null) => IMPLICIT.to_string(),
        Some(Value::String(v)) if v.is_empty() => IMPLICIT.to_string(),
        Some(Value::String(v)) => v.clone(),
        Some(_) => return Err(Error::new(code::DECODE, "cniVersion is not a string")),
    };
    let name = match top.get("name") {
        Some(Value::String(n)) => NetName::parse(n)
            .map_err(|e| Error::new(code::INVALID_CONFIG, format!("network name: {e}")))?,
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
    let node = read_node(dirs)?;
    let mut contrail = Contrail::default();
    if let Some(n) = &node {
        contrail
            .apply_node(&n.contrail)
            .map_err(|e| e.context(format!("node configuration {}", n.path.display())))?;
    }
    let warnings = match contrail_obj(&top).map_err(|e| e.context("stdin"))? {
        Some(obj) => contrail.apply_stdin(obj)?,
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
            node_file: node.map(|n| n.path),
        },
        warnings,
    ))
}

/// The node directories: `$CONTRAIL_CNI_CONF_DIRS` (`:`-separated) when set
/// and non-empty, else [`DEFAULT_CONF_DIRS`].
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
/// defaults with every valid key of the node configuration applied (bad
/// keys and a broken file are skipped), so the failure is logged where the
/// admin expects it. Stdin plays no part.
pub fn fallback_contrail(dirs: &[PathBuf]) -> Contrail {
    let mut c = Contrail::default();
    if let Ok(Some(node)) = read_node(dirs) {
        for (k, v) in &node.contrail {
            let _ = c.set(k, v);
        }
    }
    c
}

/// `bytes` as a JSON object, else error `code` (6 for stdin, 7 for the
/// node file). serde_json's recursion limit (128) turns deep nesting into an
/// error, not a stack overflow.
fn decode_object(bytes: &[u8], code: u32) -> Result<Object> {
    let bad = |why: String| Error::new(code, format!("cannot decode: {why}"));
    if bytes.len() > MAX_INPUT {
        return Err(bad(format!("larger than {MAX_INPUT} bytes")));
    }
    if bytes.contains(&0) {
        return Err(bad("contains a NUL byte".into()));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("empty".into()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
    // from_slice, as every parse in the plugin: one serde_json reader in
    // the binary, not two (about 5 KB, docs/performance.md).
    match serde_json::from_slice::<Value>(text.as_bytes()) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(bad("not a JSON object".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// What kind of node configuration file a name is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NodeKind {
    /// `*contrail.conf`, `*tf-cni.conf`: one config with a `contrail` object.
    Conf,
    /// `*contrail*.conflist`: the `contrail` object of our plugin's entry.
    Conflist,
}

fn node_kind(name: &str) -> Option<NodeKind> {
    if name.ends_with("contrail.conf") || name.ends_with("tf-cni.conf") {
        Some(NodeKind::Conf)
    } else if name.contains("contrail") && name.ends_with(".conflist") {
        Some(NodeKind::Conflist)
    } else {
        None
    }
}

/// The node configuration: in the first directory that has one, the first
/// file (lexical order) whose name is a node configuration name and that
/// holds one (a conflist without a `contrail-k8s-cni` entry is not one). A
/// directory that cannot be read is skipped, as in the reference; a
/// matching file that is unsafe or cannot be read or parsed is code 7
/// naming it.
pub fn read_node(dirs: &[PathBuf]) -> Result<Option<NodeConf>> {
    for dir in dirs {
        let Ok(names) = node_files(dir) else {
            continue;
        };
        for (name, kind) in names {
            let path = dir.join(&name);
            let ctx = |e: Error| e.context(format!("node configuration {}", path.display()));
            let top = decode_object(&read_trusted(&path).map_err(ctx)?, code::INVALID_CONFIG)
                .map_err(ctx)?;
            let found = match kind {
                NodeKind::Conf => Some(contrail_obj(&top).map_err(ctx)?.cloned()),
                NodeKind::Conflist => conflist_contrail(&top).map_err(ctx)?,
            };
            if let Some(contrail) = found {
                return Ok(Some(NodeConf {
                    path,
                    contrail: contrail.unwrap_or_default(),
                }));
            }
        }
    }
    Ok(None)
}

/// Reads a node configuration file: not through a symlink, a regular file,
/// owned by root or the plugin's own user, writable by nobody else, at most
/// [`MAX_INPUT`] bytes. Anything else is code 7 saying why.
fn read_trusted(path: &Path) -> Result<Vec<u8>> {
    let bad = |why: String| Error::new(code::INVALID_CONFIG, why);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => bad("is a symlink; refusing it".into()),
            _ => bad(e.to_string()),
        })?;
    let meta = f.metadata().map_err(|e| bad(e.to_string()))?;
    let euid = nix::unistd::geteuid().as_raw();
    if !meta.is_file() {
        return Err(bad("is not a regular file".into()));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(bad(format!(
            "is owned by uid {}, not root; refusing it",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(bad(format!(
            "is writable by group or others (mode {:04o}); refusing it",
            meta.mode() & 0o7777
        )));
    }
    let mut bytes = Vec::new();
    f.take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    Ok(bytes)
}

/// The `contrail` object of a config, if any; code 7 when it is not an object.
fn contrail_obj(top: &Object) -> Result<Option<&Object>> {
    match top.get("contrail") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(Error::new(
            code::INVALID_CONFIG,
            "contrail is not an object",
        )),
    }
}

/// The `contrail` object of the conflist's `contrail-k8s-cni` entry:
/// None when it has no such entry (not ours), Some(None) when the entry
/// has no `contrail` object.
fn conflist_contrail(top: &Object) -> Result<Option<Option<Object>>> {
    let Some(plugins) = top.get("plugins").and_then(Value::as_array) else {
        return Ok(None);
    };
    let ours = plugins
        .iter()
        .filter_map(Value::as_object)
        .find(|p| p.get("type").and_then(Value::as_str) == Some(PLUGIN_TYPE));
    ours.map(|p| contrail_obj(p).map(|o| o.cloned()))
        .transpose()
}

fn attachments(key: &str, v: &Value) -> Result<Vec<Attachment>> {
    let bad = |why: String| {
        Error::new(
            code::INVALID_CONFIG,
            format!("{key} must be a list of {{\"containerID\": string, \"ifname\": string}}{why}"),
        )
    };
    v.as_array()
        .ok_or_else(|| bad(String::new()))?
        .iter()
        .map(|a| {
            let field = |f: &str| {
                a.get(f)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(String::new()))
            };
            Ok(Attachment {
                container_id: ContainerId::parse(field("containerID")?)
                    .map_err(|e| bad(format!(": {e}")))?,
                ifname: IfName::parse(field("ifname")?).map_err(|e| bad(format!(": {e}")))?,
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

fn why(e: crate::ids::Invalid) -> String {
    e.why
}

fn string(v: &Value) -> std::result::Result<String, String> {
    v.as_str()
        .map(String::from)
        .ok_or_else(|| "must be a string".into())
}

/// A number or a string of decimal digits within `min..=max`.
fn uint(v: &Value, min: u64, max: u64) -> std::result::Result<u64, String> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
    .ok_or("must be a non-negative integer")?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be in {min}..={max}"))
    }
}

/// An absolute path below `/` with no `.` or `..` component (its parent
/// must mean what it says), no NUL, shorter than PATH_MAX.
fn abs_path(v: &Value) -> std::result::Result<PathBuf, String> {
    let s = string(v)?;
    let p = Path::new(&s);
    let ok = s.starts_with('/')
        && !s.contains('\0')
        && s.len() < 4096
        && p.components().skip(1).count() > 0
        && p.components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err("must be an absolute path below / without . or ..".into())
    }
}

fn ip(v: &Value) -> std::result::Result<IpAddr, String> {
    string(v)?
        .parse()
        .map_err(|_| "must be an IP address".into())
}

/// `log-level`: a name (off, error, warn/warning, info, debug, trace; any
/// case) or 0..=5 as a number or string, in the `log` crate's order:
/// 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace. The reference's
/// never-used default `"4"` is therefore debug.
fn level(v: &Value) -> std::result::Result<LevelFilter, String> {
    const BY_NUMBER: [LevelFilter; 6] = [
        LevelFilter::Off,
        LevelFilter::Error,
        LevelFilter::Warn,
        LevelFilter::Info,
        LevelFilter::Debug,
        LevelFilter::Trace,
    ];
    if let Some(l) = uint(v, 0, 5).ok().and_then(|n| BY_NUMBER.get(n as usize)) {
        return Ok(*l);
    }
    let bad = || "must be off, error, warn, info, debug, trace or 0..=5".to_string();
    match v.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("warning") => Ok(LevelFilter::Warn),
        Some(s) => s.parse().map_err(|_| bad()),
        None => Err(bad()),
    }
}

impl Contrail {
    /// Sets one key; unknown keys and `null` are ignored; a bad value is
    /// code 7 naming the key.
    fn set(&mut self, key: &str, v: &Value) -> Result<()> {
        match (self::key(key), v) {
            (None, _) | (_, Value::Null) => Ok(()),
            (Some(k), _) => (k.set)(self, v).map_err(|w| invalid(key, v, &w)),
        }
    }

    /// Applies the node configuration's `contrail` object: every key.
    fn apply_node(&mut self, obj: &Object) -> Result<()> {
        obj.iter().try_for_each(|(k, v)| self.set(k, v))
    }

    /// Applies stdin's `contrail` object: keys that are not node-only are
    /// set (a bad value is code 7); a node-only key is ignored, with a
    /// warning when its value differs from the effective one (or is not
    /// valid at all).
    fn apply_stdin(&mut self, obj: &Object) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        for (k, v) in obj {
            match key(k) {
                Some(meta) if meta.node_only => {
                    let mut probe = self.clone();
                    if probe.set(k, v).is_err() || probe != *self {
                        warnings.push(format!(
                            "stdin sets contrail.{k} = {}: a node-only key, ignored",
                            shown(v)
                        ));
                    }
                }
                _ => self.set(k, v).map_err(|e| e.context("stdin"))?,
            }
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests;
