//! Helpers of the attack suite (`tests/security.rs`): a private "node" per
//! test (its own network and mount namespaces, tmpfs over `/var/lib` and
//! `/var/log`), the three node-configuration setups, decoy files and decoy
//! host links with snapshots that say whether anything about them changed,
//! port files planted the way an attacker would write them, and a small
//! fake agent that answers whatever the test wants it to.
//!
//! Everything an attack could reach lives in the test thread's private
//! namespaces: the plugin, started from that thread, sees the same tmpfs
//! and the same links, and the host's `/var/lib/contrail`,
//! `/var/log/contrail` and interfaces are never in view.

#![allow(dead_code)]

use super::{run_ok, Call};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where the node configuration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// What `scripts/install.sh` writes, verbatim: `10-contrail.conflist`
    /// with a `contrail-k8s-cni` entry (default paths, agent on 9091).
    Installer,
    /// A `10-contrail.conf` that sets only `config-dir`, `log-file` and
    /// `vrouter-port` (not the defaults): every other key is left out.
    Partial,
    /// No node file at all: the built-in defaults.
    NoNodeFile,
}

pub const SETUPS: [Setup; 3] = [Setup::Installer, Setup::Partial, Setup::NoNodeFile];

/// The lab's own directories (all on the private tmpfs).
pub const LAB_ROOT: &str = "/var/lib/ccni-lab";
/// Decoy files live here, outside every directory of the plugin's layout.
pub const DECOY_ROOT: &str = "/var/lib/ccni-decoys";

/// One private node.
pub struct Lab {
    pub setup: Setup,
    /// Directories searched for the node configuration.
    pub conf_dir: PathBuf,
    /// The effective (node) `config-dir`, `log-file` and agent port.
    pub config_dir: PathBuf,
    pub log_file: PathBuf,
    pub port: u16,
    /// The node file, if any.
    pub node_file: Option<PathBuf>,
}

/// The conflist `contrail-k8s-cni install` writes with its defaults (the
/// binary itself writes it, into a temporary directory).
pub fn installer_conflist() -> String {
    let dir = super::TempDir::new("installer");
    let (bin, conf) = (dir.path().join("bin"), dir.path().join("net.d"));
    let out = std::process::Command::new(super::plugin())
        .arg("install")
        .arg("--bin-dir")
        .arg(&bin)
        .arg("--conf-dir")
        .arg(&conf)
        .output()
        .expect("run install");
    assert!(out.status.success(), "install failed: {out:?}");
    std::fs::read_to_string(conf.join("10-contrail.conflist")).expect("the installer's conflist")
}

/// The calling thread moves into a private mount namespace (nothing
/// propagates back) with fresh tmpfs over `/var/lib` and `/var/log`.
/// Refuses to go on unless the namespace really is private and the mounts
/// really are tmpfs: the default state and log paths live there.
fn private_mounts() {
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").expect("main thread's mount ns");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
    let mine = std::fs::read_link("/proc/thread-self/ns/mnt").expect("own mount ns");
    assert_ne!(mine, host_mnt, "the mount namespace is not private");
    run_ok("mount", &["--make-rprivate", "/"]);
    for dir in ["/var/lib", "/var/log"] {
        run_ok(
            "mount",
            &["-t", "tmpfs", "-o", "mode=0755", "ccni-attack", dir],
        );
        assert_tmpfs(Path::new(dir));
    }
}

/// Panics unless `dir` is on a tmpfs.
pub fn assert_tmpfs(dir: &Path) {
    let fs = nix::sys::statfs::statfs(dir).expect("statfs");
    assert_eq!(
        fs.filesystem_type(),
        nix::sys::statfs::TMPFS_MAGIC,
        "{} is not the private tmpfs: refusing to run the plugin",
        dir.display()
    );
}

impl Lab {
    /// Root, a fresh network namespace, a private mount namespace, and the
    /// node configuration of `setup`. None: skipped (not root).
    pub fn enter(setup: Setup) -> Option<Lab> {
        Lab::enter_with(setup, json!({}))
    }

