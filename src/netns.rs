//! Network namespaces: open and verify, run code inside, open sockets inside.
//!
//! Namespace switches are per thread (`setns(2)` on the calling thread), so
//! always read `/proc/thread-self/ns/net`, never `/proc/self/...` (that is
//! the main thread). Entering is a guard that switches back on every path;
//! if switching back fails the process aborts, because a thread left in a
//! pod's namespace would silently create host links inside the pod.

use crate::netlink::{self, Error};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// An open network namespace file (`/run/netns/x`, `/proc/<pid>/ns/net`,
/// `/proc/<pid>/fd/<n>`), verified to be a *network* namespace.
pub struct NetNs {
    file: File,
    path: String,
}

impl NetNs {
    /// Opens `path` and checks nsfs magic (fstatfs) and NS_GET_NSTYPE ==
    /// CLONE_NEWNET. ENOENT is reported with errno ENOENT so DEL can tell a
    /// vanished namespace from a bad one; a file that is not a network
    /// namespace gives EINVAL with a clear `ext_ack`-style message.
    pub fn open(path: &str) -> netlink::Result<NetNs> {
        let op = format!("open netns {path}");
        // std opens with O_CLOEXEC; read-only is all setns() needs.
        let file =
            File::open(path).map_err(|e| Error::new(&op, e.raw_os_error().unwrap_or(libc::EIO)))?;

        // A bind-mounted /run/netns/x that lost its namespace, or any other
        // file, is not on nsfs. Checking the magic first also keeps the
        // ioctl below from reaching an unrelated driver.
        let fs = nix::sys::statfs::fstatfs(&file)
            .map_err(|e| Error::new(&format!("fstatfs {path}"), e as i32))?;
        if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
            return Err(Error::with_text(
                &op,
                libc::EINVAL,
                &format!("{path} is not a namespace file (not on nsfs)"),
            ));
        }
        // SAFETY: NS_GET_NSTYPE takes no argument and only returns an int;
        // the fd is a valid open nsfs file owned by `file`.
        let nstype = unsafe { libc::ioctl(file.as_raw_fd(), netlink::consts::NS_GET_NSTYPE as _) };
        if nstype < 0 {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            return Err(Error::new(&format!("NS_GET_NSTYPE {path}"), errno));
        }
        if nstype != libc::CLONE_NEWNET {
            return Err(Error::with_text(
                &op,
                libc::EINVAL,
                &format!("{path} is a namespace but not a network namespace"),
            ));
        }
        Ok(NetNs {
            file,
            path: path.to_string(),
        })
    }

    /// The calling thread's namespace (`/proc/thread-self/ns/net`).
    pub fn current() -> netlink::Result<NetNs> {
        NetNs::open("/proc/thread-self/ns/net")
    }

    /// The path this namespace was opened from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The open namespace fd (valid as long as `self` lives), e.g. for
    /// IFLA_NET_NS_FD.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// True while `path` still names the namespace we hold open. The runtime
    /// may delete a pod's namespace while ADD runs; our open fd keeps it
    /// alive, so only the path tells.
    pub fn still_at_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
            _ => false,
        }
    }

    /// Runs `f` inside the namespace on the calling thread and switches back
    /// on every path (a guard; failing to switch back aborts the process).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> netlink::Result<T> {
        let origin = NetNs::current()?;
        setns(self.file.as_raw_fd(), &format!("enter netns {}", self.path))?;
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
        if let Err(e) = setns(self.0.file.as_raw_fd(), "return to the original netns") {
            log::error!("{e}: aborting rather than running in the wrong namespace");
            eprintln!("contrail-k8s-cni: {e}: aborting rather than running in the wrong namespace");
            std::process::abort();
        }
    }
}

fn setns(fd: RawFd, op: &str) -> netlink::Result<()> {
    // SAFETY: setns(2) on an fd we keep open for the duration of the call;
    // CLONE_NEWNET makes the kernel check it is a network namespace.
    let rc = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
    if rc < 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        return Err(Error::new(op, errno));
    }
    Ok(())
}
