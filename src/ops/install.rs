//! `contrail-k8s-cni install`: copies the running binary into the CNI bin
//! directory and writes the node configuration, `10-contrail.conflist`,
//! the file the plugin itself reads as node configuration.
//!
//! - Every write is atomic: a temporary file in the same directory (a name
//!   neither the runtime nor the plugin reads), written, fsynced, renamed,
//!   then the directory fsynced. A kubelet never runs a half-copied binary
//!   and the plugin never reads a half-written configuration.
//! - The configuration's `contrail` object is the built-in defaults
//!   overridden by `--conf`, validated by the setters ADD uses; an unknown
//!   key is refused too (ADD ignores it, but here it is a typo).
//! - An existing contrail configuration (any file of the directory the
//!   plugin would read as one) is kept unless `--force`; then the files
//!   that would shadow ours are moved to `<name>.bak` and ours, if it
//!   differs, is replaced, its previous content kept as `.bak`.
//! - Idempotent: what is already in place is reported `unchanged`.

use super::usage_error;
use crate::config::{self, PLUGIN_TYPE};
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const USAGE: &str = "\
Usage: contrail-k8s-cni install [--bin-dir DIR] [--conf-dir DIR] [--conf FILE|-] [--force] [--dry-run]

Copies this binary to DIR/contrail-k8s-cni (default /opt/cni/bin) and writes
the node configuration 10-contrail.conflist (default dir /etc/cni/net.d):
the contrail-k8s-cni entry, then portmap. Its \"contrail\" object is the
built-in defaults overridden by --conf: a JSON object (a file, or - for
stdin) holding either the contrail keys or {\"contrail\": {...}}.
An existing contrail configuration is kept unless --force, which keeps a
.bak of what it replaces. --dry-run says what would be done and writes
nothing.";

/// The configuration file `install` writes.
pub const CONF_NAME: &str = "10-contrail.conflist";
/// The binary's name in the bin directory.
const BIN_NAME: &str = "contrail-k8s-cni";
/// A binary larger than this in the bin directory is not ours: replaced
/// without reading it whole.
const MAX_BINARY: u64 = 64 << 20;

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    bin_dir: PathBuf,
    conf_dir: PathBuf,
    conf: Option<String>,
    force: bool,
    dry_run: bool,
}

/// `install` with the arguments after it; the exit code.
pub fn main(args: &[String]) -> i32 {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(msg) => return usage_error("install", &msg, USAGE),
    };
    let mut out = Actions {
        dry_run: opts.dry_run,
        changes: 0,
    };
    match run(&opts, &mut out) {
        Ok(()) => {
            if opts.dry_run {
                println!("dry run: nothing written");
            } else if out.changes == 0 {
                println!("nothing to do: already installed");
            }
            0
        }
        Err(e) => {
            eprintln!("contrail-k8s-cni install: {e}");
            1
        }
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        bin_dir: "/opt/cni/bin".into(),
        conf_dir: config::DEFAULT_CONF_DIRS[0].into(),
        conf: None,
        force: false,
        dry_run: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--bin-dir" => o.bin_dir = value()?.into(),
            "--conf-dir" => o.conf_dir = value()?.into(),
            "--conf" => o.conf = Some(value()?),
            "--force" if inline.is_none() => o.force = true,
            "--dry-run" if inline.is_none() => o.dry_run = true,
            _ => {
                return Err(format!(
                    "unknown argument {}",
                    crate::ids::printable(arg, 64)
                ))
            }
        }
    }
    Ok(o)
}

/// Prints one line per action; under `--dry-run` what would be done.
struct Actions {
    dry_run: bool,
    changes: usize,
}

impl Actions {
    /// A change: `done` ("installed") or, in a dry run, "would" + `verb`.
    fn change(&mut self, verb: &str, done: &str, what: String) {
        self.changes += 1;
        if self.dry_run {
            println!("would {verb} {what}");
        } else {
            println!("{done} {what}");
        }
    }

    fn same(&self, path: &Path) {
        println!("unchanged {}", path.display());
    }

    fn kept(&self, path: &Path, why: &str) {
        println!("kept {}: {why}", path.display());
    }
}

fn run(o: &Options, out: &mut Actions) -> Result<(), String> {
    // Everything that can be refused is checked before anything is written.
    let conf = conflist(o.conf.as_deref())?;
    let mut exe = Vec::new();
    File::open("/proc/self/exe")
        .and_then(|f| f.take(MAX_BINARY).read_to_end(&mut exe))
        .map_err(|e| format!("cannot read this binary (/proc/self/exe): {e}"))?;
    install_binary(o, out, &exe)?;
    install_conf(o, out, &conf)
}