    /// [`Lab::enter`]; for [`Setup::Partial`], `extra` keys go into the
    /// node file's `contrail` object too.
    pub fn enter_with(setup: Setup, extra: Value) -> Option<Lab> {
        if !super::setup() {
            return None;
        }
        private_mounts();
        let conf_dir = Path::new(LAB_ROOT).join("net.d");
        std::fs::create_dir_all(&conf_dir).unwrap();
        std::fs::create_dir_all(DECOY_ROOT).unwrap();
        let defaults = contrail_cni::config::Contrail::default();
        let lab = match setup {
            Setup::Installer => {
                let text = installer_conflist();
                let v: Value = serde_json::from_str(&text).expect("installer conflist is JSON");
                let c = v["plugins"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["type"] == "contrail-k8s-cni")
                    .expect("a contrail-k8s-cni entry")["contrail"]
                    .clone();
                let file = conf_dir.join("10-contrail.conflist");
                write_root_file(&file, &text);
                Lab {
                    setup,
                    conf_dir,
                    config_dir: c["config-dir"].as_str().unwrap().into(),
                    log_file: c["log-file"].as_str().unwrap().into(),
                    port: c["vrouter-port"].as_u64().unwrap() as u16,
                    node_file: Some(file),
                }
            }
            Setup::Partial => {
                let mut c = json!({
                    "config-dir": format!("{LAB_ROOT}/state/vm"),
                    "log-file": "/var/log/ccni-lab/cni.log",
                    "vrouter-port": 9092,
                });
                for (k, v) in extra.as_object().unwrap() {
                    c[k] = v.clone();
                }
                let file = conf_dir.join("10-contrail.conf");
                let conf = json!({"cniVersion": "1.0.0", "name": "contrail-k8s-cni",
                    "type": "contrail-k8s-cni", "contrail": c});
                write_root_file(&file, &conf.to_string());
                Lab {
                    setup,
                    conf_dir,
                    config_dir: c["config-dir"].as_str().unwrap().into(),
                    log_file: c["log-file"].as_str().unwrap().into(),
                    port: c["vrouter-port"].as_u64().unwrap() as u16,
                    node_file: Some(file),
                }
            }
            Setup::NoNodeFile => Lab {
                setup,
                conf_dir,
                config_dir: defaults.config_dir.clone(),
                log_file: defaults.log_file.clone(),
                port: defaults.vrouter_port,
                node_file: None,
            },
        };
        // Whatever the setup says, state and logs must land on the tmpfs.
        for p in [&lab.config_dir, &lab.log_file] {
            assert!(
                p.starts_with("/var/lib/") || p.starts_with("/var/log/"),
                "{} is outside the private tmpfs",
                p.display()
            );
        }
        Some(lab)
    }

