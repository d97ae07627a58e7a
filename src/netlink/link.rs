//! Links (RTM_NEWLINK / RTM_GETLINK / RTM_DELLINK): veth, macvlan, vlan,
//! lookups, dumps and one setlink ([`LinkUpdate`]) for `ip link set`.
//!
//! Encoders are pure functions returning request bytes; the attribute order
//! follows iproute2 6.1 (`MTU, ADDRESS, NET_NS_FD, GROUP, LINK, IFNAME,
//! LINKINFO` for a create, `MTU, ADDRESS, IFALIAS, GROUP` for a set) so the
//! golden tests compare byte for byte. `IFLA_INFO_KIND` is sent without a
//! NUL, as iproute2 does; the kernel accepts both forms.

use super::consts::{
    IFINFOMSG_LEN, IFLA_MACVLAN_MODE, IFLA_VLAN_ID, RTEXT_FILTER_SKIP_STATS, VETH_INFO_PEER,
};
use super::message::{attr_string, attr_u32, attrs, ifinfomsg, read_u16, read_u32, MsgBuilder};
use super::{Error, Link, Mac, MacvlanRequest, Result, Socket, VethRequest, VlanRequest};
use crate::ids::{IfName, ALIAS_MAX};
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd};

pub(crate) const REQ_ACK: u16 = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
const CREATE: u16 =
    (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
const DUMP: u16 = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
const IFF_UP: u32 = libc::IFF_UP as u32;

fn validate_alias(alias: &str) -> Result<()> {
    if alias.len() > ALIAS_MAX || alias.contains('\0') {
        return Err(Error::with_text(
            "validate interface alias",
            libc::ERANGE,
            "aliases are at most 255 bytes without NUL",
        ));
    }
    Ok(())
}

/// ifinfomsg flags/change for "up at creation" (IFF_UP in both) or
/// "leave the flags alone" (0, 0).
fn up_flags(up: bool) -> (u32, u32) {
    if up {
        (IFF_UP, IFF_UP)
    } else {
        (0, 0)
    }
}

fn create_link(up: bool) -> MsgBuilder {
    let (flags, change) = up_flags(up);
    let mut b = MsgBuilder::new(libc::RTM_NEWLINK, CREATE);
    b.raw(&ifinfomsg(0, flags, change));
    b
}

/// Common attributes of a created link, in iproute2's order.
fn link_attrs(
    b: &mut MsgBuilder,
    mtu: Option<u32>,
    mac: Option<Mac>,
    netns_fd: Option<BorrowedFd>,
    group: Option<u32>,
) {
    if let Some(mtu) = mtu {
        b.attr_u32(libc::IFLA_MTU, mtu);
    }
    if let Some(mac) = mac {
        b.attr(libc::IFLA_ADDRESS, &mac.0);
    }
    if let Some(fd) = netns_fd {
        b.attr_u32(libc::IFLA_NET_NS_FD, fd.as_raw_fd() as u32);
    }
    if let Some(group) = group {
        b.attr_u32(libc::IFLA_GROUP, group);
    }
}

/// RTM_NEWLINK for a veth pair whose peer may be born in another namespace.
/// `up` and `group` are the host end's; the peer's ifinfomsg stays zero.
pub fn veth_msg(req: &VethRequest) -> Vec<u8> {
    let mut b = create_link(req.up);
    link_attrs(&mut b, req.mtu, req.mac, None, req.group);
    b.attr_str(libc::IFLA_IFNAME, req.name.as_str());
    let info = b.begin_nest(libc::IFLA_LINKINFO);
    b.attr(libc::IFLA_INFO_KIND, b"veth");
    let data = b.begin_nest(libc::IFLA_INFO_DATA);
    // VETH_INFO_PEER carries a whole ifinfomsg before the peer's attributes.
    let peer = b.begin_nest(VETH_INFO_PEER);
    b.raw(&ifinfomsg(0, 0, 0));
    link_attrs(&mut b, req.peer_mtu, req.peer_mac, req.peer_netns_fd, None);
    b.attr_str(libc::IFLA_IFNAME, req.peer_name.as_str());
    b.end_nest(peer);
    b.end_nest(data);
    b.end_nest(info);
    b.finish()
}

/// RTM_NEWLINK for a macvlan on `parent_index`, optionally born in a netns.
pub fn macvlan_msg(req: &MacvlanRequest) -> Vec<u8> {
    let mut b = create_link(req.up);
    link_attrs(&mut b, req.mtu, req.mac, req.netns_fd, req.group);
    b.attr_u32(libc::IFLA_LINK, req.parent_index);
    b.attr_str(libc::IFLA_IFNAME, req.name.as_str());
    let info = b.begin_nest(libc::IFLA_LINKINFO);
    b.attr(libc::IFLA_INFO_KIND, b"macvlan");
    let data = b.begin_nest(libc::IFLA_INFO_DATA);
    b.attr_u32(IFLA_MACVLAN_MODE, req.mode as u32);
    b.end_nest(data);
    b.end_nest(info);
    b.finish()
}

/// RTM_NEWLINK for an 802.1Q vlan (IFLA_VLAN_ID is a u16: len 6, padded).
pub fn vlan_msg(req: &VlanRequest) -> Result<Vec<u8>> {
    if req.vlan_id == 0 || req.vlan_id > 4094 {
        return Err(Error::with_text(
            &format!("create vlan {}", req.name),
            libc::EINVAL,
            "vlan id must be 1..4094",
        ));
    }
    let mut b = create_link(req.up);
    link_attrs(&mut b, req.mtu, None, None, req.group);
    b.attr_u32(libc::IFLA_LINK, req.parent_index);
    b.attr_str(libc::IFLA_IFNAME, req.name.as_str());
    let info = b.begin_nest(libc::IFLA_LINKINFO);
    b.attr(libc::IFLA_INFO_KIND, b"vlan");
    let data = b.begin_nest(libc::IFLA_INFO_DATA);
    b.attr_u16(IFLA_VLAN_ID, req.vlan_id);
    b.end_nest(data);
    b.end_nest(info);
    Ok(b.finish())
}

/// Which existing link a request is about: by ifindex, or by name
/// (ifindex 0 + IFLA_IFNAME, which the kernel resolves itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRef<'a> {
    Index(u32),
    Name(&'a IfName),
}

impl From<u32> for LinkRef<'_> {
    fn from(index: u32) -> Self {
        LinkRef::Index(index)
    }
}

