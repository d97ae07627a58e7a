//! Network namespaces: open and verify, run code inside, open sockets inside.
//!
//! Namespace switches are per thread (`setns(2)` on the calling thread), so
//! the current namespace is read from `/proc/thread-self/ns/net` (or, before
//! Linux 3.17, `/proc/self/task/<tid>/ns/net`), never `/proc/self/ns/net`
//! (that is the main thread's). Entering is a guard that switches back on
//! every path; if switching back fails the process aborts, because a thread
//! left in a pod's namespace would silently create host links inside the pod.
//!
//! Opening `CNI_NETNS` never blocks and has no side effect on the file: it
//! is first opened with `O_PATH` and must be a regular file (a FIFO, device,
//! directory or socket is refused before anything reads it). Which kernel
//! features each step needs, and what happens on older kernels, is in
//! `docs/kernels.md`.

use crate::netlink::{self, Error};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::statfs::{FsType, NSFS_MAGIC, PROC_SUPER_MAGIC};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// An open network namespace file (`/run/netns/x`, `/proc/<pid>/ns/net`,
/// `/proc/<pid>/fd/<n>`), verified to be a *network* namespace other than
/// the calling thread's own.
pub struct NetNs {
    file: OwnedFd,
    path: String,
}

/// The system calls [`NetNs::open`] depends on whose answer changed across
/// kernel versions. [`Kernel`] makes them; the unit tests substitute an old
/// kernel's answers (no `NS_GET_NSTYPE`, namespace files on procfs, no
/// `/proc/thread-self`), since no CI kernel is that old.
trait Sys {
    /// `open(2)` with `O_CLOEXEC` added.
    fn open(&self, path: &str, flags: OFlag) -> nix::Result<OwnedFd>;
    /// `f_type` of `fstatfs(2)`.
    fn fs_type(&self, fd: BorrowedFd<'_>) -> nix::Result<FsType>;
    /// `ioctl(fd, NS_GET_NSTYPE)` (Linux 4.11).
    fn ns_type(&self, fd: BorrowedFd<'_>) -> nix::Result<i32>;
    /// `setns(fd, CLONE_NEWNET)` on the calling thread.
    fn setns(&self, fd: BorrowedFd<'_>) -> nix::Result<()>;
}

/// The running kernel.
struct Kernel;

impl Sys for Kernel {
    fn open(&self, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
        nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
    }

    fn fs_type(&self, fd: BorrowedFd<'_>) -> nix::Result<FsType> {
        nix::sys::statfs::fstatfs(fd).map(|s| s.filesystem_type())
    }

    fn ns_type(&self, fd: BorrowedFd<'_>) -> nix::Result<i32> {
        // SAFETY: NS_GET_NSTYPE takes no argument and only returns an int;
        // the fd is open for the duration of the call (borrowed).
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), netlink::consts::NS_GET_NSTYPE as _) };
        Errno::result(rc)
    }

    fn setns(&self, fd: BorrowedFd<'_>) -> nix::Result<()> {
        nix::sched::setns(fd, CloneFlags::CLONE_NEWNET)
    }
}

/// What a file type is called in an error message.
fn file_kind(mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFLNK => "a symbolic link",
        _ => "not a regular file",
    }
}

/// `/proc/thread-self/ns/net` (Linux 3.17), else the same file through
/// `/proc/self/task/<tid>` (older kernels have no `thread-self`).
fn open_current(sys: &impl Sys) -> netlink::Result<NetNs> {
    let first = "/proc/thread-self/ns/net";
    let path = match sys.open(first, OFlag::O_RDONLY) {
        Ok(file) => {
            return Ok(NetNs {
                file,
                path: first.to_string(),
            })
        }
        Err(Errno::ENOENT) => format!("/proc/self/task/{}/ns/net", nix::unistd::gettid()),
        Err(e) => return Err(Error::new(&format!("open {first}"), e as i32)),
    };
    let file = sys.open(&path, OFlag::O_RDONLY).map_err(|e| {
        Error::with_text(
            &format!("open {path}"),
            e as i32,
            "neither /proc/thread-self nor /proc/self/task/<tid> has this thread's namespace; is /proc mounted?",
        )
    })?;
    Ok(NetNs { file, path })
}