    /// Where `multus/` and `cni-locks/` go.
    pub fn state_root(&self) -> PathBuf {
        self.config_dir.parent().unwrap().to_path_buf()
    }
    pub fn lock_dir(&self) -> PathBuf {
        self.state_root().join("cni-locks")
    }
    pub fn multus_dir(&self) -> PathBuf {
        self.state_root().join("multus")
    }
    pub fn vm_dir(&self, pod: &str) -> PathBuf {
        self.config_dir.join(format!("k8s__default__{pod}"))
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// A plugin call for pod `default/<pod>`, with stdin's poll keys (the
    /// ones a tenant may set) kept short so a failure costs seconds.
    pub fn call(&self, command: &str, container: &str, netns: &str, pod: &str) -> Call {
        Call {
            env: vec![
                (
                    "CONTRAIL_CNI_CONF_DIRS".into(),
                    self.conf_dir.display().to_string(),
                ),
                ("CNI_COMMAND".into(), command.into()),
                ("CNI_CONTAINERID".into(), container.into()),
                ("CNI_NETNS".into(), netns.into()),
                ("CNI_IFNAME".into(), "eth0".into()),
                ("CNI_PATH".into(), "/opt/cni/bin".into()),
                (
                    "CNI_ARGS".into(),
                    format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"),
                ),
            ],
            stdin: json!({"cniVersion": "1.1.0", "name": "contrail-k8s-cni",
                "type": "contrail-k8s-cni",
                "contrail": {"poll-timeout": 1, "poll-retries": 5}}),
        }
    }

    /// A GC call keeping only `keep` (container ids).
    pub fn gc(&self, keep: &[&str]) -> Call {
        let valid: Vec<Value> = keep
            .iter()
            .map(|c| json!({"containerID": c, "ifname": "eth0"}))
            .collect();
        let mut call = self.call("GC", "unused", "", "unused");
        call.env.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "CNI_CONTAINERID" | "CNI_NETNS" | "CNI_IFNAME" | "CNI_ARGS"
            )
        });
        call.stdin["cni.dev/valid-attachments"] = json!(valid);
        call
    }

    /// Entries left in the plugin's state directories (`common::state_left`).
    pub fn state(&self) -> Vec<String> {
        super::state_left(&self.config_dir)
    }

    /// Nothing of any pod is left: no VM directory, port file, Multus cache
    /// or lock file.
    pub fn assert_no_state(&self) {
        let left = self.state();
        assert!(
            left.is_empty(),
            "{:?}: state left behind: {left:?}",
            self.setup
        );
    }

    /// Writes a port file the way an attacker (or a crashed older version)
    /// would: raw JSON, 0600 in a 0700 directory, at
    /// `<config-dir>/<vm>/<vmi>`.
    pub fn plant_port(&self, p: &Planted) -> PathBuf {
        let dir = self.config_dir.join(&p.vm);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.join(&p.vmi);
        std::fs::write(&path, p.json().to_string()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

/// Writes a root-owned 0644 file (a trusted node file).
fn write_root_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A port file to plant; [`Planted::new`] gives a valid one (its
/// `host-ifname` is the naming rule's name for its pod UID and interface).
#[derive(Debug, Clone)]
pub struct Planted {
    pub vm: String,
    pub vmi: String,
    pub vm_uuid: String,
    pub container: String,
    pub ifname: String,
    pub host_ifname: String,
    pub vif_type: String,
}

impl Planted {
    pub fn new(pod: &str, container: &str, vm_uuid: &str, vmi: &str) -> Planted {
        Planted {
            vm: format!("k8s__default__{pod}"),
            vmi: vmi.into(),
            vm_uuid: vm_uuid.into(),
            container: container.into(),
            ifname: "eth0".into(),
            host_ifname: rule_tap(vm_uuid, "eth0"),
            vif_type: "veth".into(),
        }
    }
    pub fn host(mut self, name: &str) -> Planted {
        self.host_ifname = name.into();
        self
    }
    pub fn json(&self) -> Value {
        json!({
            "vm-uuid": self.vm_uuid,
            "vm-name": self.vm,
            "host-ifname": self.host_ifname,
            "vn-uuid": "0000000b-0000-4000-8000-00000000000b",
            "vmi-uuid": self.vmi,
            "vm-id": self.container,
            "vm-ifname": self.ifname,
            "vm-namespace": "/proc/1/ns/net",
            "vif-type": self.vif_type,
            "network": "default",
            "index": 0,
        })
    }
}

/// The naming rule's tap for pod UID `uid` and interface `ifname`.
pub fn rule_tap(uid: &str, ifname: &str) -> String {
    contrail_cni::vif::names::tap_name(
        &contrail_cni::ids::Uuid::parse(uid).unwrap(),
        &contrail_cni::ids::IfName::parse(ifname).unwrap(),
    )
    .to_string()
}

/// The mark the plugin puts on a link of container `c`.
pub fn mark(c: &str) -> String {
    format!("{}{c}", contrail_cni::ids::MARK_PREFIX)
}

// ---------------------------------------------------------------------------
// Decoy links

/// A bridge standing in for a host interface (`ens3`, `eth0`): the kernel
/// here has no dummy links.
pub fn decoy_bridge(name: &str, alias: &str) {
    run_ok("ip", &["link", "add", name, "type", "bridge"]);
    run_ok("ip", &["link", "set", name, "alias", alias, "mtu", "1400"]);
}

/// A veth whose host end is `name` (peer `p<rest of name>`), optionally
/// with an alias and a link group.
pub fn decoy_veth(name: &str, alias: Option<&str>, group: Option<u32>) {
    let peer = format!("p{}", &name[name.len().min(3)..]);
    run_ok(
        "ip",
        &["link", "add", name, "type", "veth", "peer", "name", &peer],
    );
    if let Some(a) = alias {
        run_ok("ip", &["link", "set", name, "alias", a]);
    }
    if let Some(g) = group {
        run_ok("ip", &["link", "set", name, "group", &g.to_string()]);
    }
}

/// What matters of one link: index, kind, MTU, MAC, group, alias, master,
/// administrative state.
fn link_props(l: &Value) -> Value {
    let up = l["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"));
    json!({
        "ifindex": l["ifindex"],
        "kind": l["linkinfo"]["info_kind"],
        "mtu": l["mtu"],
        "address": l["address"],
        "group": l["group"],
        "ifalias": l["ifalias"],
        "master": l["master"],
        "up": up,
    })
}

/// The links of the calling thread's namespace, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Links(pub BTreeMap<String, Value>);

impl Links {
    pub fn now() -> Links {
        let out = run_ok("ip", &["-d", "-j", "link", "show"]);
        let v: Value = serde_json::from_str(&out).expect("ip -j link");
        Links(
            v.as_array()
                .unwrap()
                .iter()
                .map(|l| (l["ifname"].as_str().unwrap().to_string(), link_props(l)))
                .collect(),
        )
    }

    /// Names of links that exist now and did not when `self` was taken.
    pub fn added(&self) -> Vec<String> {
        Links::now()
            .0
            .into_keys()
            .filter(|n| !self.0.contains_key(n))
            .collect()
    }

    /// Every link of the snapshot still exists, unchanged.
    pub fn assert_kept(&self) {
        let now = Links::now();
        let mut diffs = Vec::new();
        for (name, before) in &self.0 {
            match now.0.get(name) {
                None => diffs.push(format!("{name} was deleted")),
                Some(after) if after != before => {
                    diffs.push(format!("{name} changed: {before} -> {after}"))
                }
                _ => {}
            }
        }
        assert!(diffs.is_empty(), "decoy links touched: {diffs:#?}");
    }

    /// [`Links::assert_kept`], and no link was added (nothing leaked).
    pub fn assert_same(&self) {
        self.assert_kept();
        let added = self.added();
        assert!(added.is_empty(), "links leaked: {added:?}");
    }
}

// ---------------------------------------------------------------------------
// Decoy files

/// What matters of one directory entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub ino: u64,
    pub nlink: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub content: Option<Vec<u8>>,
    pub target: Option<PathBuf>,
}

fn entry(path: &Path) -> Option<Entry> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let t = m.file_type();
    use std::os::unix::fs::FileTypeExt;
    let kind = if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "dir"
    } else if t.is_file() {
        "file"
    } else if t.is_fifo() {
        "fifo"
    } else {
        "other"
    };
    let content = t.is_file().then(|| {
        let mut buf = Vec::new();
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .expect("read decoy");
        buf
    });
    Some(Entry {
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        ino: m.ino(),
        nlink: m.nlink(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
        content,
        target: t.is_symlink().then(|| std::fs::read_link(path).unwrap()),
    })
}

