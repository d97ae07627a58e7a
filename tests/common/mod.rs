//! Helpers shared by the integration tests: per-thread network namespaces,
//! namespaces held by a file descriptor only, temporary directories.
//!
//! Every real-kernel test starts with `require_root!()` and `enter_fresh_netns()`:
//! the test's own thread moves into a new network namespace, so tests run in
//! parallel without seeing each other or the host.

#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips the test with a message when not root; fails under `CI=true`, where
/// a silent skip would hide regressions.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("this test needs root and CI=true: refusing to skip");
            }
            eprintln!("SKIPPED: needs root (real-kernel test)");
            return;
        }
    };
}

/// Moves the calling thread into a fresh network namespace and brings `lo` up.
pub fn enter_fresh_netns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    run_ok("ip", &["link", "set", "lo", "up"]);
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

/// Runs a command, panics with its stderr when it fails, returns stdout.
pub fn run_ok(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ccni-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