impl<'a> From<&'a IfName> for LinkRef<'a> {
    fn from(name: &'a IfName) -> Self {
        LinkRef::Name(name)
    }
}

impl fmt::Display for LinkRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkRef::Index(i) => write!(f, "link #{i}"),
            LinkRef::Name(n) => write!(f, "link {n}"),
        }
    }
}

/// What `ip link set` changes on an existing link; None leaves a property
/// alone. Sent as one RTM_NEWLINK whatever is set. The kernel applies the
/// attributes in its own order (MAC and MTU before the flags, so a link
/// goes up with its final address) and not atomically: on an error, the
/// properties applied before it stay applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkUpdate<'a> {
    /// IFF_UP on or off (`ifi_change` masks every other flag).
    pub up: Option<bool>,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    /// IFLA_IFALIAS, at most 255 bytes; empty clears it.
    pub alias: Option<&'a str>,
    pub group: Option<u32>,
}

/// RTM_NEWLINK applying `u` to `target`. The alias is sent without a NUL,
/// like iproute2: the kernel's dev_set_alias() stores `nla_len` bytes and
/// refuses len >= IFALIASZ (256), so a NUL would cost one of the 255 bytes
/// allowed. Replies carry the alias with a NUL (nla_put_string).
impl LinkUpdate<'_> {
    /// Only: set the link up.
    pub fn up() -> Self {
        LinkUpdate {
            up: Some(true),
            ..LinkUpdate::default()
        }
    }
}

pub fn update_link_msg(target: LinkRef, u: &LinkUpdate) -> Result<Vec<u8>> {
    if let Some(alias) = u.alias {
        validate_alias(alias)?;
    }
    let index = match target {
        LinkRef::Index(0) => {
            return Err(Error::with_text(
                "set link #0",
                libc::EINVAL,
                "ifindex 0 names no link",
            ))
        }
        LinkRef::Index(i) => i,
        LinkRef::Name(_) => 0,
    };
    let (flags, change) = match u.up {
        Some(true) => (IFF_UP, IFF_UP),
        Some(false) => (0, IFF_UP),
        None => (0, 0),
    };
    let mut b = MsgBuilder::new(libc::RTM_NEWLINK, REQ_ACK);
    b.raw(&ifinfomsg(index, flags, change));
    if let Some(mtu) = u.mtu {
        b.attr_u32(libc::IFLA_MTU, mtu);
    }
    if let Some(mac) = u.mac {
        b.attr(libc::IFLA_ADDRESS, &mac.0);
    }
    if let Some(alias) = u.alias {
        b.attr(libc::IFLA_IFALIAS, alias.as_bytes());
    }
    if let Some(group) = u.group {
        b.attr_u32(libc::IFLA_GROUP, group);
    }
    if let LinkRef::Name(name) = target {
        b.attr_str(libc::IFLA_IFNAME, name.as_str());
    }
    Ok(b.finish())
}

