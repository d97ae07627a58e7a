//! On-disk state: the port files the agent reloads, the Multus cache, the
//! per-pod lock.
//!
//! Layout: `<config-dir>/<vm-name>/<vmi-uuid>` port files (dirs 0700, files
//! 0600, atomic: temp name not starting with a UUID, fsync, rename, fsync
//! dir); `<config-dir>/../multus/<vm-name>` Multus cache;
//! `<config-dir>/../cni-locks/<vm-name>.lock` per-pod flock.
//!
//! The agent loads every regular file of a VM directory whose name *starts*
//! with a UUID (docs/agent-api.md §7), so temporary files are named
//! `.tmp-<pid>-<n>`: never a UUID prefix, and the pid tells a later run
//! whether the writer is gone and the file is stale.

use crate::agent::{PortRequest, VmiConfig};
use crate::cni::error::{code, Error, Result};
use crate::ids::Uuid;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of our temporary files.
const TMP_PREFIX: &str = ".tmp-";
/// Longest VM name: a file system name is at most 255 bytes and the lock
/// file adds `.lock`.
pub const MAX_VM_NAME: usize = 250;
/// Port files and caches are small; anything larger is not ours.
const MAX_FILE: u64 = 1 << 20;

/// A port file: the agent's fields (flattened) plus what DEL, CHECK and GC
/// need so they never recompute a name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortFile {
    /// The agent's part: exactly the `POST /vm` body.
    #[serde(flatten)]
    pub port: PortRequest,
    /// "veth" or "macvlan".
    #[serde(rename = "vif-type")]
    pub vif_type: String,
    /// Pod UID from CNI_ARGS K8S_POD_UID, empty when the runtime sent none.
    #[serde(rename = "pod-uid", default)]
    pub pod_uid: String,
    /// The CNI network name this VMI was configured for.
    #[serde(rename = "network", default)]
    pub network: String,
    /// The `index` of the VMI (0 = primary).
    #[serde(rename = "index", default)]
    pub index: u32,
    /// Nested mode: the VLAN id and VLAN link name on the parent.
    #[serde(rename = "vlan-id", default, skip_serializing_if = "Option::is_none")]
    pub vlan_id: Option<u16>,
}

/// The Multus cache: the `/vm-cfg` answer of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MultusCache {
    /// The sandbox the answer was fetched for.
    #[serde(rename = "container-id")]
    pub container_id: String,
    /// Pod UID from CNI_ARGS, empty when absent.
    #[serde(rename = "pod-uid", default)]
    pub pod_uid: String,
    /// The VMIs, as [`crate::agent::Agent::poll_vm_cfg`] returned them.
    pub vmis: Vec<VmiConfig>,
}

/// A port file that could not be read or parsed.
#[derive(Debug, Clone)]
pub struct BadPortFile {
    /// Where it is (remove it with [`Store::remove_file`]).
    pub path: PathBuf,
    /// Why it was rejected.
    pub reason: String,
}

/// Held for the whole command; released on drop (the lock file stays:
/// removing it would let a waiter lock an unlinked inode).
pub struct PodLock {
    _lock: nix::fcntl::Flock<File>,
}

/// The plugin's state under one config directory.
pub struct Store {
    dir: PathBuf,
}

/// Checks a VM name before it becomes a file name: non-empty, at most
/// [`MAX_VM_NAME`] bytes, no `/`, no NUL, no `..`, no leading `.` (which
/// would also collide with temp and hidden names).
pub fn check_vm_name(vm_name: &str) -> Result<()> {
    let ok = !vm_name.is_empty()
        && vm_name.len() <= MAX_VM_NAME
        && !vm_name.starts_with('.')
        && !vm_name.contains("..")
        && !vm_name.bytes().any(|b| b == b'/' || b == 0);
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            code::STATE,
            format!("invalid VM name {vm_name:?}"),
        ))
    }
}

/// Checks a VMI UUID before it becomes a file name; returns it lower-cased.
fn check_vmi(vmi_uuid: &str) -> Result<String> {
    Uuid::parse(vmi_uuid)
        .map(|u| u.to_string())
        .map_err(|e| Error::new(code::STATE, format!("VMI: {e}")))
}

fn state_err(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(code::STATE, format!("{what} {}: {e}", path.display()))
}

/// Creates `dir` (and its parents) and makes `dir` itself 0700: it may have
/// been created by an older plugin with 0644.
fn ensure_private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| state_err("creating directory", dir, e))?;
    let meta = fs::metadata(dir).map_err(|e| state_err("checking directory", dir, e))?;
    if meta.permissions().mode() & 0o7777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| state_err("chmod 0700", dir, e))?;
    }
    Ok(())
}

/// fsync a directory so a rename or unlink in it survives a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| state_err("syncing directory", dir, e))
}

