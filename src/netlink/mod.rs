//! Hand-written NETLINK_ROUTE client (raw messages through libc).
//!
//! CONTRACT (skeleton written by the lead; the netlink owner fills in the
//! bodies and may split this file into socket.rs / message.rs / link.rs /
//! addr.rs / route.rs / consts.rs / sysctl.rs, keeping these public names):

use std::fmt;
use std::net::IpAddr;
use std::os::fd::RawFd;

/// A failed kernel operation: what was done, the errno and the kernel's
/// extended-ack text when it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub op: String,
    pub errno: i32,
    pub ext_ack: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = std::io::Error::from_raw_os_error(self.errno);
        write!(f, "{}: {}", self.op, os)?;
        if let Some(m) = &self.ext_ack {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// A 6-byte Ethernet address; parses and prints `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl std::str::FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts.next().ok_or_else(|| format!("invalid MAC {s:?}"))?;
            if p.len() != 2 {
                return Err(format!("invalid MAC {s:?}"));
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| format!("invalid MAC {s:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("invalid MAC {s:?}"));
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// A link as RTM_NEWLINK describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// IFF_* flags (`flags & IFF_UP` tells whether it is up).
    pub flags: u32,
    pub mtu: u32,
    pub mac: Option<Mac>,
    /// IFLA_IFALIAS without the trailing NUL.
    pub alias: Option<String>,
    /// IFLA_INFO_KIND ("veth", "macvlan", "vlan", ...).
    pub kind: Option<String>,
    /// IFLA_LINK: the parent / peer ifindex (in the peer's namespace).
    pub parent_index: Option<u32>,
}

impl Link {
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }
}

/// Macvlan modes (if_link.h MACVLAN_MODE_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    Private = 1,
    Vepa = 2,
    Bridge = 4,
    Passthru = 8,
    Source = 16,
}

/// A veth pair: `name` in the socket's namespace, the peer born in
/// `peer_netns_fd` (or the socket's namespace when None) under `peer_name`.
#[derive(Debug, Clone)]
pub struct VethRequest<'a> {
    pub name: &'a str,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub peer_name: &'a str,
    pub peer_mtu: Option<u32>,
    pub peer_mac: Option<Mac>,
    pub peer_netns_fd: Option<RawFd>,
}

/// A macvlan on `parent_index` (socket's namespace), born in `netns_fd`.
#[derive(Debug, Clone)]
pub struct MacvlanRequest<'a> {
    pub name: &'a str,
    pub parent_index: u32,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub netns_fd: Option<RawFd>,
}

/// An 802.1Q VLAN link on `parent_index`.
#[derive(Debug, Clone)]
pub struct VlanRequest<'a> {
    pub name: &'a str,
    pub parent_index: u32,
    pub vlan_id: u16,
    pub mtu: Option<u32>,
}

/// An interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// A route in the main table. `dst` None is the default route of the
/// gateway's (or `family`'s) address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dst: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    pub oif: u32,
    pub onlink: bool,
}

/// A NETLINK_ROUTE socket bound in the namespace of the thread that opened
/// it; every request carries NLM_F_ACK and waits for it.
pub struct Socket {
    _private: (),
}

#[allow(unused_variables, clippy::missing_errors_doc)]
impl Socket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Socket> {
        todo!("netlink owner")
    }
    /// The link called `name`, None when there is none (ENODEV).
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        todo!()
    }
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        todo!()
    }
    /// Every link (a dump; retried when the kernel flags it interrupted).
    pub fn links(&mut self) -> Result<Vec<Link>> {
        todo!()
    }
    pub fn links_by_alias(&mut self, alias: &str) -> Result<Vec<Link>> {
        todo!()
    }
    pub fn create_veth(&mut self, req: &VethRequest) -> Result<()> {
        todo!()
    }
    pub fn create_macvlan(&mut self, req: &MacvlanRequest) -> Result<()> {
        todo!()
    }
    pub fn create_vlan(&mut self, req: &VlanRequest) -> Result<()> {
        todo!()
    }
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        todo!()
    }
    /// Deletes by name; ENODEV is returned as an error (callers decide).
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<()> {
        todo!()
    }
    pub fn set_link_up(&mut self, index: u32, up: bool) -> Result<()> {
        todo!()
    }
    pub fn set_link_name(&mut self, index: u32, name: &str) -> Result<()> {
        todo!()
    }
    pub fn set_link_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        todo!()
    }
    pub fn set_link_mac(&mut self, index: u32, mac: Mac) -> Result<()> {
        todo!()
    }
    pub fn set_link_alias(&mut self, index: u32, alias: &str) -> Result<()> {
        todo!()
    }
    /// Moves the link into `netns_fd`, renaming it there when `new_name` is set.
    pub fn set_link_netns(
        &mut self,
        index: u32,
        netns_fd: RawFd,
        new_name: Option<&str>,
    ) -> Result<()> {
        todo!()
    }
    pub fn add_address(&mut self, addr: &Address) -> Result<()> {
        todo!()
    }
    /// Addresses of `index` (all links when None), both families.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Address>> {
        todo!()
    }
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        todo!()
    }
    /// Routes of the main table, both families.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        todo!()
    }
}

/// Writes `/proc/sys/net/<ipv4|ipv6>/conf/<ifname>/<key>` in the calling
/// thread's network namespace. `ifname` and `key` are validated first.
pub fn set_interface_sysctl(ipv6: bool, ifname: &str, key: &str, value: &str) -> Result<()> {
    let _ = (ipv6, ifname, key, value);
    todo!()
}