fn open_checked(sys: &impl Sys, path: &str) -> netlink::Result<NetNs> {
    let file = open_regular(sys, path)?;
    // A bind-mounted /run/netns/x that lost its namespace, or any other
    // regular file, is neither on nsfs (3.19+) nor on procfs (namespace
    // files before 3.19). Checking first keeps the ioctl below from
    // reaching an unrelated driver.
    let fs = sys
        .fs_type(file.as_fd())
        .map_err(|e| Error::new(&format!("fstatfs {path}"), e as i32))?;
    if fs != NSFS_MAGIC && fs != PROC_SUPER_MAGIC {
        return Err(invalid(
            path,
            format!("{path} is not a namespace file (neither on nsfs nor on procfs)"),
        ));
    }
    let own = open_current(sys)?;
    refuse_own(path, &file, &own, fs)?;
    check_net_type(sys, path, &file, own)?;
    Ok(NetNs {
        file,
        path: path.to_string(),
    })
}

/// EINVAL for `path`, worded like the kernel's extended ack.
fn invalid(path: &str, text: String) -> Error {
    Error::with_text(&format!("open netns {path}"), libc::EINVAL, &text)
}

/// Opens `path` without blocking or side effects and returns a file
/// `setns` accepts, when it is a regular file.
fn open_regular(sys: &impl Sys, path: &str) -> netlink::Result<OwnedFd> {
    // O_PATH opens nothing: no driver `open`, no FIFO wait, no read. It
    // follows symlinks, as it must for /proc/<pid>/ns/net (a magic link);
    // the path comes from the runtime's environment, which is trusted.
    let handle = sys
        .open(path, OFlag::O_PATH)
        .map_err(|e| Error::new(&format!("open netns {path}"), e as i32))?;
    let st = nix::sys::stat::fstat(handle.as_fd())
        .map_err(|e| Error::new(&format!("fstat {path}"), e as i32))?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return Err(invalid(
            path,
            format!("{path} is {}, not a namespace file", file_kind(st.st_mode)),
        ));
    }
    // setns() needs a real open file, and fstatfs() on an O_PATH fd needs
    // Linux 3.12: reopen the very inode just checked through our own fd
    // (no second lookup of `path`). A regular file opens without blocking.
    let reopen = format!("/proc/self/fd/{}", handle.as_raw_fd());
    sys.open(&reopen, OFlag::O_RDONLY | OFlag::O_NOCTTY)
        .map_err(|e| Error::new(&format!("reopen {path} through {reopen}"), e as i32))
}

/// The plugin's own namespace is the host's: configuring it as the pod
/// would hand the host's routing to the pod's interface.
fn refuse_own(path: &str, file: &OwnedFd, own: &NetNs, fs: FsType) -> netlink::Result<()> {
    let (held, mine) = (
        nix::sys::stat::fstat(file.as_fd()),
        nix::sys::stat::fstat(own.fd()),
    );
    if let (Ok(held), Ok(mine)) = (held, mine) {
        // On nsfs a namespace is (st_dev, st_ino). Before 3.19 the inode
        // number alone names it (procfs gives namespaces unique inode
        // numbers) while st_dev depends on which /proc instance was used.
        let same_dev = fs == PROC_SUPER_MAGIC || held.st_dev == mine.st_dev;
        if same_dev && held.st_ino == mine.st_ino {
            return Err(invalid(
                path,
                format!("{path} is the plugin's own network namespace (the host's), not a pod's"),
            ));
        }
    }
    Ok(())
}

