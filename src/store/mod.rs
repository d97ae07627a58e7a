//! On-disk state: the port files the agent reloads, the Multus cache, the
//! per-pod lock.
//!
//! Layout, all of it the plugin's own (docs/agent-api.md has the port-file
//! format the agent reads):
//! - `<config-dir>/<vm-name>/<vmi-uuid>`: port files (dirs 0700, files 0600,
//!   written atomically);
//! - `<config-dir>/../multus/<vm-name>`: the Multus cache of a pod;
//! - `<config-dir>/../cni-locks/<vm-name>`: the per-pod lock file.
//!
//! `config-dir` is node-only configuration (trusted). Everything below it
//! is reached through directory fds without following a symlink
//! ([`dirfd`]), and every record read back is data: a port file must be
//! valid JSON of the right shape whose names agree with where it lies and
//! with the plugin's naming rule, or it is reported as corrupt, never
//! followed. Only entries of this layout are ever removed.

pub mod dirfd;

use crate::agent::{wire, PortRequest, VmiConfig};
use crate::cni::error::{code, Error, Result};
use crate::config::VifType;
use crate::deadline::Deadline;
use crate::ids::{ContainerId, IfName, Uuid, VmName};
use crate::vif::names::host_name;
use dirfd::{is_stale_tmp, DirFd, Identity, Kind};
use nix::fcntl::{Flock, FlockArg, OFlag};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Port files and caches are small; anything larger is not ours.
const MAX_FILE: u64 = 1 << 20;
/// The Multus caches, beside `config-dir`.
pub const MULTUS_DIR: &str = "multus";
/// The per-pod lock files, beside `config-dir`.
pub const LOCK_DIR: &str = "cni-locks";

/// A port file: the agent's fields plus what DEL, CHECK and GC need so
/// they never recompute a name. On disk it is one flat JSON object, written
/// by [`PortFile::to_json`] and read by [`PortFile::from_json`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortFile {
    /// The agent's part: exactly the `POST /vm` body.
    pub port: PortRequest,
    pub vif_type: VifType,
    /// Pod UID from CNI_ARGS `K8S_POD_UID` (older files write "" for none).
    pub pod_uid: Option<Uuid>,
    /// The CNI network name this VMI was configured for.
    pub network: String,
    /// The `index` of the VMI (0 = primary).
    pub index: u32,
    /// Nested mode: the VLAN id of the VLAN link on the parent.
    pub vlan_id: Option<u16>,
}

impl PortFile {
    /// The file's text: the [`PortRequest`] members in the agent's order,
    /// then ours, pretty-printed.
    pub fn to_json(&self) -> String {
        let mut m = self.port.members();
        let vif = match self.vif_type {
            VifType::Veth => "veth",
            VifType::Macvlan => "macvlan",
        };
        m.push(("vif-type", vif.into()));
        if let Some(uid) = &self.pod_uid {
            m.push(("pod-uid", uid.as_str().into()));
        }
        m.push(("network", self.network.as_str().into()));
        m.push(("index", self.index.into()));
        if let Some(v) = self.vlan_id {
            m.push(("vlan-id", v.into()));
        }
        wire::object_text(&m, true)
    }

