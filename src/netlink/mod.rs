//! Hand-written NETLINK_ROUTE client (raw messages through libc).
//!
//! Contract: one [`Socket`] per network namespace; every change carries
//! NLM_F_ACK and waits for it; creates use CREATE|EXCL; a kernel error
//! becomes [`Error`] with the errno and the extended-ack text, so callers
//! can match `e.errno == libc::ENODEV`. Layout: `consts` (what libc lacks),
//! `message` (pure encoding/decoding), `socket` (syscalls, ACKs, dumps),
//! `link`/`addr`/`route` (typed requests), `sysctl` (/proc/sys/net).

pub mod addr;
pub mod consts;
pub mod link;
pub mod message;
pub mod route;
pub mod socket;
pub mod sysctl;

pub use link::validate_ifname;
pub use socket::Socket;
pub use sysctl::set_interface_sysctl;

use std::fmt;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;

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

impl Error {
    /// An error for `op` with `errno` and no extended-ack text.
    pub fn new(op: &str, errno: i32) -> Error {
        Error {
            op: op.to_string(),
            errno,
            ext_ack: None,
        }
    }

    /// An error raised by us (validation, framing), worded like an ext-ack.
    pub fn with_text(op: &str, errno: i32, text: &str) -> Error {
        Error {
            op: op.to_string(),
            errno,
            ext_ack: Some(text.to_string()),
        }
    }
}

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
    /// Whether IFF_UP is set (administratively up).
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
    pub peer_netns_fd: Option<BorrowedFd<'a>>,
}

/// A macvlan on `parent_index` (socket's namespace), born in `netns_fd`.
#[derive(Debug, Clone)]
pub struct MacvlanRequest<'a> {
    pub name: &'a str,
    pub parent_index: u32,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub netns_fd: Option<BorrowedFd<'a>>,
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
