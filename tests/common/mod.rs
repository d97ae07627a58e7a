//! Helpers shared by the integration tests: per-thread network namespaces,
//! namespaces held by a file descriptor only, temporary directories.
//!
//! Every real-kernel test starts with `require_root!()` and `enter_fresh_netns()`:
//! the test's own thread moves into a new network namespace, so tests run in
//! parallel without seeing each other or the host.

#![allow(dead_code)]

#[path = "../../src/testutil.rs"]
mod testutil;
#[allow(unused_imports)]
pub use testutil::{enter_fresh_netns, is_root, root_or_skip, run_ok, setup, TempDir};

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Returns from the test unless [`root_or_skip`] says it can run.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::root_or_skip() {
            return;
        }
    };
}

/// The host-side `tap…` links in the calling thread's namespace.
pub fn taps() -> Vec<String> {
    link_names()
        .into_iter()
        .filter(|n| n.starts_with("tap"))
        .collect()
}

/// A network namespace kept alive by an open file only: nothing to unmount,
/// nothing left behind when dropped. `path` is `/proc/<pid>/fd/<n>`.
pub struct NsFd {
    pub file: File,
    pub path: String,
}

impl NsFd {
    /// Creates the namespace on a short-lived thread so the caller's thread
    /// stays where it is; `lo` is brought up inside.
    pub fn new() -> NsFd {
        let file = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            run_ok("ip", &["link", "set", "lo", "up"]);
            File::open("/proc/thread-self/ns/net").expect("open thread netns")
        })
        .join()
        .expect("netns thread");
        let path = format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd());
        NsFd { file, path }
    }

    /// Runs `ip <args>` inside this namespace and returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        // nsenter's --net takes its file only in the `--net=FILE` form.
        let net = format!("--net={}", self.path);
        let mut full = vec![net.as_str(), "ip"];
        full.extend_from_slice(args);
        run_ok("nsenter", &full)
    }

    /// Names of the links inside this namespace (`lo` excluded).
    pub fn link_names(&self) -> Vec<String> {
        link_names_from(&self.ip(&["-o", "link", "show"]))
    }
}

/// Runs `ip <args>` in the calling thread's namespace and returns stdout.
pub fn ip(args: &[&str]) -> String {
    run_ok("ip", args)
}

/// Names of the links in the calling thread's namespace (`lo` excluded).
pub fn link_names() -> Vec<String> {
    link_names_from(&ip(&["-o", "link", "show"]))
}

/// Parses `ip -o link show` output into names (`lo` excluded).
pub fn link_names_from(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n != "lo")
        .collect()
}

// ---------------------------------------------------------------------------
// The agent simulator and the plugin binary.

/// Helpers of the attack suite (tests/security.rs).
pub mod attack;
/// Helpers of the real-runtime suites (podman, containerd).
pub mod runtime;
pub mod simulator;
#[allow(unused_imports)]
pub use simulator::{Capture, Sim};

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The plugin binary the tests execute: cargo's build of this crate, or
/// the file named by `CONTRAIL_CNI_PLUGIN` (`make test` reruns the
/// plugin-executing suites that way against the aarch64 static binary under
/// qemu-user). The override must be an existing file; a typo is not
/// silently replaced by the host build.
pub fn plugin() -> &'static str {
    static PLUGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PLUGIN.get_or_init(|| match std::env::var("CONTRAIL_CNI_PLUGIN") {
        Ok(p) if !p.is_empty() => {
            assert!(
                Path::new(&p).is_file(),
                "CONTRAIL_CNI_PLUGIN={p} is not a file"
            );
            p
        }
        _ => env!("CARGO_BIN_EXE_contrail-k8s-cni").to_string(),
    })
}

/// Entries left in the plugin's state under `config_dir`: VM directories
/// and the files in them, Multus caches (`../multus`), lock files
/// (`../cni-locks`). Sorted.
pub fn state_left(config_dir: &Path) -> Vec<String> {
    let root = config_dir.parent().expect("config-dir has a parent");
    let mut out = Vec::new();
    for dir in [
        config_dir.to_path_buf(),
        root.join("multus"),
        root.join("cni-locks"),
    ] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            out.push(e.path().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                    out.push(f.path().display().to_string());
                }
            }
        }
    }
    out.sort();
    out
}

/// The one leak check: no link but `lo` in the calling thread's namespace
/// (the test's "host") or in `pod`, and nothing of the plugin's state under
/// `config_dir`.
pub fn assert_no_leak(config_dir: &Path, pod: Option<&NsFd>) {
    assert_eq!(link_names(), Vec::<String>::new(), "host links left");
    if let Some(pod) = pod {
        assert_eq!(pod.link_names(), Vec::<String>::new(), "pod links left");
    }
    assert_eq!(state_left(config_dir), Vec::<String>::new(), "state left");
}

/// A node: a temporary directory with the node file (`10-contrail.conf`)
/// pointing state and logs into it, and the agent at `port`.
pub struct Node {
    pub dir: TempDir,
    pub port: u16,
}

impl Node {
    pub fn new(port: u16) -> Node {
        Node::with(port, serde_json::json!({}))
    }