    /// Parses a port file. Unknown keys are ignored; `pod-uid` may be
    /// absent or "" (older files), `network`, `index` and `vlan-id` absent.
    /// Through `serde_json::Value`, whose parser the binary has anyway: a
    /// derived `Deserialize` costs about 8 KB more.
    pub fn from_json(text: &[u8]) -> std::result::Result<PortFile, String> {
        use serde_json::Value;
        let v: Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        let o = v.as_object().ok_or("not a JSON object")?;
        let text = |k: &str| match o.get(k) {
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            None => Ok(None),
            Some(_) => Err(format!("{k} is not a string")),
        };
        let need = |k: &str| text(k)?.ok_or_else(|| format!("missing {k}"));
        let num = |k: &str, max: u64| match o.get(k) {
            None => Ok(None),
            Some(n) => n
                .as_u64()
                .filter(|n| *n <= max)
                .map(Some)
                .ok_or_else(|| format!("{k} is not a number up to {max}")),
        };
        let typed = |k: &str, e: crate::ids::Invalid| format!("{k}: {e}");
        let uuid = |k: &str| Uuid::parse(need(k)?).map_err(|e| typed(k, e));
        let ifname = |k: &str| IfName::parse(need(k)?).map_err(|e| typed(k, e));
        Ok(PortFile {
            port: PortRequest {
                vm_uuid: uuid("vm-uuid")?,
                vm_name: VmName::parse(need("vm-name")?).map_err(|e| typed("vm-name", e))?,
                host_ifname: ifname("host-ifname")?,
                vn_uuid: uuid("vn-uuid")?,
                vmi_uuid: uuid("vmi-uuid")?,
                vm_id: ContainerId::parse(need("vm-id")?).map_err(|e| typed("vm-id", e))?,
                vm_ifname: ifname("vm-ifname")?,
                vm_namespace: need("vm-namespace")?.to_string(),
            },
            vif_type: match need("vif-type")? {
                "veth" => VifType::Veth,
                "macvlan" => VifType::Macvlan,
                other => return Err(format!("vif-type {other:?} is not veth or macvlan")),
            },
            pod_uid: match text("pod-uid")? {
                None | Some("") => None,
                Some(_) => Some(uuid("pod-uid")?),
            },
            network: text("network")?.unwrap_or_default().to_string(),
            index: num("index", u64::from(u32::MAX))?.unwrap_or(0) as u32,
            vlan_id: num("vlan-id", u64::from(u16::MAX))?.map(|v| v as u16),
        })
    }
}

impl PortFile {
    /// Why this record cannot be the plugin's record for file `file` of
    /// directory `vm`, if it cannot: its names must agree with where it
    /// lies, and its host link must be the one the naming rule gives.
    fn check(&self, vm: &VmName, file: &Uuid) -> std::result::Result<(), String> {
        let p = &self.port;
        let expected = host_name(self.vif_type, &p.vm_uuid, &p.vm_ifname);
        if p.vmi_uuid != *file {
            Err(format!("vmi-uuid {} is not the file's name", p.vmi_uuid))
        } else if p.vm_name != *vm {
            Err(format!("vm-name {} is not the directory's name", p.vm_name))
        } else if p.host_ifname != expected {
            Err(format!(
                "host-ifname {} is not the plugin's name for it ({expected})",
                p.host_ifname
            ))
        } else if (self.vif_type == VifType::Macvlan)
            != self.vlan_id.is_some_and(|v| (1..=4094).contains(&v))
        {
            Err("vlan-id does not match vif-type".into())
        } else {
            Ok(())
        }
    }
}

/// The Multus cache: the `/vm-cfg` answer of one sandbox. On disk,
/// `{"container-id": .., "pod-uid": .. (when known), "vmis": [..]}` with
/// the VMIs in the agent's own form ([`wire::encode_vm_cfg`]), each typed
/// again when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultusCache {
    /// The sandbox the answer was fetched for.
    pub container_id: ContainerId,
    /// Pod UID from CNI_ARGS, if any.
    pub pod_uid: Option<Uuid>,
    /// The VMIs, as the agent client returned them.
    pub vmis: Vec<VmiConfig>,
}

impl MultusCache {
    fn to_json(&self) -> String {
        let mut o = serde_json::Map::new();
        o.insert("container-id".into(), self.container_id.as_str().into());
        if let Some(uid) = &self.pod_uid {
            o.insert("pod-uid".into(), uid.as_str().into());
        }
        o.insert("vmis".into(), wire::encode_vm_cfg(&self.vmis));
        serde_json::Value::Object(o).to_string()
    }

    fn from_json(text: &[u8]) -> std::result::Result<MultusCache, String> {
        let v: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        let get = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
        let container_id = ContainerId::parse(get("container-id").unwrap_or_default())
            .map_err(|e| format!("container-id: {e}"))?;
        let pod_uid = match get("pod-uid") {
            None | Some("") => None,
            Some(u) => Some(Uuid::parse(u).map_err(|e| format!("pod-uid: {e}"))?),
        };
        let vmis = v.get("vmis").and_then(serde_json::Value::as_array);
        let vmis = wire::decode_vmis(vmis.map_or(&[], Vec::as_slice))
            .map_err(|r| r.reason().to_string())?;
        Ok(MultusCache {
            container_id,
            pod_uid,
            vmis,
        })
    }
}

