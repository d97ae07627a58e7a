//! Kernel constants the `libc` crate lacks (checked against libc 0.2 for
//! both gnu and musl), under the kernel's exact names so that grepping the
//! uapi headers finds them. Everything libc has is taken from `libc::`.

/// `sizeof(struct nlmsghdr)` (linux/netlink.h; private in libc).
pub const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct nlattr)` (linux/netlink.h).
pub const NLA_HDRLEN: usize = 4;
/// `sizeof(struct ifinfomsg)` (linux/rtnetlink.h).
pub const IFINFOMSG_LEN: usize = 16;
/// `sizeof(struct ifaddrmsg)` (linux/if_addr.h).
pub const IFADDRMSG_LEN: usize = 8;
/// `sizeof(struct rtmsg)` (linux/rtnetlink.h; the struct is absent from libc).
pub const RTMSG_LEN: usize = 12;

// linux/netlink.h: extended-ack TLVs after the echoed request in NLMSG_ERROR.
/// Extended-ack error text (a NUL-terminated string).
pub const NLMSGERR_ATTR_MSG: u16 = 1;
/// Offset of the offending attribute in the request (u32).
pub const NLMSGERR_ATTR_OFFS: u16 = 2;

// linux/veth.h
/// Nest in IFLA_INFO_DATA: ifinfomsg + attributes of the peer.
pub const VETH_INFO_PEER: u16 = 1;

// linux/if_link.h: macvlan
/// u32 MACVLAN_MODE_* in IFLA_INFO_DATA.
pub const IFLA_MACVLAN_MODE: u16 = 1;

// linux/if_link.h: 802.1Q vlan
/// u16 VLAN id in IFLA_INFO_DATA.
pub const IFLA_VLAN_ID: u16 = 1;

// linux/rtnetlink.h: rtm_flags / rtnh_flags
/// Gateway is on-link even outside every subnet of the device.
pub const RTNH_F_ONLINK: u32 = 4;

// linux/rtnetlink.h: IFLA_EXT_MASK values. SKIP_STATS keeps link replies
// small (no 64-bit counters), which is all we read.
/// Leave statistics out of RTM_NEWLINK replies.
pub const RTEXT_FILTER_SKIP_STATS: u32 = 8;

/// `ioctl(fd, NS_GET_NSTYPE)` = `_IO(0xb7, 0x3)` (linux/nsfs.h).
pub const NS_GET_NSTYPE: u64 = 0xb703;
