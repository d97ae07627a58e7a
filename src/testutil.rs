//! Scaffolding shared by the unit tests (`crate::testutil`) and the
//! integration tests (`tests/common` includes this very file): one
//! temporary directory and one way to start a real-kernel test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

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

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// False (the test should return, skipped) when not root, after saying so;
/// a failure under `CI=true`, where a silent skip would hide regressions.
pub fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "this test needs root and CI=true: refusing to skip"
    );
    eprintln!("SKIPPED: needs root (real-kernel test)");
    false
}

/// The start of every real-kernel test: [`root_or_skip`], then the calling
/// thread moves into a fresh network namespace, its "host", with `lo` up.
pub fn setup() -> bool {
    if !root_or_skip() {
        return false;
    }
    enter_fresh_netns();
    true
}

/// Moves the calling thread into a fresh network namespace and brings `lo` up.
pub fn enter_fresh_netns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    run_ok("ip", &["link", "set", "lo", "up"]);
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
