//! Network namespaces: open and verify, run code inside, open sockets inside.
//!
//! CONTRACT (skeleton by the lead; the netlink owner implements it).

use crate::netlink;
use std::fs::File;
use std::os::fd::RawFd;

/// An open network namespace file (`/run/netns/x`, `/proc/<pid>/ns/net`,
/// `/proc/<pid>/fd/<n>`), verified to be a *network* namespace.
pub struct NetNs {
    _file: File,
    path: String,
}

#[allow(unused_variables)]
impl NetNs {
    /// Opens `path` and checks nsfs magic (fstatfs) and NS_GET_NSTYPE ==
    /// CLONE_NEWNET. ENOENT is reported with errno ENOENT so DEL can tell a
    /// vanished namespace from a bad one; a file that is not a network
    /// namespace gives EINVAL with a clear `ext_ack`-style message.
    pub fn open(path: &str) -> netlink::Result<NetNs> {
        todo!("netlink owner")
    }
    /// The calling thread's namespace (`/proc/thread-self/ns/net`).
    pub fn current() -> netlink::Result<NetNs> {
        todo!()
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn fd(&self) -> RawFd {
        todo!()
    }
    /// Runs `f` inside the namespace on the calling thread and switches back
    /// on every path (a guard; failing to switch back aborts the process).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> netlink::Result<T> {
        todo!()
    }
    /// A netlink socket bound inside this namespace.
    pub fn socket(&self) -> netlink::Result<netlink::Socket> {
        todo!()
    }
}
