//! `CNI_*` environment variables and `CNI_ARGS`.
//!
//! CONTRACT (skeleton by the lead; the CNI-layer owner implements it).

use super::error::Result;

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
    /// Parses `CNI_COMMAND`; unknown or empty is code 4.
    pub fn parse(s: &str) -> Result<Command> {
        let _ = s;
        todo!("cni owner")
    }
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
}

/// The Kubernetes keys of `CNI_ARGS`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    pub infra_container_id: Option<String>,
    /// Lower-cased, validated as a UUID.
    pub pod_uid: Option<String>,
}

impl CniArgs {
    /// Strict `K=V;K=V` parse; every value that can reach a path is validated.
    pub fn parse(s: &str) -> Result<CniArgs> {
        let _ = s;
        todo!()
    }
    /// `<cluster>__<namespace>__<pod>`; code 4 when namespace or pod is missing.
    pub fn vm_name(&self, cluster: &str) -> Result<String> {
        let _ = cluster;
        todo!()
    }
}

/// The validated environment of one invocation. Variables a command does not
/// use are empty / None.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub command: Command,
    pub container_id: String,
    /// None when unset or empty (allowed on DEL).
    pub netns: Option<String>,
    pub ifname: String,
    pub args: CniArgs,
    pub path: Vec<String>,
}

impl Env {
    /// Reads and validates the variables `command` needs; code 4 naming them.
    pub fn from_env(command: Command) -> Result<Env> {
        Env::from_lookup(command, |k| std::env::var(k).ok())
    }
    pub fn from_lookup(command: Command, get: impl Fn(&str) -> Option<String>) -> Result<Env> {
        let _ = (command, get);
        todo!()
    }
}

/// Interface name rules: 1..=15 bytes, not `.`/`..`, no `/`, `:`, `%` or
/// whitespace. Code 4.
pub fn validate_ifname(name: &str) -> Result<()> {
    let _ = name;
    todo!()
}