/// A directory tree (or one file), recorded without following symlinks.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub root: PathBuf,
    pub entries: BTreeMap<PathBuf, Entry>,
}

impl Tree {
    pub fn snapshot(root: impl AsRef<Path>) -> Tree {
        let root = root.as_ref().to_path_buf();
        let mut entries = BTreeMap::new();
        fn walk(p: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
            let Some(e) = entry(p) else { return };
            let dir = e.kind == "dir";
            out.insert(p.to_path_buf(), e);
            if dir {
                let mut names: Vec<PathBuf> = std::fs::read_dir(p)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                names.sort();
                for n in names {
                    walk(&n, out);
                }
            }
        }
        walk(&root, &mut entries);
        Tree { root, entries }
    }

    /// Nothing changed: same entries (none added, none removed), same
    /// kind, mode, owner, inode, times and content.
    pub fn assert_unchanged(&self) {
        let now = Tree::snapshot(&self.root);
        let mut diffs = Vec::new();
        for (p, before) in &self.entries {
            match now.entries.get(p) {
                None => diffs.push(format!("{} was removed", p.display())),
                Some(after) if after != before => diffs.push(format!(
                    "{} changed:\n  before {before:?}\n  after  {after:?}",
                    p.display()
                )),
                _ => {}
            }
        }
        for p in now.entries.keys() {
            if !self.entries.contains_key(p) {
                diffs.push(format!("{} was created", p.display()));
            }
        }
        assert!(diffs.is_empty(), "decoys touched:\n{}", diffs.join("\n"));
    }
}