/// Writes `dir/name` atomically with mode 0600: temp file, fsync, rename,
/// fsync the directory. The directory is created 0700 if needed.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    ensure_private_dir(dir)?;
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let target = dir.join(name);
    let write = || -> std::io::Result<()> {
        // A leftover of a dead process that had our pid: ours to replace.
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        // The umask may have removed bits; the mode must be exact.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, &target)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(state_err("writing", &target, e));
    }
    sync_dir(dir)
}

/// Removes `path`; absent is fine. The directory is synced after a removal.
fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => match path.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(state_err("removing", path, e)),
    }
}

/// Reads a regular file of at most [`MAX_FILE`] bytes without following a
/// symlink. O_NONBLOCK: opening a FIFO planted under a port-file name must
/// not hang the command (regular files ignore the flag).
fn read_small(path: &Path) -> std::result::Result<String, String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_FILE {
        return Err(format!("too large ({} bytes)", meta.len()));
    }
    let mut s = String::new();
    f.take(MAX_FILE)
        .read_to_string(&mut s)
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// True for `.tmp-<pid>-<n>` whose writer no longer runs.
fn is_stale_tmp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
        return false;
    };
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // kill(pid, 0) probes existence without sending anything; EPERM means
    // it exists under another user.
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
        .map_or_else(|e| e == nix::errno::Errno::EPERM, |()| true);
    !alive
}

/// Removes the stale temp files of a directory (best effort).
fn clean_stale_tmps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_str().is_some_and(is_stale_tmp) {
            log::info!("removing stale temporary file {}", e.path().display());
            let _ = fs::remove_file(e.path());
        }
    }
}

impl Store {
    /// A store rooted at `config_dir` (e.g. `/var/lib/contrail/ports/vm`);
    /// nothing is touched until the first write.
    pub fn new(config_dir: &Path) -> Store {
        Store {
            dir: config_dir.to_path_buf(),
        }
    }

    /// The config directory.
    pub fn config_dir(&self) -> &Path {
        &self.dir
    }

    /// The parent of the config directory, where `multus/` and `cni-locks/`
    /// live. `Path::parent` rather than `..`, which only resolves once the
    /// config directory exists.
    fn state_root(&self) -> PathBuf {
        match self.dir.parent() {
            Some(p) if p.as_os_str().is_empty() => PathBuf::from("."),
            Some(p) => p.to_path_buf(),
            None => self.dir.clone(),
        }
    }

    /// `<config-dir>/../cni-locks`, where the per-pod lock files live.
    pub fn lock_dir(&self) -> PathBuf {
        self.state_root().join("cni-locks")
    }

    /// `<config-dir>/../multus`, where the Multus caches live.
    pub fn multus_dir(&self) -> PathBuf {
        self.state_root().join("multus")
    }

    /// `<config-dir>/<vm-name>` (validated).
    pub fn vm_dir(&self, vm_name: &str) -> Result<PathBuf> {
        check_vm_name(vm_name)?;
        Ok(self.dir.join(vm_name))
    }

    /// `<config-dir>/<vm-name>/<vmi-uuid>` (validated, UUID lower-cased).
    pub fn port_path(&self, vm_name: &str, vmi_uuid: &str) -> Result<PathBuf> {
        Ok(self.vm_dir(vm_name)?.join(check_vmi(vmi_uuid)?))
    }