    /// `extra` keys are merged into the node file's `contrail` object.
    pub fn with(port: u16, extra: serde_json::Value) -> Node {
        let dir = TempDir::new("node");
        let mut contrail = serde_json::json!({
            "config-dir": dir.path().join("ports/vm"),
            "log-file": dir.path().join("log/cni.log"),
            "log-level": "debug",
            "vrouter-ip": "127.0.0.1",
            "vrouter-port": port,
            "poll-timeout": 1,
            "poll-retries": 3,
        });
        if let (Some(c), Some(e)) = (contrail.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        let conf = serde_json::json!({"cniVersion": "1.0.0", "name": "contrail-k8s-cni",
            "type": "contrail-k8s-cni", "contrail": contrail});
        std::fs::create_dir_all(dir.path().join("net.d")).expect("net.d");
        std::fs::write(dir.path().join("net.d/10-contrail.conf"), conf.to_string())
            .expect("node file");
        Node { dir, port }
    }

    pub fn ports_dir(&self) -> PathBuf {
        self.dir.path().join("ports/vm")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/cni.log")).unwrap_or_default()
    }

    /// Every port file under config-dir (path, JSON).
    pub fn port_files(&self) -> Vec<(PathBuf, serde_json::Value)> {
        let mut out = Vec::new();
        let Ok(vms) = std::fs::read_dir(self.ports_dir()) else {
            return out;
        };
        for vm in vms.flatten() {
            for f in std::fs::read_dir(vm.path()).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                out.push((
                    f.path(),
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
                ));
            }
        }
        out
    }

    /// VM directories left under config-dir.
    pub fn vm_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.ports_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// A plugin invocation for pod `pod` in namespace `default`.
    pub fn call(&self, command: &str, container_id: &str, netns: &str, pod: &str) -> Call {
        Call {
            env: vec![
                (
                    "CONTRAIL_CNI_CONF_DIRS".into(),
                    self.dir.path().join("net.d").display().to_string(),
                ),
                ("CNI_COMMAND".into(), command.into()),
                ("CNI_CONTAINERID".into(), container_id.into()),
                ("CNI_NETNS".into(), netns.into()),
                ("CNI_IFNAME".into(), "eth0".into()),
                ("CNI_PATH".into(), "/opt/cni/bin".into()),
                (
                    "CNI_ARGS".into(),
                    format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"),
                ),
            ],
            stdin: serde_json::json!({"cniVersion": "1.0.0", "name": "contrail-k8s-cni", "type": "contrail-k8s-cni"}),
        }
    }
}

/// The one way the tests start the plugin binary ([`plugin`]): `args`, a
/// cleared environment with a fixed `PATH` and `env`, `stdin` written from
/// a thread (the plugin may stop reading early: a broken pipe is fine).
pub fn launch(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new(plugin())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the plugin");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().expect("wait for the plugin");
    writer.join().expect("stdin writer");
    out
}

/// One plugin run being prepared: environment and stdin config.
pub struct Call {
    pub env: Vec<(String, String)>,
    pub stdin: serde_json::Value,
}

/// What a plugin run produced.
#[derive(Debug)]
pub struct Outcome {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }
    /// The CNI error code, asserting the error shape.
    pub fn code(&self) -> u64 {
        assert!(!self.status.success(), "expected failure, got {self:?}");
        assert!(self.status.code().is_some(), "killed by a signal: {self:?}");
        assert_ne!(self.status.code(), Some(101), "panic exit: {self:?}");
        let v = self.json();
        assert!(v["msg"].is_string(), "error without msg: {v}");
        v["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("error without code: {v}"))
    }
    pub fn msg(&self) -> String {
        self.json()["msg"].as_str().unwrap_or_default().to_string()
    }
    pub fn assert_ok(&self) -> &Self {
        assert!(self.status.success(), "plugin failed: {self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        self
    }
}

impl Call {
    pub fn env(mut self, k: &str, v: &str) -> Call {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn unset(mut self, k: &str) -> Call {
        self.env.retain(|(key, _)| key != k);
        self
    }
    /// Sets a top-level stdin key (`cniVersion`, `prevResult`, ...).
    pub fn conf(mut self, k: &str, v: serde_json::Value) -> Call {
        self.stdin[k] = v;
        self
    }
    /// Sets a key of the stdin `contrail` object.
    pub fn contrail(mut self, k: &str, v: serde_json::Value) -> Call {
        if !self.stdin["contrail"].is_object() {
            self.stdin["contrail"] = serde_json::json!({});
        }
        self.stdin["contrail"][k] = v;
        self
    }
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(plugin());
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
    pub fn run(&self) -> Outcome {
        let start = Instant::now();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let out = launch(&[], &env, self.stdin.to_string().as_bytes());
        Outcome {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }
}

impl Call {
    /// Runs the plugin as the child of a process whose name (`comm`) is
    /// `parent`, the way Multus runs its delegates: a shell started through
    /// a symlink called `parent`.
    pub fn run_under(&self, parent: &str) -> Outcome {
        let dir = TempDir::new("parent");
        let shell = dir.path().join(parent);
        std::os::unix::fs::symlink("/bin/sh", &shell).expect("symlink");
        let stdin_file = dir.path().join("stdin.json");
        std::fs::write(&stdin_file, self.stdin.to_string()).expect("stdin file");
        let start = Instant::now();
        let out = Command::new(&shell)
            .arg("-c")
            // Not the last command, so the shell forks instead of exec'ing.
            .arg("\"$1\" < \"$2\"; exit $?")
            .arg(parent)
            .arg(plugin())
            .arg(&stdin_file)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run plugin under a parent");
        Outcome {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }
}
