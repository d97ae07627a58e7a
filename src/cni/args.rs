//! `CNI_*` environment variables and `CNI_ARGS`.
//!
//! Everything here is validated before any of it can reach a path, a sysctl
//! or the agent: ids and names are checked against strict patterns, and every
//! failure is code 4 naming the variable (or the `CNI_ARGS` key).

use super::error::{code, Error, Result};
use crate::ids::{printable, ContainerId, IfName, NetName, Uuid, VmName};
use std::ffi::OsString;

/// The CNI command, from `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    /// Parses `CNI_COMMAND` (exact, upper case, as skel); unknown or empty is
    /// code 4 with skel's text `unknown CNI_COMMAND: X` (libcni recognises it).
    pub fn parse(s: &str) -> Result<Command> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            _ => {
                return Err(Error::new(
                    code::INVALID_ENV,
                    format!("unknown CNI_COMMAND: {}", printable(s, 32)),
                ))
            }
        })
    }

    /// The name as it appears in `CNI_COMMAND`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Status => "STATUS",
            Command::Gc => "GC",
        }
    }

    /// True for the commands that act on one attachment and therefore need
    /// `CNI_CONTAINERID`, `CNI_IFNAME` and (except DEL) `CNI_NETNS`.
    fn is_attachment(&self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

/// Longest accepted `CNI_NETNS` (PATH_MAX without the NUL).
const MAX_NETNS: usize = 4095;

/// The Kubernetes keys of `CNI_ARGS`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    pub infra_container_id: Option<ContainerId>,
    pub pod_uid: Option<Uuid>,
}

impl CniArgs {
    /// Strict `K=V;K=V` parse; every value that can reach a path is validated.
    ///
    /// Segments are split on `;`, then on the first `=`; empty segments are
    /// skipped. Unknown keys are always ignored (`IgnoreUnknown` is accepted
    /// and has no effect). A segment without `=`, a known key given twice or
    /// a known key with an invalid value is code 4 naming the key. A known
    /// key with an empty value counts as absent.
    pub fn parse(s: &str) -> Result<CniArgs> {
        let mut out = CniArgs::default();
        let mut seen: Vec<&str> = Vec::new();
        for seg in s.split(';').filter(|seg| !seg.is_empty()) {
            let Some((key, value)) = seg.split_once('=') else {
                return Err(Error::new(
                    code::INVALID_ENV,
                    format!("CNI_ARGS: {} is not KEY=VALUE", printable(seg, 64)),
                ));
            };
            let known = [
                "K8S_POD_NAMESPACE",
                "K8S_POD_NAME",
                "K8S_POD_INFRA_CONTAINER_ID",
                "K8S_POD_UID",
            ];
            if !known.contains(&key) || value.is_empty() {
                continue;
            }
            if seen.contains(&key) {
                return Err(Error::new(
                    code::INVALID_ENV,
                    format!("CNI_ARGS: {key} is given twice"),
                ));
            }
            seen.push(key);
            let bad = || {
                Error::new(
                    code::INVALID_ENV,
                    format!("CNI_ARGS: invalid {key} {}", printable(value, 64)),
                )
            };
            match key {
                "K8S_POD_NAMESPACE" if is_dns1123_label(value) => {
                    out.pod_namespace = Some(value.to_string())
                }
                "K8S_POD_NAME" if is_pod_name(value) => out.pod_name = Some(value.to_string()),
                "K8S_POD_INFRA_CONTAINER_ID" => {
                    out.infra_container_id = Some(ContainerId::parse(value).map_err(|_| bad())?)
                }
                "K8S_POD_UID" => out.pod_uid = Some(Uuid::parse(value).map_err(|_| bad())?),
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }

    /// `<cluster>__<namespace>__<pod>`; code 4 when the pod name is
    /// missing (the reference silently used `k8s____`, shared by every
    /// pod), code 7 when the name is longer than a file name. Runtimes
    /// without Kubernetes (podman, nerdctl, cnitool) send no namespace: it
    /// is [`DEFAULT_NAMESPACE`], as for a Kubernetes pod created without one.
    pub fn vm_name(&self, cluster: &NetName) -> Result<VmName> {
        let Some(pod) = &self.pod_name else {
            return Err(Error::new(
                code::INVALID_ENV,
                "CNI_ARGS: missing K8S_POD_NAME",
            ));
        };
        let ns = self.pod_namespace.as_deref().unwrap_or_else(|| {
            log::info!("CNI_ARGS has no K8S_POD_NAMESPACE: using {DEFAULT_NAMESPACE:?}");
            DEFAULT_NAMESPACE
        });
        VmName::k8s(cluster, ns, pod).map_err(|e| Error::new(code::INVALID_CONFIG, e.to_string()))
    }
}

/// The pod namespace when `CNI_ARGS` names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What ADD, DEL and CHECK act on: one attachment of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub container_id: ContainerId,
    pub ifname: IfName,
    /// None when unset or empty (allowed on DEL).
    pub netns: Option<String>,
    pub args: CniArgs,
}

/// The validated environment of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub command: Command,
    /// ADD, DEL and CHECK: the attachment; None for the other commands.
    pub target: Option<Target>,
    pub path: Vec<String>,
}