/// The conflist text: `contrail-k8s-cni` with the defaults overridden by
/// `--conf`, then `portmap`. Written by hand (keys in the order of
/// [`config::KEYS`], one per line); every value is printed by serde_json.
fn conflist(conf: Option<&str>) -> Result<Vec<u8>, String> {
    let mut contrail = config::defaults_object();
    if let Some(src) = conf {
        // `null` stays: it means "not set" to the setters, and is not written.
        contrail.extend(overrides(src)?);
    }
    config::validate_contrail(&contrail).map_err(|e| format!("--conf: {}", e.msg))?;
    // `overrides` refused unknown keys: every key is in KEYS.
    let keys: Vec<String> = config::KEYS
        .iter()
        .filter_map(|k| {
            let v = contrail.get(k.name).filter(|v| !v.is_null())?;
            Some(format!("        \"{}\": {v}", k.name))
        })
        .collect();
    let text = format!(
        r#"{{
  "cniVersion": "1.0.0",
  "name": "{PLUGIN_TYPE}",
  "plugins": [
    {{
      "type": "{PLUGIN_TYPE}",
      "contrail": {{
{}
      }}
    }},
    {{ "type": "portmap", "capabilities": {{ "portMappings": true }} }}
  ]
}}
"#,
        keys.join(",\n")
    );
    Ok(text.into_bytes())
}

/// The `--conf` object: the contrail keys, either at the top or inside
/// `{"contrail": {...}}`; an unknown key is refused, naming it.
fn overrides(src: &str) -> Result<Map<String, Value>, String> {
    let bytes = read_conf_source(src)?;
    let bad = |why: String| format!("--conf {src}: {why}");
    let top: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let Value::Object(top) = top else {
        return Err(bad("not a JSON object".into()));
    };
    let obj = match top.get("contrail") {
        Some(Value::Object(inner)) => match top.keys().find(|k| *k != "contrail") {
            None => inner.clone(),
            Some(other) => {
                return Err(bad(format!(
                    "unexpected key {} beside \"contrail\" (give the contrail keys, or {{\"contrail\": {{...}}}})",
                    crate::ids::printable(other, 64)
                )))
            }
        },
        Some(_) => return Err(bad("contrail is not an object".into())),
        None => top,
    };
    match obj.keys().find(|k| config::key(k).is_none()) {
        Some(k) => Err(bad(format!(
            "unknown key {} (not a contrail key)",
            crate::ids::printable(k, 64)
        ))),
        None => Ok(obj),
    }
}

/// The bytes of `--conf`: a file, or stdin for `-`; at most 1 MiB.
fn read_conf_source(src: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let limit = config::MAX_INPUT as u64 + 1;
    let read = if src == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        File::open(src).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| format!("--conf {src}: {e}"))?;
    if bytes.len() > config::MAX_INPUT {
        return Err(format!("--conf {src}: larger than 1 MiB"));
    }
    Ok(bytes)
}

fn install_binary(o: &Options, out: &mut Actions, exe: &[u8]) -> Result<(), String> {
    let dest = o.bin_dir.join(BIN_NAME);
    if in_place(&dest, exe, 0o755, MAX_BINARY) {
        out.same(&dest);
        return Ok(());
    }
    ensure_dir(&o.bin_dir, out)?;
    if !o.dry_run {
        write_atomic(&o.bin_dir, BIN_NAME, exe, 0o755)?;
    }
    out.change(
        "install",
        "installed",
        format!("{} ({} bytes)", dest.display(), exe.len()),
    );
    Ok(())
}

fn install_conf(o: &Options, out: &mut Actions, text: &[u8]) -> Result<(), String> {
    let dir = &o.conf_dir;
    let target = dir.join(CONF_NAME);
    let ours_same = in_place(&target, text, 0o644, config::MAX_INPUT as u64);
    let existing = node_files(dir)?;
    if !o.force && !existing.is_empty() {
        for name in &existing {
            match name.as_str() {
                CONF_NAME if ours_same => out.same(&target),
                _ => out.kept(
                    &dir.join(name),
                    "a contrail configuration is there (--force replaces it)",
                ),
            }
        }
        return Ok(());
    }
    ensure_dir(dir, out)?;
    for name in existing.iter().filter(|n| *n != CONF_NAME) {
        move_aside(o, out, name)?;
    }
    if ours_same {
        out.same(&target);
        return Ok(());
    }
    let replaced = existing.iter().any(|n| n == CONF_NAME);
    if replaced && !o.dry_run {
        backup(dir, CONF_NAME)?;
    }
    if !o.dry_run {
        write_atomic(dir, CONF_NAME, text, 0o644)?;
    }
    let note = if replaced {
        format!(" (the previous one kept as {CONF_NAME}.bak)")
    } else {
        String::new()
    };
    out.change(
        "install",
        "installed",
        format!("{}{note}", target.display()),
    );
    Ok(())
}

