//! Shared by the suites that drive real container runtimes
//! (`tests/podman.rs`, `tests/containerd.rs`): a private "host" for the
//! runtime, a recorder in front of each CNI plugin, the leftover checks and
//! the summary each suite prints.
//!
//! The runtime runs in the test thread's own network namespace and in its
//! own mount namespace, where tmpfs covers the places runtimes and the
//! plugin write to by default (`/run`, `/var/lib`, `/var/log`, `/dev/shm`):
//! whatever a runtime or a misrouted plugin call writes there (libcni's
//! cache in `/var/lib/cni`, netns mounts in `/run/netns`, the plugin's
//! default `/var/log/contrail`...) vanishes with the namespace, and the
//! host's copies are never seen.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's own Python: the gRPC packages are installed for it, not for
/// whatever `python3` comes first in `PATH`.
pub const PYTHON: &str = "/usr/bin/python3";

/// True when every program is installed. When one is missing: a failure
/// under `CI=true` (`make test` installs them through `scripts/deps.sh`),
/// otherwise a `SKIPPED` line.
pub fn have_programs(suite: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find_program(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{suite}: {} not installed (scripts/deps.sh installs them)",
        missing.join(", ")
    );
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    false
}

/// Where `program` is: itself when it is a path, else the first match in
/// the usual system directories.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).exists().then(|| program.into());
    }
    [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .map(|d| Path::new(d).join(program))
    .find(|p| p.exists())
}

/// The calling thread's private host: its own network namespace (from
/// [`super::setup`]) and mount namespace.
pub struct Host {
    /// `mnt:[inode]` of the private mount namespace.
    mnt_ns: String,
}