impl Env {
    /// Reads and validates the variables `command` needs; code 4 naming them.
    pub fn from_env(command: Command) -> Result<Env> {
        Env::from_lookup(command, |k| std::env::var_os(k))
    }

    /// [`Env::from_env`] over any lookup (tests). "Set but empty" is unset,
    /// as libcni sets every variable and leaves unused ones empty; a value
    /// that is not UTF-8 is code 4 saying so.
    ///
    /// ADD and CHECK need `CNI_CONTAINERID`, `CNI_NETNS` and `CNI_IFNAME`;
    /// DEL needs the id and the ifname. VERSION, STATUS and GC read nothing
    /// but `CNI_PATH`, which is never required (GC's spec text requires it,
    /// but the plugin does not delegate, so its absence harms nothing).
    /// All missing variables are named in one error.
    pub fn from_lookup(command: Command, get: impl Fn(&str) -> Option<OsString>) -> Result<Env> {
        let get = |k: &str| -> Result<Option<String>> {
            match get(k).map(OsString::into_string) {
                None => Ok(None),
                Some(Ok(v)) => Ok(Some(v).filter(|v| !v.is_empty())),
                Some(Err(_)) => Err(Error::new(
                    code::INVALID_ENV,
                    format!("{k} is not valid UTF-8"),
                )),
            }
        };
        let path = get("CNI_PATH")?
            .map(|p| {
                p.split(':')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if !command.is_attachment() {
            return Ok(Env {
                command,
                target: None,
                path,
            });
        }
        let (container_id, netns, ifname) = (
            get("CNI_CONTAINERID")?,
            get("CNI_NETNS")?,
            get("CNI_IFNAME")?,
        );
        let mut missing = Vec::new();
        if container_id.is_none() {
            missing.push("CNI_CONTAINERID");
        }
        if netns.is_none() && command != Command::Del {
            missing.push("CNI_NETNS");
        }
        if ifname.is_none() {
            missing.push("CNI_IFNAME");
        }
        if !missing.is_empty() {
            return Err(Error::new(
                code::INVALID_ENV,
                format!(
                    "missing required environment variable(s): {}",
                    missing.join(", ")
                ),
            ));
        }
        let container_id = ContainerId::parse(&container_id.unwrap_or_default())
            .map_err(|e| Error::new(code::INVALID_ENV, format!("CNI_CONTAINERID: {e}")))?;
        let ifname = IfName::parse(&ifname.unwrap_or_default())
            .map_err(|e| Error::new(code::INVALID_ENV, format!("CNI_IFNAME: {e}")))?;
        if let Some(ns) = &netns {
            validate_netns(ns)?;
        }
        let args = CniArgs::parse(&get("CNI_ARGS")?.unwrap_or_default())?;
        Ok(Env {
            command,
            target: Some(Target {
                container_id,
                ifname,
                netns,
                args,
            }),
            path,
        })
    }

    /// The attachment of ADD, DEL and CHECK.
    pub fn target(&self) -> Result<&Target> {
        self.target.as_ref().ok_or_else(|| {
            Error::new(
                code::INVALID_ENV,
                format!("{} has no container to act on", self.command.as_str()),
            )
        })
    }
}

/// `CNI_NETNS` must be an absolute path without NUL. It is opened (and
/// checked to be a network namespace) by the plugin, not here.
fn validate_netns(ns: &str) -> Result<()> {
    if ns.starts_with('/') && ns.len() <= MAX_NETNS && !ns.contains('\0') {
        Ok(())
    } else {
        Err(Error::new(
            code::INVALID_ENV,
            format!("invalid CNI_NETNS {}", printable(ns, 64)),
        )
        .with_details("must be an absolute path"))
    }
}

/// RFC 1123 label as Kubernetes uses it for namespaces: 1..=63 of
/// `[a-z0-9-]`, starting and ending alphanumeric.
fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&b.len())
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// A pod name: at most 253 bytes (Kubernetes' limit) of the CNI name rule
/// `^[A-Za-z0-9][A-Za-z0-9_.-]*$`. Kubernetes names (RFC 1123 subdomains)
/// pass, and so do the container names of podman (`pedantic_jennings`)
/// and nerdctl; nothing that could leave a file name does.
fn is_pod_name(s: &str) -> bool {
    s.len() <= 253 && NetName::parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(cmd: Command, vars: &[(&str, &str)]) -> Result<Env> {
        let m: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Env::from_lookup(cmd, |k| m.get(k).cloned())
    }

    const ADD_OK: [(&str, &str); 4] = [
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p-1.x;K8S_POD_INFRA_CONTAINER_ID=abc123",
        ),
    ];

