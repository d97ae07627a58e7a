//! `contrail-k8s-cni install`: the binary copies itself and writes the node
//! configuration the plugin reads. Every run names its own temporary
//! directories; nothing here touches /opt/cni or /etc/cni.

mod common;

use common::*;
use contrail_cni::config::{self, Contrail};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scratch node: `bin/` and `net.d/` below a temporary directory (both
/// absent until install creates them).
struct Dirs {
    tmp: TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            tmp: TempDir::new("install"),
        }
    }
    fn bin(&self) -> PathBuf {
        self.tmp.path().join("bin")
    }
    fn net_d(&self) -> PathBuf {
        self.tmp.path().join("net.d")
    }
    fn conflist(&self) -> PathBuf {
        self.net_d().join("10-contrail.conflist")
    }
    /// `install --bin-dir <bin> --conf-dir <net.d> extra...`, `stdin` fed.
    fn install(&self, extra: &[&str], stdin: &str) -> Output {
        let (bin, net_d) = (self.bin(), self.net_d());
        let mut args = vec![
            "install",
            "--bin-dir",
            bin.to_str().unwrap(),
            "--conf-dir",
            net_d.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        common::launch(&args, &[], stdin.as_bytes())
    }
    /// The node configuration as the plugin reads it from `net.d`.
    fn load(&self) -> config::NetConf {
        let stdin = br#"{"cniVersion": "1.0.0", "name": "contrail-k8s-cni"}"#;
        let (conf, _) = config::load_from(stdin, &[self.net_d()]).expect("node configuration");
        conf
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

#[test]
fn installs_an_identical_binary_and_a_configuration_the_plugin_reads() {
    let d = Dirs::new();
    let out = d.install(&[], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let bin = d.bin().join("contrail-k8s-cni");
    let size = std::fs::metadata(plugin()).unwrap().len();
    assert_eq!(
        text(&out.stdout),
        format!(
            "created {}\ninstalled {} ({size} bytes)\ncreated {}\ninstalled {}\n",
            d.bin().display(),
            bin.display(),
            d.net_d().display(),
            d.conflist().display()
        )
    );
    assert!(
        std::fs::read(&bin).unwrap() == std::fs::read(plugin()).unwrap(),
        "the installed binary is byte-identical to the running one"
    );
    assert_eq!(mode(&bin), 0o755);
    assert_eq!(mode(&d.conflist()), 0o644);
    assert_eq!(
        std::fs::metadata(d.conflist()).unwrap().uid(),
        nix::unistd::geteuid().as_raw()
    );
    assert_eq!(names(&d.net_d()), ["10-contrail.conflist"], "no temporary");
    let conf = d.load();
    assert_eq!(conf.node_file.as_deref(), Some(d.conflist().as_path()));
    assert_eq!(conf.contrail, Contrail::default());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.conflist()).unwrap()).unwrap();
    assert_eq!(v["cniVersion"], "1.0.0");
    assert_eq!(v["plugins"][1]["type"], "portmap");
    assert_eq!(v["plugins"][1]["capabilities"]["portMappings"], true);
}

#[test]
fn a_second_run_changes_nothing_and_says_so() {
    let d = Dirs::new();
    assert!(d.install(&[], "").status.success());
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let before = (
        inode(&d.bin().join("contrail-k8s-cni")),
        inode(&d.conflist()),
    );
    let out = d.install(&[], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!(
            "unchanged {}\nunchanged {}\nnothing to do: already installed\n",
            d.bin().join("contrail-k8s-cni").display(),
            d.conflist().display()
        )
    );
    let after = (
        inode(&d.bin().join("contrail-k8s-cni")),
        inode(&d.conflist()),
    );
    assert_eq!(before, after, "nothing was rewritten");
    // A changed mode is not "in place": the plugin would refuse 0666.
    std::fs::set_permissions(d.conflist(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = d.install(&["--force"], "");
    assert!(text(&out.stdout).contains("installed"), "{out:?}");
    assert_eq!(mode(&d.conflist()), 0o644);
}

#[test]
fn an_existing_configuration_is_kept_unless_force_which_keeps_a_bak() {
    let d = Dirs::new();
    assert!(d.install(&[], "").status.success());
    let defaults = std::fs::read(d.conflist()).unwrap();
    // The reference's node file: read before ours (lexical order).
    let reference = d.net_d().join("05-contrail.conf");
    std::fs::write(&reference, r#"{"contrail": {"cluster-name": "old"}}"#).unwrap();
    let out = d.install(&["--conf", "-"], r#"{"mtu": 9000}"#);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    for p in [&reference, &d.conflist()] {
        assert!(
            stdout.contains(&format!("kept {}", p.display())),
            "{stdout}"
        );
    }
    assert_eq!(std::fs::read(d.conflist()).unwrap(), defaults);
    assert_eq!(d.load().contrail.cluster_name.as_str(), "old");

    let out = d.install(
        &["--conf", "-", "--force"],
        r#"{"contrail": {"mtu": 9000}}"#,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "moved {} to {}.bak",
            reference.display(),
            reference.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("kept as 10-contrail.conflist.bak"),
        "{stdout}"
    );
    assert_eq!(
        names(&d.net_d()),
        [
            "05-contrail.conf.bak",
            "10-contrail.conflist",
            "10-contrail.conflist.bak"
        ]
    );
    assert_eq!(
        std::fs::read(d.net_d().join("10-contrail.conflist.bak")).unwrap(),
        defaults
    );
    let conf = d.load();
    assert_eq!(conf.node_file.as_deref(), Some(d.conflist().as_path()));
    assert_eq!(
        (conf.contrail.mtu, conf.contrail.cluster_name.as_str()),
        (9000, "k8s")
    );
    // Forced again with the same configuration: in place.
    let out = d.install(&["--conf", "-", "--force"], r#"{"mtu": 9000}"#);
    assert!(
        text(&out.stdout).ends_with("nothing to do: already installed\n"),
        "{out:?}"
    );
}

#[test]
fn a_bad_conf_is_refused_naming_the_key_and_nothing_is_written() {
    let d = Dirs::new();
    for (conf, named) in [
        (r#"{"mtu": 5}"#, "contrail.mtu"),
        (
            r#"{"contrail": {"vrouter-port": "x"}}"#,
            "contrail.vrouter-port",
        ),
        (r#"{"config-dir": "relative/dir"}"#, "contrail.config-dir"),
        (r#"{"vrouter-adress": "10.0.0.1"}"#, "vrouter-adress"),
        (
            r#"{"contrail": {}, "name": "x"}"#,
            r#"unexpected key "name""#,
        ),
        (r#"{"contrail": 3}"#, "contrail is not an object"),
        ("[1]", "not a JSON object"),
        ("{", "EOF"),
    ] {
        let out = d.install(&["--conf", "-"], conf);
        assert_eq!(out.status.code(), Some(1), "{conf}: {out:?}");
        assert!(text(&out.stderr).contains(named), "{conf}: {out:?}");
        assert!(out.stdout.is_empty(), "{conf}: {out:?}");
        assert!(!d.bin().exists() && !d.net_d().exists(), "{conf}: wrote");
    }
    // A file works as well as stdin.
    let file = d.tmp.path().join("conf.json");
    std::fs::write(
        &file,
        r#"{"contrail": {"cluster-name": "blue", "mesos-ip": ""}}"#,
    )
    .unwrap();
    let out = d.install(&["--conf", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(d.load().contrail.cluster_name.as_str(), "blue");
    let missing = d.install(&["--conf", "/nonexistent/conf.json"], "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("/nonexistent/conf.json"));
}

#[test]
fn dry_run_writes_nothing() {
    let d = Dirs::new();
    let out = d.install(&["--dry-run"], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("would create {}\n", d.bin().display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("would install {}\n", d.conflist().display())),
        "{stdout}"
    );
    assert!(stdout.ends_with("dry run: nothing written\n"), "{stdout}");
    assert_eq!(names(d.tmp.path()), Vec::<String>::new());

    assert!(d.install(&[], "").status.success());
    let before = std::fs::read(d.conflist()).unwrap();
    let out = d.install(&["--dry-run", "--force", "--conf", "-"], r#"{"mtu": 1400}"#);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("would install"), "{stdout}");
    assert_eq!(std::fs::read(d.conflist()).unwrap(), before);
    assert_eq!(names(&d.net_d()), ["10-contrail.conflist"]);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["install", "--bogus"][..],
        &["install", "--bin-dir"],
        &["install", "x"],
    ] {
        let out = common::launch(args, &[], b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("Usage: contrail-k8s-cni install"));
    }
    let out = common::launch(&["install", "--help"], &[], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--dry-run"));
}

/// Root writes anywhere permissions say it may not, so unwritable means a
/// read-only mount: a tmpfs (the directories do not exist) and a read-only
/// bind mount (they do), each in a private mount namespace of the
/// installing process only.
#[test]
fn an_unwritable_directory_is_a_clear_error() {
    require_root!();
    let d = Dirs::new();
    let ro = |setup: &str, expect: &str| {
        let root = d.tmp.path().to_str().unwrap();
        let script =
            format!(r#"{setup} && exec "$1" install --bin-dir "$2/bin" --conf-dir "$2/net.d""#);
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .args([plugin(), root]);
        let out = cmd.stdin(Stdio::null()).output().expect("run unshare");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(expect) && err.contains("Read-only file system"),
            "{err}"
        );
    };
    ro(
        r#"mount -t tmpfs -o ro none "$2""#,
        &format!("cannot create {}", d.bin().display()),
    );
    std::fs::create_dir_all(d.bin()).unwrap();
    std::fs::create_dir_all(d.net_d()).unwrap();
    ro(
        r#"mount --bind "$2" "$2" && mount -o remount,bind,ro "$2""#,
        &format!("cannot write {}/contrail-k8s-cni", d.bin().display()),
    );
    assert!(names(&d.bin()).is_empty() && names(&d.net_d()).is_empty());
}