/// NS_GET_NSTYPE must say CLONE_NEWNET; where the ioctl is missing, a
/// setns into the namespace and straight back checks the type instead.
fn check_net_type(sys: &impl Sys, path: &str, file: &OwnedFd, own: NetNs) -> netlink::Result<()> {
    match sys.ns_type(file.as_fd()) {
        Ok(t) if t == libc::CLONE_NEWNET => Ok(()),
        Ok(_) => Err(invalid(
            path,
            format!("{path} is a namespace but not a network namespace"),
        )),
        // Before Linux 4.11 (ENOTTY), and under emulators that do not know
        // the ioctl (ENOSYS; EINVAL from some): let setns() check the type,
        // entering and leaving at once. Only these kernels pay for it.
        Err(Errno::ENOTTY | Errno::ENOSYS | Errno::EINVAL) => {
            log::debug!("NS_GET_NSTYPE unavailable: checking {path} with setns");
            match sys.setns(file.as_fd()) {
                Ok(()) => {
                    drop(Restore(own));
                    Ok(())
                }
                Err(Errno::EINVAL) => Err(invalid(
                    path,
                    format!("{path} is not a network namespace (setns refused it)"),
                )),
                Err(e) => Err(Error::new(&format!("setns {path}"), e as i32)),
            }
        }
        Err(e) => Err(Error::new(&format!("NS_GET_NSTYPE {path}"), e as i32)),
    }
}

impl NetNs {
    /// Opens `path` without blocking and verifies it: a regular file on nsfs
    /// or (before Linux 3.19) procfs, a network namespace (NS_GET_NSTYPE,
    /// or setns where that ioctl is missing), and not the calling thread's
    /// own. ENOENT keeps errno ENOENT so callers can tell a vanished
    /// namespace from a bad one; anything else that is not a pod's network
    /// namespace gives EINVAL with a clear `ext_ack`-style text.
    pub fn open(path: &str) -> netlink::Result<NetNs> {
        open_checked(&Kernel, path)
    }

    /// The calling thread's namespace.
    pub fn current() -> netlink::Result<NetNs> {
        open_current(&Kernel)
    }

    /// The path this namespace was opened from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The open namespace fd, e.g. for IFLA_NET_NS_FD; the borrow keeps
    /// `self` (and so the fd) alive for as long as it is used.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// True while `path` still names the namespace we hold open. The runtime
    /// may delete a pod's namespace while ADD runs; our open fd keeps it
    /// alive, so only the path tells.
    pub fn still_at_path(&self) -> bool {
        match (
            nix::sys::stat::fstat(self.file.as_fd()),
            nix::sys::stat::stat(self.path.as_str()),
        ) {
            (Ok(held), Ok(now)) => held.st_dev == now.st_dev && held.st_ino == now.st_ino,
            _ => false,
        }
    }

    /// Runs `f` inside the namespace on the calling thread and switches back
    /// on every path (a guard; failing to switch back aborts the process).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> netlink::Result<T> {
        let origin = NetNs::current()?;
        nix::sched::setns(self.fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::new(&format!("enter netns {}", self.path), e as i32))?;
        let _back = Restore(origin);
        Ok(f())
    }

    /// A netlink socket bound inside this namespace: enter, open, leave.
    pub fn socket(&self) -> netlink::Result<netlink::Socket> {
        self.run(netlink::Socket::new)?
    }
}

/// Switches the thread back to the namespace it holds when dropped
/// (normal return, `?`, or a panic unwinding through `run`).
struct Restore(NetNs);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = nix::sched::setns(self.0.fd(), CloneFlags::CLONE_NEWNET) {
            let e = Error::new("return to the original netns", e as i32);
            log::error!("{e}: aborting rather than running in the wrong namespace");
            eprintln!("contrail-k8s-cni: {e}: aborting rather than running in the wrong namespace");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    //! Old kernels through the [`Sys`] seam. Tests that need a second
    //! network namespace need root: without it they say SKIPPED, and under
    //! `CI=true` they fail instead.
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::os::unix::fs::MetadataExt;

    /// The running kernel with some answers replaced by an older one's.
    #[derive(Default)]
    struct Old {
        /// NS_GET_NSTYPE fails with this errno.
        ns_type: Option<Errno>,
        /// fstatfs reports this filesystem.
        fs_type: Option<FsType>,
        /// `/proc/thread-self` does not exist (before 3.17).
        no_thread_self: bool,
        /// setns fails with this errno (otherwise the real setns runs).
        setns_err: Option<Errno>,
        setns_calls: Cell<u32>,
        opened: RefCell<Vec<String>>,
    }