/// The names in `dir` the plugin reads as node configuration, in its order
/// (an absent directory has none).
fn node_files(dir: &Path) -> Result<Vec<String>, String> {
    match config::node_file_names(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        r => r.map_err(|e| format!("cannot list {}: {e}", dir.display())),
    }
}

/// `--force`: moves a configuration that would shadow ours (or be read
/// instead of it) to `<name>.bak`, a name nobody reads.
fn move_aside(o: &Options, out: &mut Actions, name: &str) -> Result<(), String> {
    let from = o.conf_dir.join(name);
    let to = o.conf_dir.join(format!("{name}.bak"));
    if !o.dry_run {
        std::fs::rename(&from, &to)
            .map_err(|e| format!("cannot move {} to {}: {e}", from.display(), to.display()))?;
    }
    out.change(
        "move",
        "moved",
        format!("{} to {}", from.display(), to.display()),
    );
    Ok(())
}

/// Keeps the current `name` as `name.bak` while `name` stays in place: a
/// hard link under a temporary name, renamed over the `.bak`.
fn backup(dir: &Path, name: &str) -> Result<(), String> {
    let tmp = dir.join(tmp_name(&format!("{name}.bak")));
    let bak = dir.join(format!("{name}.bak"));
    let _ = std::fs::remove_file(&tmp);
    std::fs::hard_link(dir.join(name), &tmp)
        .and_then(|()| std::fs::rename(&tmp, &bak))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot keep {}: {e}", bak.display())
        })
}

/// True when `path` is a regular file (not a symlink) of the running user
/// with exactly `data` and `mode`: nothing to do.
fn in_place(path: &Path, data: &[u8], mode: u32, max: u64) -> bool {
    let Ok(f) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    else {
        return false;
    };
    let Ok(meta) = f.metadata() else { return false };
    if !meta.is_file()
        || meta.len() != data.len() as u64
        || meta.len() > max
        || meta.mode() & 0o7777 != mode
        || meta.uid() != nix::unistd::geteuid().as_raw()
    {
        return false;
    }
    let mut have = Vec::with_capacity(data.len());
    f.take(max).read_to_end(&mut have).is_ok() && have == data
}

/// Creates `dir` (0755, with its parents) when it is missing.
fn ensure_dir(dir: &Path, out: &mut Actions) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => return Err(format!("{} is not a directory", dir.display())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot use {}: {e}", dir.display()))
        }
        Err(_) => {}
    }
    if !out.dry_run {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    out.change("create", "created", dir.display().to_string());
    Ok(())
}

/// A temporary name for `name`: hidden, and ending in neither `.conf`,
/// `.conflist` nor `.json`, so neither the runtime nor the plugin reads it.
fn tmp_name(name: &str) -> String {
    format!(".{name}.tmp-{}", std::process::id())
}

/// Writes `dir/name` atomically with `mode`: temporary file, fsync,
/// rename, directory fsync. Nothing is left behind on failure.
fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<(), String> {
    let tmp = dir.join(tmp_name(name));
    let dest = dir.join(name);
    // A leftover of a dead process that had our pid: ours to replace.
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        // Exact mode whatever the umask.
        f.set_permissions(Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &dest)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", dest.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.bin_dir, Path::new("/opt/cni/bin"));
        assert_eq!(o.conf_dir, Path::new("/etc/cni/net.d"));
        let o = parse(&args(&[
            "--bin-dir",
            "/b",
            "--conf-dir=/c",
            "--conf",
            "-",
            "--force",
            "--dry-run",
        ]))
        .unwrap();
        assert_eq!(
            (o.bin_dir.to_str(), o.conf_dir.to_str(), o.conf.as_deref()),
            (Some("/b"), Some("/c"), Some("-"))
        );
        assert!(o.force && o.dry_run);
        for bad in [
            &["--bin-dir"][..],
            &["--bin-dir="],
            &["--force=1"],
            &["-x"],
            &["x"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn conflist_is_the_defaults_with_overrides_and_portmap() {
        let text = conflist(None).unwrap();
        let v: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["plugins"][0]["type"], PLUGIN_TYPE);
        assert_eq!(
            v["plugins"][0]["contrail"],
            Value::Object(config::defaults_object())
        );
        assert_eq!(v["plugins"][1]["capabilities"]["portMappings"], true);
        assert_eq!(conflist(None).unwrap(), text, "deterministic");
    }
}
