//! File operations relative to an open directory, none of which follows a
//! symlink or blocks on a FIFO: the state directories may hold entries the
//! plugin did not create, and root must never be redirected by one.
//!
//! Every directory is opened `O_DIRECTORY|O_NOFOLLOW`; every entry is
//! opened, created, renamed or removed with `*at()` calls relative to it,
//! `O_NOFOLLOW|O_NONBLOCK`, and checked with `fstat` on the opened fd.

use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

pub type IoResult<T> = std::io::Result<T>;

/// Prefix of temporary files: never a UUID prefix (the agent loads every
/// file whose name starts with one), and the pid tells a later run whether
/// the writer is gone.
pub const TMP_PREFIX: &str = ".tmp-";

/// What an entry of a directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A symlink, FIFO, socket or device.
    Other,
}

fn kind_of(st: &FileStat) -> Kind {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFDIR => Kind::Dir,
        _ => Kind::Other,
    }
}

fn io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from(e)
}

/// Which file something is: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    dev: libc::dev_t,
    ino: libc::ino_t,
}

impl Identity {
    fn of(st: &FileStat) -> Identity {
        Identity {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    /// The identity of an open file.
    pub fn of_fd(fd: impl AsFd) -> IoResult<Identity> {
        fstat(fd).map(|st| Identity::of(&st)).map_err(io)
    }
}

/// An open directory (`O_DIRECTORY|O_NOFOLLOW`).
#[derive(Debug)]
pub struct DirFd {
    fd: OwnedFd,
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// Entry-open flags shared by every open: no symlink, no blocking, no leak
/// into children.
const ENTRY_FLAGS: OFlag = OFlag::O_NOFOLLOW
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_CLOEXEC);

impl DirFd {
    /// Opens the directory at `path` (a path of the node's configuration:
    /// its parents are followed as the admin set them up, the last
    /// component is not). None when it does not exist.
    pub fn open(path: &Path) -> IoResult<Option<DirFd>> {
        match nix::fcntl::open(path, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Some(DirFd { fd })),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Opens `path`, first creating it and its missing parents with mode
    /// 0700.
    pub fn create(path: &Path) -> IoResult<DirFd> {
        if let Some(d) = DirFd::open(path)? {
            return Ok(d);
        }
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
        DirFd::open(path)?.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    /// The subdirectory `name`; None when absent. Anything else under that
    /// name (a symlink, a file) is an error.
    pub fn dir(&self, name: &str) -> IoResult<Option<DirFd>> {
        match openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Some(DirFd { fd })),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// The subdirectory `name`, created if needed, and made 0700 (on the
    /// opened directory itself, so a swapped-in symlink cannot redirect the
    /// chmod). A directory of another owner is refused.
    pub fn private_dir(&self, name: &str) -> IoResult<DirFd> {
        match mkdirat(&self.fd, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(io(e)),
        }
        let d = self
            .dir(name)?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        let st = d.stat()?;
        if st.st_uid != nix::unistd::geteuid().as_raw() {
            return Err(std::io::Error::other(format!(
                "{name} is owned by uid {}",
                st.st_uid
            )));
        }
        if st.st_mode & 0o7777 != 0o700 {
            fchmod(&d.fd, Mode::from_bits_truncate(0o700)).map_err(io)?;
        }
        Ok(d)
    }

    /// fstat of the directory itself.
    pub fn stat(&self) -> IoResult<FileStat> {
        fstat(&self.fd).map_err(io)
    }

    /// What `name` is, without following it; None when absent.
    pub fn kind(&self, name: &str) -> IoResult<Option<Kind>> {
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(kind_of(&st))),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Which file `name` is (device and inode), without following it.
    pub fn identity(&self, name: &str) -> IoResult<Option<Identity>> {
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Identity::of(&st))),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Opens the regular file `name` with `flags` (plus the no-follow,
    /// non-blocking flags); anything that is not a regular file is refused.
    pub fn open_file(&self, name: &str, flags: OFlag, mode: u32) -> IoResult<File> {
        let fd = openat(
            &self.fd,
            name,
            flags | ENTRY_FLAGS,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| match e {
            nix::errno::Errno::ELOOP => std::io::Error::other("a symlink"),
            e => io(e),
        })?;
        let f = File::from(fd);
        if !f.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        Ok(f)
    }

    /// Reads the regular file `name`, at most `max` bytes; its content as
    /// text or why not.
    pub fn read(&self, name: &str, max: u64) -> Result<String, String> {
        let f = self
            .open_file(name, OFlag::O_RDONLY, 0)
            .map_err(|e| e.to_string())?;
        let len = f.metadata().map_err(|e| e.to_string())?.len();
        if len > max {
            return Err(format!("too large ({len} bytes)"));
        }
        let mut s = String::new();
        f.take(max)
            .read_to_string(&mut s)
            .map_err(|e| e.to_string())?;
        Ok(s)
    }

    /// Writes `name` atomically with mode 0600: a temporary file, then a
    /// rename over `name`. With `durable`, the file and the directory are
    /// fsynced too (see docs/performance.md for when that is worth it).
    pub fn write_atomic(&self, name: &str, data: &[u8], durable: bool) -> IoResult<()> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let tmp = format!(
            "{TMP_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        // A leftover of a dead process that had our pid: ours to replace.
        let _ = self.unlink(&tmp);
        let write = || -> IoResult<()> {
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
            let mut f = self.open_file(&tmp, flags, 0o600)?;
            // The umask may have removed bits; the mode must be exact.
            fchmod(f.as_fd(), Mode::from_bits_truncate(0o600)).map_err(io)?;
            f.write_all(data)?;
            if durable {
                f.sync_all()?;
            }
            renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(io)
        };
        if let Err(e) = write() {
            let _ = self.unlink(&tmp);
            return Err(e);
        }
        if durable {
            self.sync()?;
        }
        Ok(())
    }

    /// Removes the file (or symlink, FIFO...) `name`; false when absent.
    pub fn unlink(&self, name: &str) -> IoResult<bool> {
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ENOENT) => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    /// Removes the empty directory `name`; false when absent or not empty.
    pub fn rmdir(&self, name: &str) -> IoResult<bool> {
        match unlinkat(&self.fd, name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(nix::errno::Errno::ENOENT)
            | Err(nix::errno::Errno::ENOTEMPTY)
            | Err(nix::errno::Errno::EEXIST) => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    /// fsync of the directory (a rename or unlink in it survives a crash).
    pub fn sync(&self) -> IoResult<()> {
        nix::unistd::fsync(&self.fd).map_err(io)
    }

    /// The entries (names that are UTF-8; `.` and `..` left out) and what
    /// each is, sorted by name.
    pub fn entries(&self) -> IoResult<Vec<(String, Kind)>> {
        let dup = openat(&self.fd, ".", DIR_FLAGS, Mode::empty()).map_err(io)?;
        let mut dir = nix::dir::Dir::from_fd(dup).map_err(io)?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(io)?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                Some(nix::dir::Type::File) => Kind::File,
                Some(nix::dir::Type::Directory) => Kind::Dir,
                Some(_) => Kind::Other,
                // DT_UNKNOWN on some file systems: ask.
                None => match self.kind(name)? {
                    Some(k) => k,
                    None => continue,
                },
            };
            out.push((name.to_string(), kind));
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// True for `.tmp-<pid>-<n>` whose writer no longer runs.
pub fn is_stale_tmp(name: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn nothing_follows_a_symlink_or_blocks_on_a_fifo() {
        let t = TempDir::new("dirfd-planted");
        let root = t.path();
        let d = DirFd::create(root).unwrap();
        let decoy = root.join("decoy");
        std::fs::create_dir(&decoy).unwrap();
        std::fs::write(decoy.join("f"), "keep").unwrap();
        std::os::unix::fs::symlink(&decoy, root.join("dir")).unwrap();
        std::os::unix::fs::symlink(decoy.join("f"), root.join("file")).unwrap();
        nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(d.dir("dir").is_err());
        assert!(d.private_dir("dir").is_err());
        assert!(d.read("file", 100).unwrap_err().contains("symlink"));
        assert!(d.read("fifo", 100).unwrap_err().contains("regular"));
        assert!(d.open_file("file", OFlag::O_WRONLY, 0).is_err());
        assert_eq!(d.kind("dir").unwrap(), Some(Kind::Other));
        // Removing the link removes the link, not its target.
        assert!(d.unlink("file").unwrap());
        assert_eq!(std::fs::read_to_string(decoy.join("f")).unwrap(), "keep");
        let mode = std::fs::metadata(&decoy).unwrap().permissions().mode() & 0o777;
        assert_ne!(mode, 0o700, "the decoy was not chmodded");
    }

    #[test]
    fn atomic_writes_are_0600_and_leave_no_temporary() {
        let t = TempDir::new("dirfd-write");
        let root = t.path();
        let d = DirFd::create(root).unwrap();
        let sub = d.private_dir("vm").unwrap();
        for durable in [true, false] {
            sub.write_atomic("x", b"data", durable).unwrap();
            assert_eq!(sub.read("x", 100).unwrap(), "data");
        }
        let names: Vec<String> = sub.entries().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["x"]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root.join("vm/x")), 0o600);
        assert_eq!(mode(&root.join("vm")), 0o700);
        assert!(!sub.rmdir("nothing").unwrap());
        assert!(sub.unlink("x").unwrap());
        assert!(!sub.unlink("x").unwrap());
        assert!(d.rmdir("vm").unwrap());
    }

    #[test]
    fn stale_temporaries_are_those_of_dead_pids() {
        assert!(!is_stale_tmp(&format!(".tmp-{}-0", std::process::id())));
        assert!(is_stale_tmp(".tmp-2147483646-3"));
        assert!(!is_stale_tmp(".tmp-x-3"));
        assert!(!is_stale_tmp("tmp-1-1"));
        assert!(!is_stale_tmp(".tmp-0-1"));
    }
}