    impl Sys for Old {
        fn open(&self, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
            self.opened.borrow_mut().push(path.to_string());
            if self.no_thread_self && path.starts_with("/proc/thread-self/") {
                return Err(Errno::ENOENT);
            }
            Kernel.open(path, flags)
        }
        fn fs_type(&self, fd: BorrowedFd<'_>) -> nix::Result<FsType> {
            self.fs_type.map_or_else(|| Kernel.fs_type(fd), Ok)
        }
        fn ns_type(&self, fd: BorrowedFd<'_>) -> nix::Result<i32> {
            self.ns_type.map_or_else(|| Kernel.ns_type(fd), Err)
        }
        fn setns(&self, fd: BorrowedFd<'_>) -> nix::Result<()> {
            self.setns_calls.set(self.setns_calls.get() + 1);
            self.setns_err.map_or_else(|| Kernel.setns(fd), Err)
        }
    }

    const OLD_NSTYPE: [Errno; 3] = [Errno::ENOTTY, Errno::ENOSYS, Errno::EINVAL];

    fn thread_ns_ino() -> u64 {
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
    }

    /// A network namespace other than this thread's, held by an fd
    /// (created on a short-lived thread); None, after saying so, when not
    /// root.
    fn other_netns() -> Option<(std::fs::File, String)> {
        if !nix::unistd::geteuid().is_root() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "this test needs root and CI=true: refusing to skip"
            );
            eprintln!("SKIPPED: needs root (creates a network namespace)");
            return None;
        }
        let file = std::thread::spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare");
            std::fs::File::open("/proc/thread-self/ns/net").expect("open")
        })
        .join()
        .unwrap();
        let path = format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd());
        Some((file, path))
    }

    #[test]
    fn refuses_fifos_directories_devices_and_sockets_without_blocking() {
        let dir = std::env::temp_dir().join(format!("ccni-netns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        // Should open() ever read the FIFO again, open its other end after
        // 10 s so the test fails instead of hanging.
        let other_end = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(10));
            let _ = nix::fcntl::open(
                &other_end,
                OFlag::O_WRONLY | OFlag::O_NONBLOCK,
                Mode::empty(),
            );
        });
        let sock = dir.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let cases = [
            (fifo.to_str().unwrap(), "a FIFO"),
            (dir.to_str().unwrap(), "a directory"),
            ("/dev/null", "a character device"),
            (sock.to_str().unwrap(), "a socket"),
        ];
        for (path, kind) in cases {
            let e = NetNs::open(path).err().unwrap();
            assert_eq!(e.errno, libc::EINVAL, "{e}");
            assert!(e.to_string().contains(kind), "{path}: {e}");
        }
        // A regular file is opened, then refused by its filesystem.
        let plain = dir.join("plain");
        std::fs::write(&plain, "x").unwrap();
        let e = NetNs::open(plain.to_str().unwrap()).err().unwrap();
        assert!(e.to_string().contains("not a namespace file"), "{e}");
        let e = NetNs::open(dir.join("missing").to_str().unwrap())
            .err()
            .unwrap();
        assert_eq!(e.errno, libc::ENOENT);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_the_callers_own_namespace() {
        for path in ["/proc/thread-self/ns/net", "/proc/self/ns/net"] {
            // The test thread has not moved: both name its namespace.
            let e = NetNs::open(path).err().unwrap();
            assert_eq!(e.errno, libc::EINVAL);
            assert!(e.to_string().contains("own network namespace"), "{e}");
        }
        // Also when the namespace files are on procfs (before 3.19).
        let old = Old {
            fs_type: Some(PROC_SUPER_MAGIC),
            ..Old::default()
        };
        let e = open_checked(&old, "/proc/thread-self/ns/net")
            .err()
            .unwrap();
        assert!(e.to_string().contains("own network namespace"), "{e}");
    }

    #[test]
    fn other_filesystems_are_refused_nsfs_and_procfs_accepted() {
        let tmpfs = FsType(libc::TMPFS_MAGIC as _);
        let old = Old {
            fs_type: Some(tmpfs),
            ..Old::default()
        };
        let e = open_checked(&old, "/proc/thread-self/ns/uts")
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a namespace file"), "{e}");
        let Some((_pod, path)) = other_netns() else {
            return;
        };
        for magic in [NSFS_MAGIC, PROC_SUPER_MAGIC] {
            // Before 3.19 namespace files are procfs files without the ioctl.
            let old = Old {
                fs_type: Some(magic),
                ns_type: (magic == PROC_SUPER_MAGIC).then_some(Errno::ENOTTY),
                ..Old::default()
            };
            assert!(open_checked(&old, &path).is_ok(), "{magic:?}");
        }
    }

    #[test]
    fn without_ns_get_nstype_setns_refuses_other_namespace_types() {
        // A uts namespace file: right filesystem, wrong type. setns(...,
        // CLONE_NEWNET) answers EINVAL before any privilege check.
        for errno in OLD_NSTYPE {
            let old = Old {
                ns_type: Some(errno),
                ..Old::default()
            };
            let e = open_checked(&old, "/proc/thread-self/ns/uts")
                .err()
                .unwrap();
            assert_eq!(e.errno, libc::EINVAL, "{errno}: {e}");
            assert!(e.to_string().contains("not a network namespace"), "{e}");
            assert_eq!(old.setns_calls.get(), 1, "{errno}");
        }
        // Any other ioctl failure is reported as it is, without setns.
        let old = Old {
            ns_type: Some(Errno::EPERM),
            ..Old::default()
        };
        let e = open_checked(&old, "/proc/thread-self/ns/uts")
            .err()
            .unwrap();
        assert_eq!(e.errno, libc::EPERM);
        assert!(e.op.contains("NS_GET_NSTYPE"), "{e}");
        assert_eq!(old.setns_calls.get(), 0);
    }

    #[test]
    fn without_ns_get_nstype_a_network_namespace_is_entered_and_left() {
        let Some((pod, path)) = other_netns() else {
            return;
        };
        let before = thread_ns_ino();
        for errno in OLD_NSTYPE {
            let old = Old {
                ns_type: Some(errno),
                ..Old::default()
            };
            let ns = open_checked(&old, &path).unwrap();
            assert_eq!(old.setns_calls.get(), 1, "{errno}");
            assert_eq!(thread_ns_ino(), before, "{errno}: back home");
            assert_eq!(
                nix::sys::stat::fstat(ns.fd()).unwrap().st_ino,
                pod.metadata().unwrap().ino()
            );
        }
        // A setns failure other than EINVAL is reported as it is.
        let old = Old {
            ns_type: Some(Errno::ENOTTY),
            setns_err: Some(Errno::EPERM),
            ..Old::default()
        };
        let e = open_checked(&old, &path).err().unwrap();
        assert_eq!(e.errno, libc::EPERM);
        assert_eq!(thread_ns_ino(), before);
        // A kernel that answers NS_GET_NSTYPE (4.11+, not under qemu-user)
        // never pays for the probe.
        let now = Old::default();
        let ns = open_checked(&now, &path).unwrap();
        let has_ioctl = Kernel.ns_type(ns.fd()).is_ok();
        assert_eq!(now.setns_calls.get(), u32::from(!has_ioctl));
    }

    #[test]
    fn without_thread_self_the_task_directory_is_used() {
        let old = Old {
            no_thread_self: true,
            ..Old::default()
        };
        let cur = open_current(&old).unwrap();
        let tid = nix::unistd::gettid();
        assert_eq!(cur.path(), format!("/proc/self/task/{tid}/ns/net"));
        assert_eq!(
            nix::sys::stat::fstat(cur.fd()).unwrap().st_ino,
            thread_ns_ino()
        );
        // The own-namespace check uses it too.
        let e = open_checked(&old, &format!("/proc/self/task/{tid}/ns/net"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("own network namespace"), "{e}");
        // The real kernel has thread-self.
        assert_eq!(NetNs::current().unwrap().path(), "/proc/thread-self/ns/net");
    }
}