/// RTM_GETLINK by index (index != 0) or by name, replies without stats.
pub fn get_link_msg(index: u32, name: Option<&IfName>) -> Vec<u8> {
    let mut b = MsgBuilder::new(libc::RTM_GETLINK, REQ_ACK);
    b.raw(&ifinfomsg(index, 0, 0));
    b.attr_u32(libc::IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    if let Some(name) = name {
        b.attr_str(libc::IFLA_IFNAME, name.as_str());
    }
    b.finish()
}

/// RTM_GETLINK dump of every link.
pub fn dump_links_msg() -> Vec<u8> {
    let mut b = MsgBuilder::new(libc::RTM_GETLINK, DUMP);
    b.raw(&ifinfomsg(0, 0, 0));
    b.attr_u32(libc::IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    b.finish()
}

/// RTM_DELLINK by index, or by name when `index` is 0.
pub fn delete_link_msg(index: u32, name: Option<&IfName>) -> Vec<u8> {
    let mut b = MsgBuilder::new(libc::RTM_DELLINK, REQ_ACK);
    b.raw(&ifinfomsg(index, 0, 0));
    if let Some(name) = name {
        b.attr_str(libc::IFLA_IFNAME, name.as_str());
    }
    b.finish()
}

/// Test-only setlinks (rename, move to a namespace): the plugin never
/// renames or moves a link after creating it.
#[cfg(test)]
pub(crate) fn set_name_netns_msg(
    index: u32,
    netns_fd: Option<BorrowedFd>,
    name: Option<&IfName>,
) -> Vec<u8> {
    let mut b = MsgBuilder::new(libc::RTM_NEWLINK, REQ_ACK);
    b.raw(&ifinfomsg(index, 0, 0));
    if let Some(fd) = netns_fd {
        b.attr_u32(libc::IFLA_NET_NS_FD, fd.as_raw_fd() as u32);
    }
    if let Some(n) = name {
        b.attr_str(libc::IFLA_IFNAME, n.as_str());
    }
    b.finish()
}

/// The kind and, for a vlan, the VLAN id in an IFLA_LINKINFO nest.
fn parse_linkinfo(p: &[u8]) -> (Option<String>, Option<u16>) {
    let mut kind = None;
    let mut data = None;
    for (t, v) in attrs(p) {
        match t {
            libc::IFLA_INFO_KIND => kind = Some(attr_string(v)),
            libc::IFLA_INFO_DATA => data = Some(v),
            _ => {}
        }
    }
    let vlan_id = match (kind.as_deref(), data) {
        (Some("vlan"), Some(d)) => attrs(d)
            .find(|(t, v)| *t == IFLA_VLAN_ID && v.len() == 2)
            .and_then(|(_, v)| read_u16(v, 0)),
        _ => None,
    };
    (kind, vlan_id)
}

/// Parses an RTM_NEWLINK payload (ifinfomsg + attributes) into a [`Link`].
pub fn parse_link(payload: &[u8]) -> Option<Link> {
    let mut link = Link {
        index: read_u32(payload, 4)?,
        flags: read_u32(payload, 8)?,
        ..Link::default()
    };
    for (ty, p) in attrs(payload.get(IFINFOMSG_LEN..)?) {
        match ty {
            libc::IFLA_IFNAME => link.name = attr_string(p),
            libc::IFLA_MTU => link.mtu = attr_u32(p).unwrap_or(0),
            libc::IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(p).ok().map(Mac),
            libc::IFLA_IFALIAS => link.alias = Some(attr_string(p)),
            libc::IFLA_LINK => link.parent_index = attr_u32(p),
            libc::IFLA_GROUP => link.group = attr_u32(p).unwrap_or(0),
            libc::IFLA_LINKINFO => (link.kind, link.vlan_id) = parse_linkinfo(p),
            _ => {}
        }
    }
    Some(link)
}

fn links_from(replies: Vec<(u16, Vec<u8>)>) -> Vec<Link> {
    replies
        .iter()
        .filter(|(ty, _)| *ty == libc::RTM_NEWLINK)
        .filter_map(|(_, p)| parse_link(p))
        .collect()
}

impl Socket {
    /// The link called `name`, None when there is none (ENODEV).
    pub fn link_by_name(&mut self, name: &IfName) -> Result<Option<Link>> {
        self.get_link(&format!("get link {name}"), get_link_msg(0, Some(name)))
    }

    /// The link with ifindex `index`, None when there is none (ENODEV).
    #[cfg(test)]
    pub(crate) fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        if index == 0 {
            return Ok(None);
        }
        self.get_link(&format!("get link #{index}"), get_link_msg(index, None))
    }

    fn get_link(&mut self, op: &str, msg: Vec<u8>) -> Result<Option<Link>> {
        match self.request(op, msg) {
            Ok(replies) => Ok(links_from(replies).into_iter().next()),
            Err(e) if e.errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link (a dump; retried when the kernel flags it interrupted).
    pub fn links(&mut self) -> Result<Vec<Link>> {
        Ok(links_from(self.dump("dump links", dump_links_msg)?))
    }

    /// Links whose IFLA_IFALIAS equals `alias` (a dump filtered here).
    pub fn links_by_alias(&mut self, alias: &str) -> Result<Vec<Link>> {
        let mut links = self.links()?;
        links.retain(|l| l.alias.as_deref() == Some(alias));
        Ok(links)
    }

    /// Creates a veth pair in one request, the peer possibly born directly
    /// in another namespace (`peer_netns_fd`) under its final name.
    pub fn create_veth(&mut self, req: &VethRequest) -> Result<()> {
        let op = format!("create veth {} (peer {})", req.name, req.peer_name);
        self.ack(&op, veth_msg(req))
    }

    /// Creates a macvlan on `parent_index`, born in `netns_fd` when set.
    pub fn create_macvlan(&mut self, req: &MacvlanRequest) -> Result<()> {
        let op = format!("create macvlan {} on #{}", req.name, req.parent_index);
        self.ack(&op, macvlan_msg(req))
    }

    /// Creates an 802.1Q vlan. Kernels built without CONFIG_VLAN_8021Q answer
    /// EOPNOTSUPP "Unknown device type".
    pub fn create_vlan(&mut self, req: &VlanRequest) -> Result<()> {
        let op = format!(
            "create vlan {} id {} on #{}",
            req.name, req.vlan_id, req.parent_index
        );
        self.ack(&op, vlan_msg(req)?)
    }

    /// Applies `update` to `target` (an ifindex or an `&IfName`) in one
    /// request. A missing link is ENODEV.
    pub fn update_link<'a>(
        &mut self,
        target: impl Into<LinkRef<'a>>,
        update: &LinkUpdate,
    ) -> Result<()> {
        let target = target.into();
        self.ack(&format!("set {target}"), update_link_msg(target, update)?)
    }

    /// Deletes link `index` (deleting either veth end removes both).
    /// Several links: [`Socket::delete_links`] deletes them in one batch.
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        self.ack(
            &format!("delete link #{index}"),
            delete_link_msg(index, None),
        )
    }

    /// Deletes by name; ENODEV is returned as an error (callers decide).
    pub fn delete_link_by_name(&mut self, name: &IfName) -> Result<()> {
        self.ack(
            &format!("delete link {name}"),
            delete_link_msg(0, Some(name)),
        )
    }

    /// Renames a link. Kernels before 6.2 refuse to rename an up link
    /// (EBUSY); 6.18 allows it.
    #[cfg(test)]
    pub(crate) fn set_link_name(&mut self, index: u32, name: &IfName) -> Result<()> {
        let msg = set_name_netns_msg(index, None, Some(name));
        self.ack(&format!("rename link #{index} to {name}"), msg)
    }

    /// Moves the link into `netns_fd`, renaming it there when `new_name` is set.
    #[cfg(test)]
    pub(crate) fn set_link_netns(
        &mut self,
        index: u32,
        netns_fd: BorrowedFd,
        new_name: Option<&IfName>,
    ) -> Result<()> {
        let op = format!("move link #{index} to netns fd {}", netns_fd.as_raw_fd());
        self.ack(&op, set_name_netns_msg(index, Some(netns_fd), new_name))
    }
}

/// Golden bytes captured from iproute2 6.1 (Debian 12) with
/// `strace -f -e trace=sendmsg -e write=3 ip ...` inside `unshare -n`.
/// Our encoder leaves seq 0; the tests stamp iproute2's seq before comparing.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::message::stamped;
    use crate::netlink::MacvlanMode;
    use std::os::fd::AsFd;

    fn name(s: &str) -> IfName {
        IfName::parse(s).unwrap()
    }

    /// iproute2 opened the `gold` namespace as fd 4; we pass a real fd (a
    /// BorrowedFd must name an open file), so the golden bytes get its
    /// number at `offset` instead.
    fn with_fd(mut golden: Vec<u8>, offset: usize, fd: BorrowedFd) -> Vec<u8> {
        assert_eq!(&golden[offset..offset + 4], &[4, 0, 0, 0], "fd slot");
        golden[offset..offset + 4].copy_from_slice(&(fd.as_raw_fd() as u32).to_ne_bytes());
        golden
    }

    /// `update_link_msg(target, u)`, stamped with iproute2's `seq`, is
    /// `golden` byte for byte.
    fn assert_setlink(target: LinkRef, u: &LinkUpdate, seq: u32, golden: &[u8]) {
        let msg = update_link_msg(target, u).unwrap();
        assert_eq!(stamped(msg, seq), golden);
    }

    fn netns_file() -> std::fs::File {
        std::fs::File::open("/dev/null").unwrap()
    }

    /// The veth of the two golden captures below: `vh1` (MTU 1400, MAC
    /// ..:01) with its peer `eth0` (MTU 1300, MAC ..:02) in `netns`.
    fn gold_veth<'a>(
        vh1: &'a IfName,
        eth0: &'a IfName,
        netns: BorrowedFd<'a>,
        up: bool,
        group: Option<u32>,
    ) -> VethRequest<'a> {
        VethRequest {
            name: vh1,
            mtu: Some(1400),
            mac: Some(Mac([2, 0, 0, 0, 0, 1])),
            up,
            group,
            peer_name: eth0,
            peer_mtu: Some(1300),
            peer_mac: Some(Mac([2, 0, 0, 0, 0, 2])),
            peer_netns_fd: Some(netns),
        }
    }

    /// `ip link add vh1 mtu 1400 address 02:00:00:00:00:01 type veth peer
    /// name eth0 mtu 1300 address 02:00:00:00:00:02 netns gold`
    /// (iproute2 opened the netns as fd 4).
    #[test]
    fn veth_with_peer_in_netns() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x88, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, // len 136, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            0xd8, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg: family, pad, type, index 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   flags 0, change 0
            0x08, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // IFLA_MTU 1400
            0x0a, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // IFLA_ADDRESS (len 10)
            0x00, 0x01, 0x00, 0x00,                         //   02:00:00:00:00:01 + pad
            0x08, 0x00, 0x03, 0x00, 0x76, 0x68, 0x31, 0x00, // IFLA_IFNAME "vh1\0"
            0x4c, 0x00, 0x12, 0x00,                         // IFLA_LINKINFO (len 76)
            0x08, 0x00, 0x01, 0x00, 0x76, 0x65, 0x74, 0x68, //   IFLA_INFO_KIND "veth" (no NUL)
            0x40, 0x00, 0x02, 0x00,                         //   IFLA_INFO_DATA (len 64)
            0x3c, 0x00, 0x01, 0x00,                         //     VETH_INFO_PEER (len 60)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //       peer ifinfomsg (zero)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x04, 0x00, 0x14, 0x05, 0x00, 0x00, //       IFLA_MTU 1300
            0x0a, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, //       IFLA_ADDRESS 02:00:00:00:00:02
            0x00, 0x02, 0x00, 0x00,
            0x08, 0x00, 0x1c, 0x00, 0x04, 0x00, 0x00, 0x00, //       IFLA_NET_NS_FD 4
            0x09, 0x00, 0x03, 0x00, 0x65, 0x74, 0x68, 0x30, //       IFLA_IFNAME "eth0\0" (len 9)
            0x00, 0x00, 0x00, 0x00,                         //       + 3 bytes pad
        ];
        let ns = netns_file();
        let (vh1, eth0) = (name("vh1"), name("eth0"));
        let req = gold_veth(&vh1, &eth0, ns.as_fd(), false, None);
        let golden = with_fd(golden, 120, ns.as_fd());
        assert_eq!(stamped(veth_msg(&req), 0x6b0a_21d8), golden);
    }

    /// `ip link add vh1 mtu 1400 address 02:00:00:00:00:01 up group 7 type
    /// veth peer name eth0 mtu 1300 address 02:00:00:00:00:02 netns gold`:
    /// IFF_UP and IFLA_GROUP for the host end only; the peer's ifinfomsg
    /// stays zero (`ip -n gold link` shows eth0 down in group default).
    #[test]
    fn veth_up_in_group() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x90, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, // len 144, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            0x53, 0x90, 0x0c, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg: index 0
            0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   flags IFF_UP, change IFF_UP
            0x08, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // IFLA_MTU 1400
            0x0a, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // IFLA_ADDRESS 02:00:00:00:00:01
            0x00, 0x01, 0x00, 0x00,
            0x08, 0x00, 0x1b, 0x00, 0x07, 0x00, 0x00, 0x00, // IFLA_GROUP 7
            0x08, 0x00, 0x03, 0x00, 0x76, 0x68, 0x31, 0x00, // IFLA_IFNAME "vh1\0"
            0x4c, 0x00, 0x12, 0x00,                         // IFLA_LINKINFO (len 76)
            0x08, 0x00, 0x01, 0x00, 0x76, 0x65, 0x74, 0x68, //   IFLA_INFO_KIND "veth"
            0x40, 0x00, 0x02, 0x00,                         //   IFLA_INFO_DATA (len 64)
            0x3c, 0x00, 0x01, 0x00,                         //     VETH_INFO_PEER (len 60)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //       peer ifinfomsg (zero: born down)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x04, 0x00, 0x14, 0x05, 0x00, 0x00, //       IFLA_MTU 1300
            0x0a, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, //       IFLA_ADDRESS 02:00:00:00:00:02
            0x00, 0x02, 0x00, 0x00,
            0x08, 0x00, 0x1c, 0x00, 0x04, 0x00, 0x00, 0x00, //       IFLA_NET_NS_FD 4
            0x09, 0x00, 0x03, 0x00, 0x65, 0x74, 0x68, 0x30, //       IFLA_IFNAME "eth0\0"
            0x00, 0x00, 0x00, 0x00,
        ];
        let ns = netns_file();
        let (vh1, eth0) = (name("vh1"), name("eth0"));
        let req = gold_veth(&vh1, &eth0, ns.as_fd(), true, Some(7));
        let golden = with_fd(golden, 128, ns.as_fd());
        assert_eq!(stamped(veth_msg(&req), 0x6b0c_9053), golden);
    }

    /// `ip link add vp0 type veth peer name vp1` (both ends here).
    #[test]
    fn veth_minimal() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x54, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, // len 84, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            0xce, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg (zero)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x03, 0x00, 0x76, 0x70, 0x30, 0x00, // IFLA_IFNAME "vp0\0"
            0x2c, 0x00, 0x12, 0x00,                         // IFLA_LINKINFO (len 44)
            0x08, 0x00, 0x01, 0x00, 0x76, 0x65, 0x74, 0x68, //   IFLA_INFO_KIND "veth"
            0x20, 0x00, 0x02, 0x00,                         //   IFLA_INFO_DATA (len 32)
            0x1c, 0x00, 0x01, 0x00,                         //     VETH_INFO_PEER (len 28)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //       peer ifinfomsg (zero)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x03, 0x00, 0x76, 0x70, 0x31, 0x00, //       IFLA_IFNAME "vp1\0"
        ];
        let (vp0, vp1) = (name("vp0"), name("vp1"));
        let req = VethRequest {
            name: &vp0,
            mtu: None,
            mac: None,
            up: false,
            group: None,
            peer_name: &vp1,
            peer_mtu: None,
            peer_mac: None,
            peer_netns_fd: None,
        };
        assert_eq!(stamped(veth_msg(&req), 0x6b0a_21ce), golden);
    }

    /// `ip link add link vp0 name mv1 mtu 1400 address 02:00:00:00:00:03
    /// netns gold type macvlan mode vepa` (vp0 was ifindex 3, netns fd 4).
    #[test]
    fn macvlan_into_netns() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x68, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, // len 104, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            0xfd, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg (zero)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // IFLA_MTU 1400
            0x0a, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // IFLA_ADDRESS 02:00:00:00:00:03
            0x00, 0x03, 0x00, 0x00,
            0x08, 0x00, 0x1c, 0x00, 0x04, 0x00, 0x00, 0x00, // IFLA_NET_NS_FD 4
            0x08, 0x00, 0x05, 0x00, 0x03, 0x00, 0x00, 0x00, // IFLA_LINK 3 (parent)
            0x08, 0x00, 0x03, 0x00, 0x6d, 0x76, 0x31, 0x00, // IFLA_IFNAME "mv1\0"
            0x1c, 0x00, 0x12, 0x00,                         // IFLA_LINKINFO (len 28)
            0x0b, 0x00, 0x01, 0x00, 0x6d, 0x61, 0x63, 0x76, //   IFLA_INFO_KIND "macvlan" (len 11, no NUL)
            0x6c, 0x61, 0x6e, 0x00,                         //   + 1 byte pad
            0x0c, 0x00, 0x02, 0x00,                         //   IFLA_INFO_DATA (len 12)
            0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, //     IFLA_MACVLAN_MODE VEPA (2)
        ];
        let ns = netns_file();
        let mv1 = name("mv1");
        let req = MacvlanRequest {
            name: &mv1,
            parent_index: 3,
            mode: MacvlanMode::Vepa,
            mtu: Some(1400),
            mac: Some(Mac([2, 0, 0, 0, 0, 3])),
            up: false,
            group: None,
            netns_fd: Some(ns.as_fd()),
        };
        let golden = with_fd(golden, 56, ns.as_fd());
        assert_eq!(stamped(macvlan_msg(&req), 0x6b0a_21fd), golden);
    }

    /// `ip link add link vp0 name mv1 mtu 1400 address 02:00:00:00:00:03
    /// netns gold up group 9 type macvlan mode vepa` (vp0 = 3, netns fd 4):
    /// born up in group 9 inside `gold`.
    #[test]
    fn macvlan_up_in_group_into_netns() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x70, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, // len 112, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            0x53, 0x90, 0x0c, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg: index 0
            0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   flags IFF_UP, change IFF_UP
            0x08, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // IFLA_MTU 1400
            0x0a, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // IFLA_ADDRESS 02:00:00:00:00:03
            0x00, 0x03, 0x00, 0x00,
            0x08, 0x00, 0x1c, 0x00, 0x04, 0x00, 0x00, 0x00, // IFLA_NET_NS_FD 4
            0x08, 0x00, 0x1b, 0x00, 0x09, 0x00, 0x00, 0x00, // IFLA_GROUP 9
            0x08, 0x00, 0x05, 0x00, 0x03, 0x00, 0x00, 0x00, // IFLA_LINK 3
            0x08, 0x00, 0x03, 0x00, 0x6d, 0x76, 0x31, 0x00, // IFLA_IFNAME "mv1\0"
            0x1c, 0x00, 0x12, 0x00,                         // IFLA_LINKINFO (len 28)
            0x0b, 0x00, 0x01, 0x00, 0x6d, 0x61, 0x63, 0x76, //   IFLA_INFO_KIND "macvlan"
            0x6c, 0x61, 0x6e, 0x00,
            0x0c, 0x00, 0x02, 0x00,                         //   IFLA_INFO_DATA (len 12)
            0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, //     IFLA_MACVLAN_MODE VEPA (2)
        ];
        let ns = netns_file();
        let mv1 = name("mv1");
        let req = MacvlanRequest {
            name: &mv1,
            parent_index: 3,
            mode: MacvlanMode::Vepa,
            mtu: Some(1400),
            mac: Some(Mac([2, 0, 0, 0, 0, 3])),
            up: true,
            group: Some(9),
            netns_fd: Some(ns.as_fd()),
        };
        let golden = with_fd(golden, 56, ns.as_fd());
        assert_eq!(stamped(macvlan_msg(&req), 0x6b0c_9053), golden);
    }

    /// `ip link add link vp0 name mv0 type macvlan mode bridge` (vp0 = 4).
    #[test]
    fn macvlan_bridge_minimal() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x4c, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, // len 76, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            0xce, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg (zero)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x05, 0x00, 0x04, 0x00, 0x00, 0x00, // IFLA_LINK 4
            0x08, 0x00, 0x03, 0x00, 0x6d, 0x76, 0x30, 0x00, // IFLA_IFNAME "mv0\0"
            0x1c, 0x00, 0x12, 0x00,                         // IFLA_LINKINFO (len 28)
            0x0b, 0x00, 0x01, 0x00, 0x6d, 0x61, 0x63, 0x76, //   IFLA_INFO_KIND "macvlan"
            0x6c, 0x61, 0x6e, 0x00,
            0x0c, 0x00, 0x02, 0x00,                         //   IFLA_INFO_DATA (len 12)
            0x08, 0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, //     IFLA_MACVLAN_MODE BRIDGE (4)
        ];
        let mv0 = name("mv0");
        let req = MacvlanRequest {
            name: &mv0,
            parent_index: 4,
            mode: MacvlanMode::Bridge,
            mtu: None,
            mac: None,
            up: false,
            group: None,
            netns_fd: None,
        };
        assert_eq!(stamped(macvlan_msg(&req), 0x6b0a_21ce), golden);
    }

    /// `ip link add link vp0 name vp0.100 type vlan id 100` (vp0 = 4). The
    /// CI kernel answers EOPNOTSUPP "Unknown device type", but strace still
    /// shows the request.
    #[test]
    fn vlan() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x4c, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, // len 76, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            0xce, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg (zero)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x05, 0x00, 0x04, 0x00, 0x00, 0x00, // IFLA_LINK 4
            0x0c, 0x00, 0x03, 0x00, 0x76, 0x70, 0x30, 0x2e, // IFLA_IFNAME "vp0.100\0" (len 12)
            0x31, 0x30, 0x30, 0x00,
            0x18, 0x00, 0x12, 0x00,                         // IFLA_LINKINFO (len 24)
            0x08, 0x00, 0x01, 0x00, 0x76, 0x6c, 0x61, 0x6e, //   IFLA_INFO_KIND "vlan"
            0x0c, 0x00, 0x02, 0x00,                         //   IFLA_INFO_DATA (len 12)
            0x06, 0x00, 0x01, 0x00, 0x64, 0x00, 0x00, 0x00, //     IFLA_VLAN_ID u16 100 (len 6) + pad
        ];
        let n = name("vp0.100");
        let req = VlanRequest {
            name: &n,
            parent_index: 4,
            vlan_id: 100,
            mtu: None,
            up: false,
            group: None,
        };
        assert_eq!(stamped(vlan_msg(&req).unwrap(), 0x6b0a_21ce), golden);
        let bad = VlanRequest {
            vlan_id: 4095,
            ..req
        };
        assert_eq!(vlan_msg(&bad).unwrap_err().errno, libc::EINVAL);
    }

    /// `ip link add link vp0 name vp0.100 mtu 1400 up group 9 type vlan id
    /// 100` (vp0 = 3; refused by the CI kernel, captured all the same).
    #[test]
    fn vlan_up_in_group() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x5c, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, // len 92, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
            0x53, 0x90, 0x0c, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg: index 0
            0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   flags IFF_UP, change IFF_UP
            0x08, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // IFLA_MTU 1400
            0x08, 0x00, 0x1b, 0x00, 0x09, 0x00, 0x00, 0x00, // IFLA_GROUP 9
            0x08, 0x00, 0x05, 0x00, 0x03, 0x00, 0x00, 0x00, // IFLA_LINK 3
            0x0c, 0x00, 0x03, 0x00, 0x76, 0x70, 0x30, 0x2e, // IFLA_IFNAME "vp0.100\0"
            0x31, 0x30, 0x30, 0x00,
            0x18, 0x00, 0x12, 0x00,                         // IFLA_LINKINFO (len 24)
            0x08, 0x00, 0x01, 0x00, 0x76, 0x6c, 0x61, 0x6e, //   IFLA_INFO_KIND "vlan"
            0x0c, 0x00, 0x02, 0x00,                         //   IFLA_INFO_DATA (len 12)
            0x06, 0x00, 0x01, 0x00, 0x64, 0x00, 0x00, 0x00, //     IFLA_VLAN_ID 100 + pad
        ];
        let n = name("vp0.100");
        let req = VlanRequest {
            name: &n,
            parent_index: 3,
            vlan_id: 100,
            mtu: Some(1400),
            up: true,
            group: Some(9),
        };
        assert_eq!(stamped(vlan_msg(&req).unwrap(), 0x6b0c_9053), golden);
    }

    /// `ip link set dev vp0 up` (vp0 = 4): only IFF_UP changes.
    #[test]
    fn set_up() {
        #[rustfmt::skip]
        let golden = [
            0x20, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, // len 32, RTM_NEWLINK, REQUEST|ACK
            0xd8, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, // ifinfomsg: index 4
            0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   flags IFF_UP, change IFF_UP
        ];
        assert_setlink(
            LinkRef::Index(4),
            &LinkUpdate {
                up: Some(true),
                ..LinkUpdate::default()
            },
            0x6b0a_21d8,
            &golden,
        );
    }

    /// `ip link set dev vp0 down` (vp0 = 3): flags 0, change IFF_UP.
    #[test]
    fn set_down() {
        #[rustfmt::skip]
        let golden = [
            0x20, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, // len 32, RTM_NEWLINK, REQUEST|ACK
            0x49, 0x90, 0x0c, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, // ifinfomsg: index 3
            0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   flags 0, change IFF_UP
        ];
        assert_setlink(
            3.into(),
            &LinkUpdate {
                up: Some(false),
                ..LinkUpdate::default()
            },
            0x6b0c_9049,
            &golden,
        );
    }

    /// `ip link set dev vp0 group 12345` (vp0 = 3): what a batch delete
    /// sends for each link before deleting the group.
    #[test]
    fn set_group() {
        #[rustfmt::skip]
        let golden = [
            0x28, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, // len 40, RTM_NEWLINK, REQUEST|ACK
            0x49, 0x90, 0x0c, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, // ifinfomsg: index 3
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   flags 0, change 0
            0x08, 0x00, 0x1b, 0x00, 0x39, 0x30, 0x00, 0x00, // IFLA_GROUP 12345
        ];
        assert_setlink(
            3.into(),
            &LinkUpdate {
                group: Some(12345),
                ..LinkUpdate::default()
            },
            0x6b0c_9049,
            &golden,
        );
    }

    /// `ip link set dev vp0 up mtu 1400 address 02:00:00:00:00:05 alias
    /// hello group 7` (vp0 = 3): everything in one request. iproute2
    /// looks the name up first (the RTM_GETLINK before it) and sets by
    /// index; by name we send ifindex 0 and IFLA_IFNAME last instead.
    #[test]
    fn update_everything_at_once() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x48, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, // len 72, RTM_NEWLINK, REQUEST|ACK
            0x4a, 0x90, 0x0c, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, // ifinfomsg: index 3
            0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   flags IFF_UP, change IFF_UP
            0x08, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // IFLA_MTU 1400
            0x0a, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // IFLA_ADDRESS 02:00:00:00:00:05
            0x00, 0x05, 0x00, 0x00,
            0x09, 0x00, 0x14, 0x00, 0x68, 0x65, 0x6c, 0x6c, // IFLA_IFALIAS "hello" (no NUL)
            0x6f, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x1b, 0x00, 0x07, 0x00, 0x00, 0x00, // IFLA_GROUP 7
        ];
        let all = LinkUpdate {
            up: Some(true),
            mtu: Some(1400),
            mac: Some(Mac([2, 0, 0, 0, 0, 5])),
            alias: Some("hello"),
            group: Some(7),
        };
        let msg = update_link_msg(LinkRef::Index(3), &all).unwrap();
        assert_eq!(stamped(msg, 0x6b0c_904a), golden);

        // By name: index 0 and IFLA_IFNAME "vp0\0" (len 8) appended.
        let mut by_name = golden.clone();
        by_name[0] = 0x50;
        by_name[20..24].copy_from_slice(&[0; 4]);
        by_name.extend_from_slice(&[0x08, 0x00, 0x03, 0x00, b'v', b'p', b'0', 0x00]);
        let vp0 = name("vp0");
        let msg = update_link_msg(LinkRef::Name(&vp0), &all).unwrap();
        assert_eq!(stamped(msg, 0x6b0c_904a), by_name);

        assert_eq!(
            update_link_msg(LinkRef::Index(0), &all).unwrap_err().errno,
            libc::EINVAL
        );
    }

    /// `ip link set dev vp0 alias hello` (vp0 = 4): no NUL, like iproute2.
    #[test]
    fn set_alias() {
        #[rustfmt::skip]
        let golden = [
            0x2c, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, // len 44, RTM_NEWLINK, REQUEST|ACK
            0xd8, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, // ifinfomsg: index 4
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   flags 0, change 0
            0x09, 0x00, 0x14, 0x00, 0x68, 0x65, 0x6c, 0x6c, // IFLA_IFALIAS "hello" (len 9, no NUL)
            0x6f, 0x00, 0x00, 0x00,                         //   + 3 bytes pad
        ];
        assert_setlink(
            4.into(),
            &LinkUpdate {
                alias: Some("hello"),
                ..LinkUpdate::default()
            },
            0x6b0a_21d8,
            &golden,
        );
    }

    /// `ip link set dev vp1 netns gold name eth1` (vp1 = 3, netns fd 4).
    #[test]
    fn move_to_netns_and_rename() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x34, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, // len 52, RTM_NEWLINK, REQUEST|ACK
            0xd8, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, // ifinfomsg: index 3
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x1c, 0x00, 0x04, 0x00, 0x00, 0x00, // IFLA_NET_NS_FD 4
            0x09, 0x00, 0x03, 0x00, 0x65, 0x74, 0x68, 0x31, // IFLA_IFNAME "eth1\0" (len 9)
            0x00, 0x00, 0x00, 0x00,                         //   + pad
        ];
        let ns = netns_file();
        let eth1 = name("eth1");
        let golden = with_fd(golden, 36, ns.as_fd());
        let msg = set_name_netns_msg(3, Some(ns.as_fd()), Some(&eth1));
        assert_eq!(stamped(msg, 0x6b0a_21d8), golden);
    }

    /// `ip link del vp0` (vp0 = 4): iproute2 resolves the name first and
    /// deletes by index, as we do.
    #[test]
    fn delete_by_index() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x20, 0x00, 0x00, 0x00, 0x11, 0x00, 0x05, 0x00, // len 32, RTM_DELLINK, REQUEST|ACK
            0xd8, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, // ifinfomsg: index 4
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(stamped(delete_link_msg(4, None), 0x6b0a_21d8), golden);
    }

    /// `ip link show vp0`: iproute2 asks with IFLA_EXT_MASK VF|SKIP_STATS
    /// (9) and no ACK; we send SKIP_STATS only (8, we never read VF info)
    /// and NLM_F_ACK so every request ends the same way. Otherwise equal.
    #[test]
    fn get_by_name() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x30, 0x00, 0x00, 0x00, 0x12, 0x00, 0x05, 0x00, // len 48, RTM_GETLINK, REQUEST|ACK (iproute2: 0x01)
            0xfd, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg (zero)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x1d, 0x00, 0x08, 0x00, 0x00, 0x00, // IFLA_EXT_MASK SKIP_STATS (iproute2: 9)
            0x08, 0x00, 0x03, 0x00, 0x76, 0x70, 0x30, 0x00, // IFLA_IFNAME "vp0\0"
        ];
        let vp0 = name("vp0");
        assert_eq!(stamped(get_link_msg(0, Some(&vp0)), 0x6b0a_21fd), golden);
    }

    /// An RTM_NEWLINK reply like the kernel's for the host end of a veth
    /// whose peer is in another namespace: parse it into a Link.
    #[test]
    fn parse_reply_round_trip() {
        let mut b = MsgBuilder::new(libc::RTM_NEWLINK, 0);
        let up = (libc::IFF_UP | libc::IFF_BROADCAST | libc::IFF_MULTICAST) as u32;
        b.raw(&ifinfomsg(7, up, 0));
        b.attr_str(libc::IFLA_IFNAME, "veth1234");
        b.attr_u32(libc::IFLA_MTU, 1450);
        b.attr(libc::IFLA_ADDRESS, &[0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
        b.attr(libc::IFLA_BROADCAST, &[0xff; 6]);
        b.attr_u32(libc::IFLA_LINK, 2);
        b.attr_u32(libc::IFLA_GROUP, 77);
        b.attr_str(libc::IFLA_IFALIAS, "pod/uid");
        // The kernel sets NLA_F_NESTED on nothing here, but a parser must
        // mask it anyway: add it to prove we do.
        let info = b.begin_nest(libc::IFLA_LINKINFO | libc::NLA_F_NESTED as u16);
        b.attr_str(libc::IFLA_INFO_KIND, "veth");
        b.end_nest(info);
        b.attr_u32(libc::IFLA_LINK_NETNSID, 0);
        let msg = b.finish();
        let m = crate::netlink::message::messages(&msg).next().unwrap();
        let link = parse_link(m.payload).unwrap();
        assert_eq!(
            link,
            Link {
                index: 7,
                name: "veth1234".into(),
                flags: up,
                mtu: 1450,
                mac: Some("02:aa:bb:cc:dd:ee".parse().unwrap()),
                alias: Some("pod/uid".into()),
                kind: Some("veth".into()),
                parent_index: Some(2),
                group: 77,
                vlan_id: None,
            }
        );
        assert!(link.is_up());
        // Truncated replies give None or a partial link, never a panic.
        for n in 0..m.payload.len() {
            let _ = parse_link(&m.payload[..n]);
        }
        assert_eq!(parse_link(&[0u8; 4]), None);
    }

    /// A vlan link's reply carries its id in IFLA_INFO_DATA; the same
    /// attribute number means something else for other kinds (macvlan's
    /// mode), so it is read for vlans only.
    #[test]
    fn parse_vlan_id_for_vlans_only() {
        let reply = |kind: &[u8], data: &dyn Fn(&mut MsgBuilder)| {
            let mut b = MsgBuilder::new(libc::RTM_NEWLINK, 0);
            b.raw(&ifinfomsg(9, 0, 0));
            let info = b.begin_nest(libc::IFLA_LINKINFO);
            b.attr(libc::IFLA_INFO_KIND, kind);
            let d = b.begin_nest(libc::IFLA_INFO_DATA);
            data(&mut b);
            b.end_nest(d);
            b.end_nest(info);
            let msg = b.finish();
            parse_link(&msg[16..]).unwrap()
        };
        let v = reply(b"vlan", &|b| {
            b.attr_u16(IFLA_VLAN_ID, 100);
        });
        assert_eq!((v.kind.as_deref(), v.vlan_id), (Some("vlan"), Some(100)));
        let m = reply(b"macvlan", &|b| {
            b.attr_u32(IFLA_MACVLAN_MODE, 2);
        });
        assert_eq!((m.kind.as_deref(), m.vlan_id), (Some("macvlan"), None));
        // A malformed id (4 bytes) is ignored, not misread.
        let bad = reply(b"vlan", &|b| {
            b.attr_u32(IFLA_VLAN_ID, 100);
        });
        assert_eq!(bad.vlan_id, None);
    }

    #[test]
    fn aliases_are_validated_before_sending() {
        let long = "x".repeat(256);
        let u = LinkUpdate {
            alias: Some(&long),
            ..LinkUpdate::default()
        };
        assert_eq!(
            update_link_msg(LinkRef::Index(1), &u).unwrap_err().errno,
            libc::ERANGE
        );
        assert!(validate_alias(&"x".repeat(255)).is_ok());
        assert!(validate_alias("a\0b").is_err());
    }
}
