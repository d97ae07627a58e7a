//! Links (RTM_NEWLINK / RTM_GETLINK / RTM_DELLINK): veth, macvlan, vlan,
//! lookups, dumps and the `ip link set` family.
//!
//! Encoders are pure functions returning request bytes; the attribute order
//! follows iproute2 6.1 (`MTU, ADDRESS, NET_NS_FD, LINK, IFNAME, LINKINFO`)
//! so the golden tests compare byte for byte. `IFLA_INFO_KIND` is sent
//! without a NUL, as iproute2 does; the kernel accepts both forms.

use super::consts::{
    IFINFOMSG_LEN, IFLA_MACVLAN_MODE, IFLA_VLAN_ID, RTEXT_FILTER_SKIP_STATS, VETH_INFO_PEER,
};
use super::message::{attr_string, attr_u32, attrs, ifinfomsg, read_u32, MsgBuilder};
use super::{Error, Link, Mac, MacvlanRequest, Result, Socket, VethRequest, VlanRequest};
use std::os::fd::{AsRawFd, BorrowedFd};

const REQ_ACK: u16 = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
const CREATE: u16 =
    (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
const DUMP: u16 = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
/// IFALIASZ - 1: the kernel's policy limit for IFLA_IFALIAS.
const MAX_ALIAS: usize = 255;

/// Checks an interface name the way the kernel's `dev_valid_name()` does:
/// 1..=15 bytes, not `.`/`..`, no `/`, `:`, whitespace or NUL. The kernel
/// answers a 16+ byte name with ERANGE "Attribute failed policy
/// validation"; we give the same errno with a clearer text, before sending.
pub fn validate_ifname(name: &str) -> Result<()> {
    let op = format!("validate interface name {name:?}");
    if name.len() >= libc::IFNAMSIZ {
        return Err(Error::with_text(
            &op,
            libc::ERANGE,
            "interface names are 1 to 15 bytes",
        ));
    }
    // The kernel's isspace() also counts \v, which is_ascii_whitespace does not.
    let bad = |b: u8| b == b'/' || b == b':' || b == 0 || b == 0x0b || b.is_ascii_whitespace();
    if name.is_empty() || name == "." || name == ".." || name.bytes().any(bad) {
        return Err(Error::with_text(
            &op,
            libc::EINVAL,
            "interface name is empty, '.', '..' or contains '/', ':', whitespace",
        ));
    }
    Ok(())
}

fn validate_alias(alias: &str) -> Result<()> {
    if alias.len() > MAX_ALIAS || alias.contains('\0') {
        return Err(Error::with_text(
            "validate interface alias",
            libc::ERANGE,
            "aliases are at most 255 bytes without NUL",
        ));
    }
    Ok(())
}

fn new_link(flags: u16, index: u32) -> MsgBuilder {
    let mut b = MsgBuilder::new(libc::RTM_NEWLINK, flags);
    b.raw(&ifinfomsg(index, 0, 0));
    b
}

/// Common attributes of a created link, in iproute2's order.
fn link_attrs(
    b: &mut MsgBuilder,
    mtu: Option<u32>,
    mac: Option<Mac>,
    netns_fd: Option<BorrowedFd<'_>>,
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
}

/// RTM_NEWLINK for a veth pair whose peer may be born in another namespace.
pub fn veth_msg(req: &VethRequest) -> Result<Vec<u8>> {
    validate_ifname(req.name)?;
    validate_ifname(req.peer_name)?;
    let mut b = new_link(CREATE, 0);
    link_attrs(&mut b, req.mtu, req.mac, None);
    b.attr_str(libc::IFLA_IFNAME, req.name);
    let info = b.begin_nest(libc::IFLA_LINKINFO);
    b.attr(libc::IFLA_INFO_KIND, b"veth");
    let data = b.begin_nest(libc::IFLA_INFO_DATA);
    // VETH_INFO_PEER carries a whole ifinfomsg before the peer's attributes.
    let peer = b.begin_nest(VETH_INFO_PEER);
    b.raw(&ifinfomsg(0, 0, 0));
    link_attrs(&mut b, req.peer_mtu, req.peer_mac, req.peer_netns_fd);
    b.attr_str(libc::IFLA_IFNAME, req.peer_name);
    b.end_nest(peer);
    b.end_nest(data);
    b.end_nest(info);
    Ok(b.finish())
}

/// RTM_NEWLINK for a macvlan on `parent_index`, optionally born in a netns.
pub fn macvlan_msg(req: &MacvlanRequest) -> Result<Vec<u8>> {
    validate_ifname(req.name)?;
    let mut b = new_link(CREATE, 0);
    link_attrs(&mut b, req.mtu, req.mac, req.netns_fd);
    b.attr_u32(libc::IFLA_LINK, req.parent_index);
    b.attr_str(libc::IFLA_IFNAME, req.name);
    let info = b.begin_nest(libc::IFLA_LINKINFO);
    b.attr(libc::IFLA_INFO_KIND, b"macvlan");
    let data = b.begin_nest(libc::IFLA_INFO_DATA);
    b.attr_u32(IFLA_MACVLAN_MODE, req.mode as u32);
    b.end_nest(data);
    b.end_nest(info);
    Ok(b.finish())
}

/// RTM_NEWLINK for an 802.1Q vlan (IFLA_VLAN_ID is a u16: len 6, padded).
pub fn vlan_msg(req: &VlanRequest) -> Result<Vec<u8>> {
    validate_ifname(req.name)?;
    if req.vlan_id == 0 || req.vlan_id > 4094 {
        return Err(Error::with_text(
            &format!("create vlan {}", req.name),
            libc::EINVAL,
            "vlan id must be 1..4094",
        ));
    }
    let mut b = new_link(CREATE, 0);
    link_attrs(&mut b, req.mtu, None, None);
    b.attr_u32(libc::IFLA_LINK, req.parent_index);
    b.attr_str(libc::IFLA_IFNAME, req.name);
    let info = b.begin_nest(libc::IFLA_LINKINFO);
    b.attr(libc::IFLA_INFO_KIND, b"vlan");
    let data = b.begin_nest(libc::IFLA_INFO_DATA);
    b.attr_u16(IFLA_VLAN_ID, req.vlan_id);
    b.end_nest(data);
    b.end_nest(info);
    Ok(b.finish())
}

/// RTM_GETLINK by index (index != 0) or by name, replies without stats.
pub fn get_link_msg(index: u32, name: Option<&str>) -> Vec<u8> {
    let mut b = MsgBuilder::new(libc::RTM_GETLINK, REQ_ACK);
    b.raw(&ifinfomsg(index, 0, 0));
    b.attr_u32(libc::IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    if let Some(name) = name {
        b.attr_str(libc::IFLA_IFNAME, name);
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
pub fn delete_link_msg(index: u32, name: Option<&str>) -> Vec<u8> {
    let mut b = MsgBuilder::new(libc::RTM_DELLINK, REQ_ACK);
    b.raw(&ifinfomsg(index, 0, 0));
    if let Some(name) = name {
        b.attr_str(libc::IFLA_IFNAME, name);
    }
    b.finish()
}

/// RTM_NEWLINK changing only IFF_UP (`ifi_change` masks the other flags).
pub fn set_up_msg(index: u32, up: bool) -> Vec<u8> {
    let iff_up = libc::IFF_UP as u32;
    let mut b = MsgBuilder::new(libc::RTM_NEWLINK, REQ_ACK);
    b.raw(&ifinfomsg(index, if up { iff_up } else { 0 }, iff_up));
    b.finish()
}

/// RTM_NEWLINK on `index` with attributes added by `f`.
fn set_msg(index: u32, f: impl FnOnce(&mut MsgBuilder)) -> Vec<u8> {
    let mut b = new_link(REQ_ACK, index);
    f(&mut b);
    b.finish()
}

/// RTM_NEWLINK setting IFLA_IFALIAS. Sent without a NUL, like iproute2:
/// the kernel's dev_set_alias() stores `nla_len` bytes and refuses
/// len >= IFALIASZ (256) with EINVAL, so a NUL would cost one byte of the
/// 255 allowed. Replies carry the alias with a NUL (nla_put_string).
pub fn set_alias_msg(index: u32, alias: &str) -> Result<Vec<u8>> {
    validate_alias(alias)?;
    Ok(set_msg(index, |b| {
        b.attr(libc::IFLA_IFALIAS, alias.as_bytes());
    }))
}

/// Moves `index` into `netns_fd`, renamed there when `new_name` is set:
/// the name is applied in the target namespace, so it cannot clash with a
/// name in ours.
pub fn set_netns_msg(
    index: u32,
    netns_fd: BorrowedFd<'_>,
    new_name: Option<&str>,
) -> Result<Vec<u8>> {
    if let Some(n) = new_name {
        validate_ifname(n)?;
    }
    Ok(set_msg(index, |b| {
        b.attr_u32(libc::IFLA_NET_NS_FD, netns_fd.as_raw_fd() as u32);
        if let Some(n) = new_name {
            b.attr_str(libc::IFLA_IFNAME, n);
        }
    }))
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
            libc::IFLA_LINKINFO => {
                link.kind = attrs(p)
                    .find(|(t, _)| *t == libc::IFLA_INFO_KIND)
                    .map(|(_, k)| attr_string(k));
            }
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
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        validate_ifname(name)?;
        self.get_link(&format!("get link {name}"), get_link_msg(0, Some(name)))
    }

    /// The link with ifindex `index`, None when there is none (ENODEV).
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
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
        self.ack(&op, veth_msg(req)?)
    }

    /// Creates a macvlan on `parent_index`, born in `netns_fd` when set.
    pub fn create_macvlan(&mut self, req: &MacvlanRequest) -> Result<()> {
        let op = format!("create macvlan {} on #{}", req.name, req.parent_index);
        self.ack(&op, macvlan_msg(req)?)
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

    /// Deletes link `index` (deleting either veth end removes both).
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        self.ack(
            &format!("delete link #{index}"),
            delete_link_msg(index, None),
        )
    }

    /// Deletes by name; ENODEV is returned as an error (callers decide).
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<()> {
        validate_ifname(name)?;
        self.ack(
            &format!("delete link {name}"),
            delete_link_msg(0, Some(name)),
        )
    }

    /// Sets IFF_UP on or off, leaving the other flags alone.
    pub fn set_link_up(&mut self, index: u32, up: bool) -> Result<()> {
        let op = format!("set link #{index} {}", if up { "up" } else { "down" });
        self.ack(&op, set_up_msg(index, up))
    }

    /// Renames a link. Kernels before 6.2 refuse to rename an up link
    /// (EBUSY); 6.18 allows it.
    pub fn set_link_name(&mut self, index: u32, name: &str) -> Result<()> {
        validate_ifname(name)?;
        let msg = set_msg(index, |b| {
            b.attr_str(libc::IFLA_IFNAME, name);
        });
        self.ack(&format!("rename link #{index} to {name}"), msg)
    }

    /// Sets the MTU.
    pub fn set_link_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        let msg = set_msg(index, |b| {
            b.attr_u32(libc::IFLA_MTU, mtu);
        });
        self.ack(&format!("set mtu {mtu} on link #{index}"), msg)
    }

    /// Sets the Ethernet address.
    pub fn set_link_mac(&mut self, index: u32, mac: Mac) -> Result<()> {
        let msg = set_msg(index, |b| {
            b.attr(libc::IFLA_ADDRESS, &mac.0);
        });
        self.ack(&format!("set mac {mac} on link #{index}"), msg)
    }

    /// Sets IFLA_IFALIAS (at most 255 bytes; empty clears it).
    pub fn set_link_alias(&mut self, index: u32, alias: &str) -> Result<()> {
        self.ack(
            &format!("set alias on link #{index}"),
            set_alias_msg(index, alias)?,
        )
    }

    /// Moves the link into `netns_fd`, renaming it there when `new_name` is set.
    pub fn set_link_netns(
        &mut self,
        index: u32,
        netns_fd: BorrowedFd<'_>,
        new_name: Option<&str>,
    ) -> Result<()> {
        let op = format!("move link #{index} to netns fd {}", netns_fd.as_raw_fd());
        self.ack(&op, set_netns_msg(index, netns_fd, new_name)?)
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

    /// iproute2 had the namespace open as fd 4; the encoders only copy the
    /// number into the request.
    fn fd4() -> BorrowedFd<'static> {
        // SAFETY: nothing reads, writes or closes through this fd: the
        // encoders under test only copy its number into a byte buffer, so
        // whether fd 4 is open in the test process does not matter.
        unsafe { BorrowedFd::borrow_raw(4) }
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
        let req = VethRequest {
            name: "vh1",
            mtu: Some(1400),
            mac: Some(Mac([2, 0, 0, 0, 0, 1])),
            peer_name: "eth0",
            peer_mtu: Some(1300),
            peer_mac: Some(Mac([2, 0, 0, 0, 0, 2])),
            peer_netns_fd: Some(fd4()),
        };
        assert_eq!(stamped(veth_msg(&req).unwrap(), 0x6b0a_21d8), golden);
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
        let req = VethRequest {
            name: "vp0",
            mtu: None,
            mac: None,
            peer_name: "vp1",
            peer_mtu: None,
            peer_mac: None,
            peer_netns_fd: None,
        };
        assert_eq!(stamped(veth_msg(&req).unwrap(), 0x6b0a_21ce), golden);
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
        let req = MacvlanRequest {
            name: "mv1",
            parent_index: 3,
            mode: MacvlanMode::Vepa,
            mtu: Some(1400),
            mac: Some(Mac([2, 0, 0, 0, 0, 3])),
            netns_fd: Some(fd4()),
        };
        assert_eq!(stamped(macvlan_msg(&req).unwrap(), 0x6b0a_21fd), golden);
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
        let req = MacvlanRequest {
            name: "mv0",
            parent_index: 4,
            mode: MacvlanMode::Bridge,
            mtu: None,
            mac: None,
            netns_fd: None,
        };
        assert_eq!(stamped(macvlan_msg(&req).unwrap(), 0x6b0a_21ce), golden);
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
        let req = VlanRequest {
            name: "vp0.100",
            parent_index: 4,
            vlan_id: 100,
            mtu: None,
        };
        assert_eq!(stamped(vlan_msg(&req).unwrap(), 0x6b0a_21ce), golden);
        let bad = VlanRequest {
            vlan_id: 4095,
            ..req
        };
        assert_eq!(vlan_msg(&bad).unwrap_err().errno, libc::EINVAL);
    }

    /// `ip link set dev vp0 up` (vp0 = 4): only IFF_UP changes.
    #[test]
    fn set_up() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x20, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, // len 32, RTM_NEWLINK, REQUEST|ACK
            0xd8, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, // ifinfomsg: index 4
            0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   flags IFF_UP, change IFF_UP
        ];
        assert_eq!(stamped(set_up_msg(4, true), 0x6b0a_21d8), golden);
    }

    /// `ip link set dev vp0 alias hello` (vp0 = 4): no NUL, like iproute2.
    #[test]
    fn set_alias() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x2c, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x00, // len 44, RTM_NEWLINK, REQUEST|ACK
            0xd8, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, // ifinfomsg: index 4
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   flags 0, change 0
            0x09, 0x00, 0x14, 0x00, 0x68, 0x65, 0x6c, 0x6c, // IFLA_IFALIAS "hello" (len 9, no NUL)
            0x6f, 0x00, 0x00, 0x00,                         //   + 3 bytes pad
        ];
        assert_eq!(
            stamped(set_alias_msg(4, "hello").unwrap(), 0x6b0a_21d8),
            golden
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
        assert_eq!(
            stamped(set_netns_msg(3, fd4(), Some("eth1")).unwrap(), 0x6b0a_21d8),
            golden
        );
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
        assert_eq!(stamped(get_link_msg(0, Some("vp0")), 0x6b0a_21fd), golden);
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
            }
        );
        assert!(link.is_up());
        // Truncated replies give None or a partial link, never a panic.
        for n in 0..m.payload.len() {
            let _ = parse_link(&m.payload[..n]);
        }
        assert_eq!(parse_link(&[0u8; 4]), None);
    }

    #[test]
    fn names_are_validated_before_sending() {
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("123456789012345").is_ok());
        let e = validate_ifname("1234567890123456").unwrap_err();
        assert_eq!(e.errno, libc::ERANGE);
        for bad in ["", ".", "..", "a/b", "a b", "a:b", "a\nb", "a\u{b}b"] {
            assert!(validate_ifname(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            validate_alias(&"x".repeat(256)).unwrap_err().errno,
            libc::ERANGE
        );
        assert!(validate_alias(&"x".repeat(255)).is_ok());
    }
}