    /// Takes the per-pod lock (blocking flock), creating directories as needed.
    pub fn lock_pod(&self, vm_name: &str) -> Result<PodLock> {
        check_vm_name(vm_name)?;
        let dir = self.lock_dir();
        ensure_private_dir(&dir)?;
        let path = dir.join(format!("{vm_name}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| state_err("opening lock", &path, e))?;
        loop {
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive) {
                Ok(lock) => {
                    log::debug!("locked {}", path.display());
                    return Ok(PodLock { _lock: lock });
                }
                Err((f, nix::errno::Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(state_err("locking", &path, e)),
            }
        }
    }

    /// Writes the port file of `pf` atomically (0600 in a 0700 directory).
    pub fn write_port(&self, pf: &PortFile) -> Result<()> {
        let dir = self.vm_dir(pf.port.vm_name.as_str())?;
        let name = check_vmi(pf.port.vmi_uuid.as_str())?;
        let data = serde_json::to_vec_pretty(pf)
            .map_err(|e| Error::new(code::STATE, format!("encoding port file: {e}")))?;
        write_atomic(&dir, &name, &data)?;
        log::debug!("wrote port file {}", dir.join(&name).display());
        Ok(())
    }

    /// Every port file of the VM; unreadable ones are reported, not fatal.
    ///
    /// Port files are the regular files whose name is a UUID. A file whose
    /// name only *starts* with one (`<uuid>.tmp`) is reported as bad: the
    /// agent would load it. Stale temp files are removed; other names are
    /// ignored. An absent directory is an empty result.
    pub fn read_ports(&self, vm_name: &str) -> (Vec<PortFile>, Vec<BadPortFile>) {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        let dir = match self.vm_dir(vm_name) {
            Ok(d) => d,
            Err(e) => {
                log::warn!("read_ports: {e}");
                return (good, bad);
            }
        };
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return (good, bad),
            Err(e) => {
                bad.push(BadPortFile {
                    path: dir,
                    reason: format!("cannot list directory: {e}"),
                });
                return (good, bad);
            }
        };
        // Like the agent, only files count; a directory is nobody's port.
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            if is_stale_tmp(&name) {
                log::info!("removing stale temporary file {}", path.display());
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(uuid) = name.get(..36).and_then(|n| Uuid::parse(n).ok()) else {
                continue;
            };
            if name.len() != 36 {
                bad.push(BadPortFile {
                    path,
                    reason: "name starts with a UUID but has a suffix (the agent would load it)"
                        .into(),
                });
                continue;
            }
            match read_small(&path).and_then(|s| parse_port(&s, vm_name, uuid.as_str())) {
                Ok(pf) => good.push(pf),
                Err(reason) => bad.push(BadPortFile { path, reason }),
            }
        }
        (good, bad)
    }

    /// Removes one port file (absent is fine).
    pub fn remove_port(&self, vm_name: &str, vmi_uuid: &str) -> Result<()> {
        remove_if_present(&self.port_path(vm_name, vmi_uuid)?)
    }

    /// Removes a bad file found by `read_ports` (absent is fine). Only files
    /// inside the config directory are removed.
    pub fn remove_file(&self, path: &Path) -> Result<()> {
        let inside = path.starts_with(&self.dir)
            && path.strip_prefix(&self.dir).is_ok_and(|rel| {
                rel.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
            });
        if !inside {
            return Err(Error::new(
                code::STATE,
                format!(
                    "refusing to remove {} outside {}",
                    path.display(),
                    self.dir.display()
                ),
            ));
        }
        remove_if_present(path)
    }

    /// Removes the VM directory when it is empty (absent is fine; stale temp
    /// files are removed first; a non-empty directory is left alone).
    pub fn remove_vm_dir_if_empty(&self, vm_name: &str) -> Result<()> {
        let dir = self.vm_dir(vm_name)?;
        clean_stale_tmps(&dir);
        match fs::remove_dir(&dir) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::ENOTEMPTY)
                    || e.raw_os_error() == Some(libc::EEXIST) =>
            {
                log::debug!("{} not empty, kept", dir.display());
                Ok(())
            }
            Err(e) => Err(state_err("removing directory", &dir, e)),
        }
    }

    /// Names of every VM directory (for GC); an absent config directory has
    /// none. Names that fail [`check_vm_name`] are skipped.
    pub fn vm_names(&self) -> Result<Vec<String>> {
        list_names(&self.dir, true)
    }

    /// Names of the pods with a Multus cache (for GC).
    pub fn multus_cache_names(&self) -> Result<Vec<String>> {
        list_names(&self.multus_dir(), false)
    }

    /// Writes the Multus cache of `vm_name` atomically (0600, dir 0700).
    pub fn write_multus_cache(&self, vm_name: &str, cache: &MultusCache) -> Result<()> {
        check_vm_name(vm_name)?;
        let data = serde_json::to_vec_pretty(cache)
            .map_err(|e| Error::new(code::STATE, format!("encoding Multus cache: {e}")))?;
        write_atomic(&self.multus_dir(), vm_name, &data)
    }

    /// None when absent or unreadable (an unreadable cache is removed and logged).
    pub fn read_multus_cache(&self, vm_name: &str) -> Option<MultusCache> {
        check_vm_name(vm_name).ok()?;
        let path = self.multus_dir().join(vm_name);
        let parsed =
            read_small(&path).and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()));
        match parsed {
            Ok(c) => Some(c),
            Err(_) if !path.exists() => None,
            Err(e) => {
                log::warn!("removing unreadable Multus cache {}: {e}", path.display());
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Removes the Multus cache of `vm_name` (absent is fine).
    pub fn remove_multus_cache(&self, vm_name: &str) -> Result<()> {
        check_vm_name(vm_name)?;
        remove_if_present(&self.multus_dir().join(vm_name))
    }
}

/// Parses a port file and checks it belongs where it was found.
fn parse_port(text: &str, vm_name: &str, uuid: &str) -> std::result::Result<PortFile, String> {
    if text.trim().is_empty() {
        return Err("empty file".into());
    }
    let pf: PortFile = serde_json::from_str(text).map_err(|e| format!("invalid port file: {e}"))?;
    if pf.port.vmi_uuid.as_str() != uuid {
        return Err(format!(
            "vmi-uuid {:?} does not match the file name",
            pf.port.vmi_uuid
        ));
    }
    if pf.port.vm_name != vm_name {
        return Err(format!(
            "vm-name {:?} does not match the directory",
            pf.port.vm_name
        ));
    }
    Ok(pf)
}

/// Valid VM names among the directories (`dirs`) or regular files of `dir`,
/// sorted; a missing `dir` has none.
fn list_names(dir: &Path, dirs: bool) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(state_err("listing", dir, e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| if dirs { t.is_dir() } else { t.is_file() })
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| check_vm_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names)
}