    #[test]
    fn commands() {
        for c in [
            Command::Add,
            Command::Del,
            Command::Check,
            Command::Version,
            Command::Status,
            Command::Gc,
        ] {
            assert_eq!(Command::parse(c.as_str()).unwrap(), c);
        }
        for bad in ["", "add", "FOO", "ADD "] {
            assert_eq!(Command::parse(bad).unwrap_err().code, code::INVALID_ENV);
        }
        assert_eq!(
            Command::parse("VERSIONX").unwrap_err().msg,
            "unknown CNI_COMMAND: \"VERSIONX\""
        );
    }

    #[test]
    fn add_env_ok() {
        let e = env(Command::Add, &ADD_OK).unwrap();
        let t = e.target().unwrap();
        assert_eq!(t.container_id, "abc123");
        assert_eq!(t.netns.as_deref(), Some("/run/netns/x"));
        assert_eq!(t.args.pod_namespace.as_deref(), Some("default"));
        assert_eq!(t.args.pod_name.as_deref(), Some("p-1.x"));
        assert!(e.path.is_empty());
    }

    #[test]
    fn missing_vars_are_named_together() {
        let e = env(Command::Add, &[("CNI_CONTAINERID", "")]).unwrap_err();
        assert_eq!(e.code, 4);
        assert!(
            e.msg.contains("CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME"),
            "{}",
            e.msg
        );
        let e = env(Command::Del, &[("CNI_CONTAINERID", "a")]).unwrap_err();
        assert!(e.msg.ends_with("CNI_IFNAME"), "{}", e.msg);
        let d = env(
            Command::Del,
            &[("CNI_CONTAINERID", "a"), ("CNI_IFNAME", "eth0")],
        )
        .unwrap();
        assert_eq!(d.target().unwrap().netns, None);
        for cmd in [Command::Version, Command::Status, Command::Gc] {
            let e = env(cmd, &[("CNI_PATH", "/a::/b"), ("CNI_IFNAME", "../x")]).unwrap();
            assert_eq!(e.path, ["/a", "/b"]);
            assert_eq!(e.target, None);
        }
    }