/// The standard decoy files: things root must never touch, with
/// distinctive modes and owners.
/// - `etc/shadow` (0640, uid 0 gid 42) and `etc/crontab`;
/// - `by-uuid/<uuid>` files and a UUID-named directory, like
///   `/dev/disk/by-uuid`;
/// - `empty/` (an empty directory), `.tmp-2147483646-1` (a "stale
///   temporary" name) and `k8s__default__victim/` holding a UUID file.
///
/// Returns the decoy root.
pub fn standard_decoys() -> PathBuf {
    let root = Path::new(DECOY_ROOT);
    let file = |rel: &str, text: &str, mode: u32| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    };
    let shadow = file(
        "etc/shadow",
        "root:$6$decoy$hash:19000:0:99999:7:::\n",
        0o640,
    );
    std::os::unix::fs::chown(&shadow, Some(0), Some(42)).unwrap();
    file("etc/crontab", "# decoy crontab\n", 0o644);
    file(
        "by-uuid/0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0",
        "disk\n",
        0o444,
    );
    file(
        "by-uuid/9e8d7c6b-5a49-4382-9170-a1b2c3d4e5f6",
        "disk\n",
        0o644,
    );
    std::fs::create_dir_all(root.join("by-uuid/11111111-2222-4333-8444-555555555555")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    file(".tmp-2147483646-1", "not the plugin's\n", 0o600);
    file(
        "k8s__default__victim/0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0",
        "{}",
        0o600,
    );
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    root.to_path_buf()
}

impl Tree {
    /// The paths of the tree, for checks that only care what exists.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.entries.keys().cloned().collect()
    }
}

/// Creates a FIFO.
pub fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// Opens the write end of `fifo` after `secs`: should the plugin ever block
/// opening it for reading, it is released then and the test fails on
/// time instead of hanging.
pub fn fifo_watchdog(fifo: &Path, secs: u64) {
    let f = fifo.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(secs));
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(f);
    });
}

// ---------------------------------------------------------------------------
// A fake agent with fixed answers

/// An agent that answers every `GET /vm-cfg/...` with its `vm_cfg`
/// answer, every `GET /vm/...` with its `vm` answer (both can be changed
/// between calls), and every `POST` (`/vm`, or a Mesos manager's routes)
/// and `DELETE` with 200 `{}`. Records every request (method, path)
/// before answering.
pub struct FakeAgent {
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
    answers: Arc<Mutex<(String, String)>>,
    pub port: u16,
}

impl FakeAgent {
    /// Listens on `127.0.0.1:port` of the calling thread's namespace.
    pub fn start(port: u16, vm_cfg: String, vm: String) -> FakeAgent {
        FakeAgent::start_on("127.0.0.1", port, vm_cfg, vm)
    }

    /// Listens on `ip:port` (port 0: any) of the calling thread's
    /// namespace; [`FakeAgent::port`] says which.
    pub fn start_on(ip: &str, port: u16, vm_cfg: String, vm: String) -> FakeAgent {
        let l = TcpListener::bind((ip, port)).expect("bind fake agent");
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new((vm_cfg, vm)));
        let (log, current) = (seen.clone(), answers.clone());
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (log, current) = (log.clone(), current.clone());
                std::thread::spawn(move || serve(s, &log, &current));
            }
        });
        FakeAgent {
            seen,
            answers,
            port,
        }
    }

    /// Replaces the answers.
    pub fn set(&self, vm_cfg: String, vm: String) {
        *self.answers.lock().unwrap() = (vm_cfg, vm);
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|(m, p)| m == method && p.starts_with(prefix))
            .count()
    }
}