/// An entry of a VM directory that is not a usable port file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFile {
    pub vm: VmName,
    /// Its name in the VM directory.
    pub name: String,
    /// Why it was rejected.
    pub reason: String,
}

impl BadFile {
    /// The VMI its name starts with.
    pub fn vmi(&self) -> Option<Uuid> {
        self.name.get(..Uuid::LEN).and_then(|p| Uuid::parse(p).ok())
    }
}

/// The port files of one VM directory.
#[derive(Debug, Clone, Default)]
pub struct Ports {
    pub good: Vec<PortFile>,
    pub bad: Vec<BadFile>,
}

/// The per-pod lock, held for the whole command (released on drop).
pub struct PodLock {
    _lock: Flock<File>,
    dir: DirFd,
    vm: VmName,
}

impl PodLock {
    /// Ends the command: when the pod has no state left, the lock file goes
    /// too (while still held: a waiter that then gets the lock sees its
    /// file gone and starts over).
    pub fn finish(self, store: &Store) {
        if store.has_state(&self.vm) {
            return;
        }
        match self.dir.unlink(self.vm.as_str()) {
            Ok(_) => log::debug!("removed the lock of {}", self.vm),
            Err(e) => log::warn!("removing the lock of {}: {e}", self.vm),
        }
    }
}

/// Whether port files and Multus caches, and their directories, are
/// fsynced. They are not: a sync only protects against a crash of the whole
/// node, after which the runtime recreates every sandbox and the old
/// interfaces are gone with the old kernel, and it cost 4.5 ms per file on
/// average, more than 10 ms at p90 (docs/performance.md, "Port files:
/// fsync or not"). The write stays atomic (temporary file, rename).
const DURABLE: bool = false;

/// The plugin's state under one config directory.
pub struct Store {
    dir: PathBuf,
    /// Never remove anything while reading (`doctor`): stale temporary
    /// files are left for the next command or GC.
    read_only: bool,
}

fn state_err(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(code::STATE, format!("{what} {}: {e}", path.display()))
}

impl Store {
    /// A store rooted at `config_dir` (an absolute path below `/`, as the
    /// configuration guarantees); nothing is touched until the first use.
    pub fn new(config_dir: &Path) -> Store {
        Store {
            dir: config_dir.to_path_buf(),
            read_only: false,
        }
    }

    /// A store for inspection only (`doctor`): [`Store::read_ports`] leaves
    /// stale temporary files where they are. Reading through it never
    /// creates or removes anything; writing is the caller's mistake.
    pub fn read_only(config_dir: &Path) -> Store {
        Store {
            read_only: true,
            ..Store::new(config_dir)
        }
    }

    pub fn config_dir(&self) -> &Path {
        &self.dir
    }

    /// Where `multus/` and `cni-locks/` live: the parent of `config-dir`.
    pub fn state_root(&self) -> &Path {
        self.dir.parent().unwrap_or(Path::new("/"))
    }

    /// `config-dir`, None when absent and `create` is false.
    fn config(&self, create: bool) -> Result<Option<DirFd>> {
        let d = if create {
            DirFd::create(&self.dir).map(Some)
        } else {
            DirFd::open(&self.dir)
        };
        d.map_err(|e| state_err("opening", &self.dir, e))
    }

    /// `<state root>/<name>`, created (0700) when `create`.
    fn sub(&self, name: &str, create: bool) -> Result<Option<DirFd>> {
        let path = self.state_root().join(name);
        let root = if create {
            DirFd::create(self.state_root()).map(Some)
        } else {
            DirFd::open(self.state_root())
        }
        .map_err(|e| state_err("opening", self.state_root(), e))?;
        let Some(root) = root else { return Ok(None) };
        if create {
            root.private_dir(name).map(Some)
        } else {
            root.dir(name)
        }
        .map_err(|e| state_err("opening", &path, e))
    }