    #[test]
    fn bad_values() {
        let with = |k: &str, v: &str| {
            let mut vars = ADD_OK.to_vec();
            vars.retain(|(n, _)| *n != k);
            vars.push((k, v));
            env(Command::Add, &vars)
        };
        for (k, v) in [
            ("CNI_CONTAINERID", "-abc"),
            ("CNI_CONTAINERID", "a/b"),
            ("CNI_CONTAINERID", "a b"),
            ("CNI_CONTAINERID", &"a".repeat(ContainerId::MAX + 1)),
            ("CNI_IFNAME", "0123456789abcdef"),
            ("CNI_IFNAME", "a/b"),
            ("CNI_IFNAME", ".."),
            ("CNI_IFNAME", "a:1"),
            ("CNI_IFNAME", "eth%d"),
            ("CNI_IFNAME", "a b"),
            ("CNI_NETNS", "run/netns/x"),
            ("CNI_ARGS", "K8S_POD_NAME=../x"),
            ("CNI_ARGS", "K8S_POD_NAMESPACE=/"),
            ("CNI_ARGS", "K8S_POD_NAMESPACE=Default"),
            ("CNI_ARGS", "K8S_POD_UID=nope"),
            ("CNI_ARGS", "garbage"),
        ] {
            let e = with(k, v).unwrap_err();
            assert_eq!(e.code, 4, "{k}={v}");
            let named = if k == "CNI_ARGS" && v.contains('=') {
                v.split('=').next().unwrap()
            } else {
                k
            };
            assert!(e.msg.contains(named), "{k}={v}: {}", e.msg);
        }
        assert!(with("CNI_IFNAME", "0123456789abcde").is_ok());
        assert!(with("CNI_CONTAINERID", &"a".repeat(ContainerId::MAX)).is_ok());
    }

    #[test]
    fn invalid_utf8_is_reported_as_such() {
        use std::os::unix::ffi::OsStringExt;
        for var in ["CNI_ARGS", "CNI_NETNS", "CNI_CONTAINERID", "CNI_PATH"] {
            let e = Env::from_lookup(Command::Add, |k| {
                if k == var {
                    Some(OsString::from_vec(b"K8S_POD_NAME=\xff".to_vec()))
                } else {
                    ADD_OK
                        .iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| OsString::from(v))
                }
            })
            .unwrap_err();
            assert_eq!(e.code, 4, "{var}");
            assert_eq!(e.msg, format!("{var} is not valid UTF-8"));
        }
    }

    #[test]
    fn cni_args() {
        let a = CniArgs::parse(
            ";IgnoreUnknown=1;;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-5d78c9869d-abcde;\
             K8S_POD_UID=0A1B2C3D-4e5f-6789-abcd-ef0123456789;FOO=a=b;K8S_POD_INFRA_CONTAINER_ID=",
        )
        .unwrap();
        assert_eq!(a.pod_namespace.as_deref(), Some("kube-system"));
        assert_eq!(
            a.pod_uid.as_ref().map(Uuid::as_str),
            Some("0a1b2c3d-4e5f-6789-abcd-ef0123456789")
        );
        assert_eq!(a.infra_container_id, None);
        let k8s = NetName::parse("k8s").unwrap();
        assert_eq!(
            a.vm_name(&k8s).unwrap(),
            "k8s__kube-system__coredns-5d78c9869d-abcde"
        );
        // A 253-byte pod name is valid Kubernetes but no file name: code 7 naming the limit.
        let name = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "a".repeat(61));
        assert_eq!(name.len(), 253);
        let long = CniArgs::parse(&format!("K8S_POD_NAME={name}")).unwrap();
        let e = long.vm_name(&k8s).unwrap_err();
        assert_eq!(e.code, 7);
        assert!(e.msg.contains("255"), "{}", e.msg);
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
        assert!(CniArgs::parse("K8S_POD_NAME=a.b.c").is_ok());
        assert!(
            CniArgs::parse("K8S_POD_NAME=pedantic_jennings").is_ok(),
            "podman"
        );
        for bad in [
            "K8S_POD_NAME=.a",
            "K8S_POD_NAME=-a",
            "K8S_POD_NAME=a/b",
            "K8S_POD_NAME=a b",
            "K8S_POD_NAME=a;K8S_POD_NAME=b",
        ] {
            assert_eq!(CniArgs::parse(bad).unwrap_err().code, 4, "{bad}");
        }
        // podman, nerdctl, cnitool: no namespace.
        let podman = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=web").unwrap();
        assert_eq!(podman.vm_name(&k8s).unwrap(), "k8s__default__web");
        let e = CniArgs::parse("K8S_POD_NAMESPACE=ns")
            .unwrap()
            .vm_name(&k8s)
            .unwrap_err();
        assert_eq!(e.msg, "CNI_ARGS: missing K8S_POD_NAME");
    }

    #[test]
    fn printable_escapes_and_bounds() {
        assert_eq!(printable("a\nb\"", 10), r#""a\nb\"""#);
        assert_eq!(printable("abcdef", 3), r#""abc"..."#);
    }
}