/// The start of a runtime test: [`super::setup`] (root, fresh network
/// namespace), then a private mount namespace for the calling thread with
/// tmpfs over `/run`, `/var/lib`, `/var/log` and `/dev/shm`. None: skipped.
pub fn private_host() -> Option<Host> {
    if !super::setup() {
        return None;
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
    // Nothing mounted from here on propagates back to the host.
    super::run_ok("mount", &["--make-rprivate", "/"]);
    for dir in ["/run", "/var/lib", "/var/log", "/dev/shm"] {
        super::run_ok(
            "mount",
            &["-t", "tmpfs", "-o", "mode=0755", "ccni-runtime", dir],
        );
    }
    let mnt_ns = std::fs::read_link("/proc/thread-self/ns/mnt")
        .expect("own mount namespace")
        .display()
        .to_string();
    Some(Host { mnt_ns })
}

impl Host {
    /// Processes (other than this one) living in the private mount
    /// namespace: the runtime's daemons, shims and container processes.
    pub fn processes(&self) -> Vec<(i32, String)> {
        let me = std::process::id() as i32;
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            let ns = std::fs::read_link(entry.path().join("ns/mnt"));
            if ns.is_ok_and(|n| n.display().to_string() == self.mnt_ns) {
                let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                out.push((pid, comm.trim().to_string()));
            }
        }
        out
    }

    /// SIGKILLs, by pid, every process of [`Host::processes`] but the
    /// agent simulator (its [`super::Sim`] handle stops it) and returns
    /// what it found.
    pub fn kill_leftovers(&self) -> Vec<(i32, String)> {
        let found: Vec<(i32, String)> = self
            .processes()
            .into_iter()
            .filter(|(_, comm)| !comm.starts_with("vrouter-agent"))
            .collect();
        for (pid, _) in &found {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        found
    }
}

// ---------------------------------------------------------------------------
// What the runtime passes to each plugin

/// A directory of CNI plugins as the runtime sees it: each recorded plugin
/// is a small shell script that saves the `CNI_*` environment and stdin,
/// then `exec`s the real plugin with both (same process, same parent, so
/// the plugin sees exactly what the runtime sent).
pub struct PluginDir {
    pub bin: PathBuf,
    calls: PathBuf,
}

/// One plugin execution as the runtime made it.
#[derive(Debug, Clone)]
pub struct PluginCall {
    pub plugin: String,
    /// The `CNI_*` variables.
    pub env: BTreeMap<String, String>,
    pub stdin: serde_json::Value,
}

impl PluginCall {
    pub fn command(&self) -> &str {
        self.env.get("CNI_COMMAND").map_or("", String::as_str)
    }

    /// The `CNI_ARGS` keys, in the order the runtime sent them.
    pub fn arg_keys(&self) -> Vec<String> {
        self.env
            .get("CNI_ARGS")
            .map(|a| {
                a.split(';')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| kv.split('=').next().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The value of one `CNI_ARGS` key.
    pub fn arg(&self, key: &str) -> Option<String> {
        self.env.get("CNI_ARGS")?.split(';').find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    pub fn netns(&self) -> &str {
        self.env.get("CNI_NETNS").map_or("", String::as_str)
    }
}

impl PluginDir {
    pub fn new(dir: &Path) -> PluginDir {
        let bin = dir.join("bin");
        let calls = dir.join("calls");
        std::fs::create_dir_all(&bin).expect("plugin dir");
        std::fs::create_dir_all(&calls).expect("calls dir");
        PluginDir { bin, calls }
    }

    /// Installs `name` as a recorder in front of the plugin at `real`.
    pub fn record(&self, name: &str, real: &Path) -> &PluginDir {
        let script = format!(
            "#!/bin/sh\n\
             # Saves what the runtime passed, then runs the real plugin with it.\n\
             f='{calls}'/$(date +%s%N)-$$-'{name}'\n\
             env | grep '^CNI_' > \"$f.env\"\n\
             cat > \"$f.stdin\"\n\
             exec '{real}' < \"$f.stdin\"\n",
            calls = self.calls.display(),
            real = real.display(),
        );
        let path = self.bin.join(name);
        std::fs::write(&path, script).expect("write recorder");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod recorder");
        self
    }

    /// Installs `name` as a plain link to `real` (not recorded).
    pub fn link(&self, name: &str, real: &Path) -> &PluginDir {
        std::os::unix::fs::symlink(real, self.bin.join(name)).expect("symlink plugin");
        self
    }

    /// Every recorded call so far, oldest first.
    pub fn calls(&self) -> Vec<PluginCall> {
        let mut names: Vec<String> = std::fs::read_dir(&self.calls)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".env"))
                    .map(String::from)
            })
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let env_text = std::fs::read_to_string(self.calls.join(format!("{n}.env")))
                    .unwrap_or_default();
                let stdin = std::fs::read_to_string(self.calls.join(format!("{n}.stdin")))
                    .unwrap_or_default();
                PluginCall {
                    plugin: n.splitn(3, '-').nth(2).unwrap_or_default().to_string(),
                    env: env_text
                        .lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    stdin: serde_json::from_str(&stdin).unwrap_or(serde_json::Value::Null),
                }
            })
            .collect()
    }

    /// The recorded calls of `plugin` with `command` for `container_id`.
    pub fn calls_of(&self, plugin: &str, command: &str, container_id: &str) -> Vec<PluginCall> {
        self.calls()
            .into_iter()
            .filter(|c| {
                c.plugin == plugin
                    && c.command() == command
                    && c.env.get("CNI_CONTAINERID").map(String::as_str) == Some(container_id)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The agent's side

/// What the agent gave a pod's primary interface.
#[derive(Debug, Clone)]
pub struct AgentView {
    pub vm_uuid: String,
    pub ip: String,
    pub plen: u64,
    pub mac: String,
    pub gateway: String,
}

/// The address the simulator handed to the VM `vm_name` (its latest POST).
pub fn agent_view(sim: &super::Sim, vm_name: &str) -> AgentView {
    let post = sim
        .requests()
        .into_iter()
        .rev()
        .filter(|r| r.method == "POST" && r.path == "/vm")
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.body).expect("POST body"))
        .find(|b| b["vm-name"] == vm_name)
        .unwrap_or_else(|| panic!("no POST /vm for {vm_name}: {:?}", sim.requests()));
    let (vm, vmi) = (
        post["vm-uuid"].as_str().unwrap(),
        post["vmi-uuid"].as_str().unwrap(),
    );
    let (code, oper) = sim.get_json(&format!("/vm/{vm}/{vmi}"));
    assert_eq!(code, 200, "{oper}");
    AgentView {
        vm_uuid: vm.to_string(),
        ip: oper[0]["ip-address"].as_str().unwrap().to_string(),
        plen: oper[0]["plen"].as_u64().unwrap(),
        mac: oper[0]["mac-address"].as_str().unwrap().to_string(),
        gateway: oper[0]["gateway"].as_str().unwrap().to_string(),
    }
}

// ---------------------------------------------------------------------------
// Leftovers

/// The per-pod lock files under the node's state directory.
pub fn lock_files(node: &super::Node) -> Vec<String> {
    let dir = node
        .ports_dir()
        .parent()
        .expect("state root")
        .join("cni-locks");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Nothing of the plugin is left in the calling thread's network namespace
/// or in the node's state (see `common::assert_no_leak`); `vm_names` are
/// the pods the test used, for the message.
pub fn assert_nothing_left(node: &super::Node, vm_names: &[String]) {
    let left = super::state_left(&node.ports_dir());
    assert!(left.is_empty(), "state of {vm_names:?} left: {left:?}");
    super::assert_no_leak(&node.ports_dir(), None);
}

// ---------------------------------------------------------------------------
// Reporting

/// Prints a suite's summary straight to stderr, past the test harness's
/// capture, so `make test` shows what was exercised.
pub fn report(title: &str, lines: &[String]) {
    let mut text = format!("---- {title}\n");
    for l in lines {
        text.push_str("     ");
        text.push_str(l);
        text.push('\n');
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// The first line of `program --version` (or of `args`), for the summary.
pub fn version_of(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        Err(e) => format!("{program}: {e}"),
    }
}