    /// `<config-dir>/<vm>`, created (0700) when `create`.
    fn vm_dir(&self, vm: &VmName, create: bool) -> Result<Option<DirFd>> {
        let Some(config) = self.config(create)? else {
            return Ok(None);
        };
        let path = self.dir.join(vm.as_str());
        if create {
            config.private_dir(vm.as_str()).map(Some)
        } else {
            config.dir(vm.as_str())
        }
        .map_err(|e| state_err("opening", &path, e))
    }

    /// Takes the per-pod lock, waiting until `deadline` at most (code 11
    /// then). The lock file is created when needed; a lock whose file was
    /// removed while we waited is taken again on the new file.
    pub fn lock_pod(&self, vm: &VmName, deadline: &Deadline) -> Result<PodLock> {
        let path = self.state_root().join(LOCK_DIR).join(vm.as_str());
        let err = |e: std::io::Error| state_err("locking", &path, e);
        let mut wait = Duration::from_millis(2);
        let started = std::time::Instant::now();
        loop {
            let dir = self
                .sub(LOCK_DIR, true)?
                .ok_or_else(|| state_err("locking", &path, "the lock directory vanished"))?;
            // O_RDONLY: flock needs no write access, and an existing lock
            // file still opens on a read-only file system.
            let file = dir
                .open_file(vm.as_str(), OFlag::O_RDONLY | OFlag::O_CREAT, 0o600)
                .map_err(err)?;
            let held = Identity::of_fd(&file).map_err(err)?;
            let mut file = file;
            let lock = loop {
                match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                    Ok(l) => break l,
                    Err((f, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR)) => {
                        if deadline.expired() {
                            return Err(Error::new(
                                code::TRY_AGAIN_LATER,
                                format!(
                                    "another run of the plugin holds the lock of {vm} (waited {} ms)",
                                    started.elapsed().as_millis()
                                ),
                            ));
                        }
                        std::thread::sleep(deadline.cap(wait));
                        wait = (wait * 2).min(Duration::from_millis(50));
                        file = f;
                    }
                    Err((_, e)) => return Err(err(std::io::Error::from(e))),
                }
            };
            // The file we locked must still be the one at the path.
            match dir.identity(vm.as_str()).map_err(err)? {
                Some(now) if now == held => {
                    log::debug!("locked {}", path.display());
                    return Ok(PodLock {
                        _lock: lock,
                        dir,
                        vm: vm.clone(),
                    });
                }
                _ => log::debug!("lock file {} replaced while waiting: again", path.display()),
            }
        }
    }

    /// Writes the port file of `pf` atomically (0600 in a 0700 directory).
    pub fn write_port(&self, pf: &PortFile) -> Result<()> {
        let p = &pf.port;
        let path = self.dir.join(p.vm_name.as_str()).join(p.vmi_uuid.as_str());
        let dir = self
            .vm_dir(&p.vm_name, true)?
            .ok_or_else(|| state_err("writing", &path, "no directory"))?;
        dir.write_atomic(p.vmi_uuid.as_str(), pf.to_json().as_bytes(), DURABLE)
            .map_err(|e| state_err("writing", &path, e))?;
        log::debug!("wrote port file {}", path.display());
        Ok(())
    }

    /// Every port file of the VM; unusable entries are reported, not fatal.
    ///
    /// Port files are the entries whose name is a UUID. One whose name only
    /// starts with a UUID is bad (the agent would load it). Stale temporary
    /// files are removed; other names are ignored. An absent directory has
    /// none.
    pub fn read_ports(&self, vm: &VmName) -> Ports {
        let mut out = Ports::default();
        let bad = |name: &str, reason: String| BadFile {
            vm: vm.clone(),
            name: name.to_string(),
            reason,
        };
        let dir = match self.vm_dir(vm, false) {
            Ok(Some(d)) => d,
            Ok(None) => return out,
            Err(e) => {
                out.bad.push(bad("", e.msg));
                return out;
            }
        };
        let entries = match dir.entries() {
            Ok(e) => e,
            Err(e) => {
                out.bad.push(bad("", format!("cannot list: {e}")));
                return out;
            }
        };
        for (name, kind) in entries {
            if is_stale_tmp(&name) {
                if !self.read_only {
                    log::info!("removing stale temporary file {name} of {vm}");
                    let _ = dir.unlink(&name);
                }
                continue;
            }
            let Some(uuid) = name.get(..Uuid::LEN).and_then(|p| Uuid::parse(p).ok()) else {
                continue;
            };
            if name.len() != Uuid::LEN {
                out.bad.push(bad(
                    &name,
                    "name starts with a UUID but has a suffix (the agent would load it)".into(),
                ));
                continue;
            }
            if kind == Kind::Dir {
                out.bad.push(bad(&name, "a directory".into()));
                continue;
            }
            // from_slice, as every parse in the plugin: one serde_json reader in
            // the binary, not two (about 5 KB, docs/performance.md).
            let parsed = dir.read(&name, MAX_FILE).and_then(|text| {
                let pf = PortFile::from_json(text.as_bytes())
                    .map_err(|e| format!("invalid port file: {e}"))?;
                pf.check(vm, &uuid)?;
                Ok(pf)
            });
            match parsed {
                Ok(pf) => out.good.push(pf),
                Err(reason) => out.bad.push(bad(&name, reason)),
            }
        }
        out
    }

    /// Removes the port file of `vmi` (absent is fine).
    pub fn remove_port(&self, vm: &VmName, vmi: &Uuid) -> Result<()> {
        self.remove_in_vm(vm, vmi.as_str())
    }

    /// Removes an entry [`Store::read_ports`] reported as bad (a file, a
    /// symlink or a FIFO; a directory is left alone).
    pub fn remove_bad(&self, bad: &BadFile) -> Result<()> {
        if bad.name.is_empty() {
            return Ok(());
        }
        self.remove_in_vm(&bad.vm, &bad.name)
    }

    fn remove_in_vm(&self, vm: &VmName, name: &str) -> Result<()> {
        let path = self.dir.join(vm.as_str()).join(name);
        let Some(dir) = self.vm_dir(vm, false)? else {
            return Ok(());
        };
        if dir
            .kind(name)
            .map_err(|e| state_err("removing", &path, e))?
            == Some(Kind::Dir)
        {
            return Ok(());
        }
        if dir
            .unlink(name)
            .map_err(|e| state_err("removing", &path, e))?
            && DURABLE
        {
            dir.sync().map_err(|e| state_err("syncing", &path, e))?;
        }
        Ok(())
    }

    /// Removes the VM directory when it is empty (stale temporary files are
    /// removed first; absent or not empty is fine).
    pub fn remove_vm_dir_if_empty(&self, vm: &VmName) -> Result<()> {
        let Some(config) = self.config(false)? else {
            return Ok(());
        };
        if let Ok(Some(dir)) = config.dir(vm.as_str()) {
            for (name, _) in dir.entries().unwrap_or_default() {
                if is_stale_tmp(&name) {
                    let _ = dir.unlink(&name);
                }
            }
        }
        let path = self.dir.join(vm.as_str());
        if config
            .rmdir(vm.as_str())
            .map_err(|e| state_err("removing", &path, e))?
        {
            log::debug!("removed {}", path.display());
        }
        Ok(())
    }

    /// True while the pod has a VM directory or a Multus cache.
    pub fn has_state(&self, vm: &VmName) -> bool {
        // A directory that cannot be read might hold state: say so.
        let holds = |d: Result<Option<DirFd>>| match d {
            Ok(Some(d)) => !matches!(d.kind(vm.as_str()), Ok(None)),
            Ok(None) => false,
            Err(_) => true,
        };
        holds(self.config(false)) || holds(self.sub(MULTUS_DIR, false))
    }

    /// The VM directories (for GC); an absent `config-dir` has none.
    pub fn vm_names(&self) -> Result<Vec<VmName>> {
        names(self.config(false)?, Kind::Dir, &self.dir)
    }

    /// The pods with a Multus cache.
    pub fn multus_cache_names(&self) -> Result<Vec<VmName>> {
        let path = self.state_root().join(MULTUS_DIR);
        names(self.sub(MULTUS_DIR, false)?, Kind::File, &path)
    }

    /// The pods with a lock file.
    pub fn lock_names(&self) -> Result<Vec<VmName>> {
        let path = self.state_root().join(LOCK_DIR);
        names(self.sub(LOCK_DIR, false)?, Kind::File, &path)
    }

    /// Writes the Multus cache of `vm` atomically (0600, dir 0700).
    pub fn write_multus_cache(&self, vm: &VmName, cache: &MultusCache) -> Result<()> {
        let path = self.state_root().join(MULTUS_DIR).join(vm.as_str());
        let dir = self
            .sub(MULTUS_DIR, true)?
            .ok_or_else(|| state_err("writing", &path, "no directory"))?;
        dir.write_atomic(vm.as_str(), cache.to_json().as_bytes(), DURABLE)
            .map_err(|e| state_err("writing", &path, e))
    }

    /// None when absent or unusable (an unusable cache is removed and
    /// logged: it is only a cache).
    pub fn read_multus_cache(&self, vm: &VmName) -> Option<MultusCache> {
        let dir = self.sub(MULTUS_DIR, false).ok()??;
        dir.kind(vm.as_str()).ok()??;
        let parsed = dir
            .read(vm.as_str(), MAX_FILE)
            .and_then(|s| MultusCache::from_json(s.as_bytes()));
        match parsed {
            Ok(c) => Some(c),
            Err(e) => {
                log::warn!("removing unusable Multus cache of {vm}: {e}");
                let _ = dir.unlink(vm.as_str());
                None
            }
        }
    }

    /// Removes the Multus cache of `vm` (absent is fine).
    pub fn remove_multus_cache(&self, vm: &VmName) -> Result<()> {
        let path = self.state_root().join(MULTUS_DIR).join(vm.as_str());
        match self.sub(MULTUS_DIR, false)? {
            Some(dir) => dir
                .unlink(vm.as_str())
                .map(|_| ())
                .map_err(|e| state_err("removing", &path, e)),
            None => Ok(()),
        }
    }

    /// STATUS: can state be written? A probe file is created and removed
    /// in `config-dir`, or, before the first pod created it, in the nearest
    /// existing parent; nothing else is created.
    pub fn probe_writable(&self) -> Result<()> {
        let mut at = self.dir.as_path();
        let dir = loop {
            match DirFd::open(at) {
                Ok(Some(d)) => break d,
                Ok(None) => match at.parent() {
                    Some(p) => at = p,
                    None => return Err(state_err("probing", &self.dir, "no directory")),
                },
                Err(e) => return Err(state_err("probing", at, e)),
            }
        };
        let name = format!(".status-{}", std::process::id());
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
        let probe = dir.open_file(&name, flags, 0o600);
        let _ = dir.unlink(&name);
        probe
            .map(|_| ())
            .map_err(|e| state_err("cannot write in", at, e))
    }
}