fn serve(
    s: std::net::TcpStream,
    log: &Mutex<Vec<(String, String)>>,
    answers: &Mutex<(String, String)>,
) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut len = 0;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().unwrap().push((method.clone(), path.clone()));
        let (vm_cfg, vm) = answers.lock().unwrap().clone();
        let (status, body) = match (method.as_str(), path.as_str()) {
            ("GET", p) if p.starts_with("/vm-cfg/") => (200, vm_cfg),
            ("GET", p) if p.starts_with("/vm/") => (200, vm),
            // POST also answers a Mesos manager's routes.
            ("POST", _) | ("DELETE", _) => (200, "{}".to_string()),
            _ => (404, r#"{"error":"Unknown Request"}"#.to_string()),
        };
        let msg = format!(
            "HTTP/1.1 {status} OK\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if w.write_all(msg.as_bytes()).is_err() {
            return;
        }
    }
}

/// One `/vm-cfg` element: VMI `id` of VM `vm`, `index` of `total`, on the
/// default network for index 0 (`net<index>` otherwise).
pub fn cfg_elem(id: &str, vm: &str, index: u32, total: u32, mac: &str) -> Value {
    let network = if index == 0 {
        "default".to_string()
    } else {
        format!("net{index}")
    };
    json!({
        "id": id,
        "vm-uuid": vm,
        "vn-id": "0000000b-0000-4000-8000-00000000000b",
        "vn-name": "default-domain:k8s-default:k8s-default-pod-network",
        "mac-address": mac,
        "sub-interface": false,
        "vlan-id": 65535,
        "annotations": [format!("{{index:{index}/{total}}}"), format!("{{network:{network}}}")],
    })
}

/// One `/vm` element with an IPv4 address.
pub fn oper_elem(id: &str, vm: &str, ip: &str, plen: u32, gw: &str, dns: &str, mac: &str) -> Value {
    json!({
        "id": id,
        "instance-id": vm,
        "vn-id": "0000000b-0000-4000-8000-00000000000b",
        "mac-address": mac,
        "ip-address": ip,
        "plen": plen,
        "gateway": gw,
        "dns-server": dns,
    })
}

/// A VMI UUID numbered `n`.
pub fn vmi_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

// ---------------------------------------------------------------------------
// Plugin runs the common `Call::run` cannot express

impl Call {
    /// [`Call::run`] for calls the plugin may refuse before it reads stdin
    /// (an environment error): a closed pipe is not the test's failure.
    pub fn run_lenient(&self) -> super::Outcome {
        self.run_prepared(self.command(), self.stdin.to_string().as_bytes())
    }

    /// Runs the plugin with `stdin` given as raw bytes.
    pub fn run_raw_stdin(&self, stdin: &[u8]) -> super::Outcome {
        self.run_prepared(self.command(), stdin)
    }

    /// Runs the plugin with environment variable `k` set to raw bytes
    /// (not necessarily UTF-8).
    pub fn run_with_raw_env(&self, k: &str, v: &[u8]) -> super::Outcome {
        use std::os::unix::ffi::OsStrExt;
        let mut cmd = self.command();
        cmd.env(k, std::ffi::OsStr::from_bytes(v));
        self.run_prepared(cmd, self.stdin.to_string().as_bytes())
    }

    /// Runs `sh -c "<prelude>; exec <plugin>"`: the prelude runs with the
    /// very pid the plugin will have (`$$`), so it can plant files named
    /// after it.
    pub fn run_after(&self, prelude: &str) -> super::Outcome {
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{prelude}\nexec \"$CCNI_PLUGIN\""))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CCNI_PLUGIN", super::plugin())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        self.run_prepared(cmd, self.stdin.to_string().as_bytes())
    }

    fn run_prepared(&self, mut cmd: std::process::Command, stdin: &[u8]) -> super::Outcome {
        let start = std::time::Instant::now();
        let mut child = cmd.spawn().expect("spawn plugin");
        let mut input = child.stdin.take().expect("stdin");
        let bytes = stdin.to_vec();
        // The plugin may stop reading early: ignore EPIPE.
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&bytes);
        });
        let out = child.wait_with_output().expect("wait plugin");
        let _ = writer.join();
        super::Outcome {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }
}