/// Valid VM names among the entries of kind `kind` of `dir`, sorted.
fn names(dir: Option<DirFd>, kind: Kind, path: &Path) -> Result<Vec<VmName>> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    Ok(dir
        .entries()
        .map_err(|e| state_err("listing", path, e))?
        .into_iter()
        .filter(|(_, k)| *k == kind)
        .filter_map(|(n, _)| VmName::parse(&n).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(nested: bool) -> PortFile {
        let vif_type = if nested {
            VifType::Macvlan
        } else {
            VifType::Veth
        };
        let pod = Uuid::parse("0b1c0000-0000-4000-8000-000000000001").unwrap();
        let ifname = IfName::parse("eth0").unwrap();
        PortFile {
            port: PortRequest {
                vm_uuid: pod.clone(),
                vm_name: VmName::parse("k8s__default__web-1").unwrap(),
                host_ifname: host_name(vif_type, &pod, &ifname),
                vn_uuid: Uuid::parse("9a2d0000-0000-4000-8000-000000000001").unwrap(),
                vmi_uuid: Uuid::parse("6f3e0000-0000-4000-8000-00000000000a").unwrap(),
                vm_id: ContainerId::parse("c0ffee").unwrap(),
                vm_ifname: ifname,
                vm_namespace: "/proc/1/ns/net".into(),
            },
            vif_type,
            pod_uid: nested.then_some(pod),
            network: "default".into(),
            index: 0,
            vlan_id: nested.then_some(100),
        }
    }

    /// What the `#[serde(flatten)]` shape wrote, byte for byte.
    const VETH_FILE: &str = r#"{
  "vm-uuid": "0b1c0000-0000-4000-8000-000000000001",
  "vm-name": "k8s__default__web-1",
  "host-ifname": "tap078f3d86fed1",
  "vn-uuid": "9a2d0000-0000-4000-8000-000000000001",
  "vmi-uuid": "6f3e0000-0000-4000-8000-00000000000a",
  "vm-id": "c0ffee",
  "vm-ifname": "eth0",
  "vm-namespace": "/proc/1/ns/net",
  "vif-type": "veth",
  "network": "default",
  "index": 0
}"#;
    const NESTED_FILE: &str = r#"{
  "vm-uuid": "0b1c0000-0000-4000-8000-000000000001",
  "vm-name": "k8s__default__web-1",
  "host-ifname": "vlan078f3d86fed",
  "vn-uuid": "9a2d0000-0000-4000-8000-000000000001",
  "vmi-uuid": "6f3e0000-0000-4000-8000-00000000000a",
  "vm-id": "c0ffee",
  "vm-ifname": "eth0",
  "vm-namespace": "/proc/1/ns/net",
  "vif-type": "macvlan",
  "pod-uid": "0b1c0000-0000-4000-8000-000000000001",
  "network": "default",
  "index": 0,
  "vlan-id": 100
}"#;

    #[test]
    fn port_files_keep_their_json() {
        for (nested, text) in [(false, VETH_FILE), (true, NESTED_FILE)] {
            let pf = sample(nested);
            assert_eq!(pf.to_json(), text);
            assert_eq!(PortFile::from_json(text.as_bytes()).unwrap(), pf);
        }
    }

    #[test]
    fn older_port_files_still_parse() {
        // Before pod-uid, network and index existed, with a key we do not
        // know, and with the "" an older version wrote for no pod UID.
        let bare = r#"{"vm-uuid":"0b1c0000-0000-4000-8000-000000000001",
            "vm-name":"k8s__default__web-1","host-ifname":"tap078f3d86fed1",
            "vn-uuid":"9a2d0000-0000-4000-8000-000000000001",
            "vmi-uuid":"6f3e0000-0000-4000-8000-00000000000a","vm-id":"c0ffee",
            "vm-ifname":"eth0","vm-namespace":"/proc/1/ns/net","vif-type":"veth",
            "tx-vlan-id":-1}"#;
        let mut want = sample(false);
        want.network = String::new();
        assert_eq!(PortFile::from_json(bare.as_bytes()).unwrap(), want);
        let empty_uid = VETH_FILE.replace("\"network\"", "\"pod-uid\": \"\",\n  \"network\"");
        assert_eq!(
            PortFile::from_json(empty_uid.as_bytes()).unwrap(),
            sample(false)
        );
        // A required key missing, or a bad value, is still an error.
        for bad in [
            VETH_FILE.replace("  \"vif-type\": \"veth\",\n", ""),
            VETH_FILE.replace("\"eth0\"", "\"../eth0\""),
            NESTED_FILE.replace("\"pod-uid\": \"0b1c", "\"pod-uid\": \"xb1c"),
            NESTED_FILE.replace("\"vlan-id\": 100", "\"vlan-id\": 65536"),
            VETH_FILE.replace("\"index\": 0", "\"index\": \"0\""),
            VETH_FILE.replace("\"index\": 0", "\"index\": -1"),
            VETH_FILE.replace("\"veth\"", "\"tap\""),
            VETH_FILE.replace("\"c0ffee\"", "7"),
            "[]".to_string(),
        ] {
            assert!(PortFile::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
