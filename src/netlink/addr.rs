//! Interface addresses (RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR dump).
//!
//! Like iproute2 we send the address as both IFA_LOCAL and IFA_ADDRESS
//! (they differ only on point-to-point links). IPv6 addresses carry
//! IFA_F_NODAD: a pod must not wait ~1 s for duplicate address detection
//! before its address becomes usable.

use super::consts::IFADDRMSG_LEN;
use super::message::{attrs, read_u32, MsgBuilder};
use super::{Address, Result, Socket};
use crate::ids::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family (AF_INET / AF_INET6) of `ip`.
pub(crate) fn family(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// Raw network-order bytes of `ip` (4 or 16).
pub(crate) fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// An address from a 4- or 16-byte attribute payload.
pub(crate) fn ip_from(payload: &[u8]) -> Option<IpAddr> {
    if let Ok(b) = <[u8; 4]>::try_from(payload) {
        return Some(IpAddr::V4(Ipv4Addr::from(b)));
    }
    <[u8; 16]>::try_from(payload)
        .ok()
        .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
}

fn addr_msg(ty: u16, flags: u16, a: &Address) -> Vec<u8> {
    let addr = a.net.addr();
    let ifa_flags = if addr.is_ipv6() {
        libc::IFA_F_NODAD as u8
    } else {
        0
    };
    let mut b = MsgBuilder::new(ty, flags);
    let mut hdr = [0u8; IFADDRMSG_LEN];
    hdr[0] = family(&addr);
    hdr[1] = a.net.prefix();
    hdr[2] = ifa_flags;
    hdr[3] = libc::RT_SCOPE_UNIVERSE;
    hdr[4..8].copy_from_slice(&a.index.to_ne_bytes());
    b.raw(&hdr);
    let bytes = ip_bytes(&addr);
    b.attr(libc::IFA_LOCAL, &bytes);
    b.attr(libc::IFA_ADDRESS, &bytes);
    b.finish()
}

/// RTM_NEWADDR with CREATE|EXCL: a duplicate gives EEXIST
/// ("ipv4: Address already assigned").
pub fn add_address_msg(a: &Address) -> Vec<u8> {
    let f = libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
    addr_msg(libc::RTM_NEWADDR, f as u16, a)
}

/// RTM_DELADDR for the same address (tests only: the plugin removes an
/// address by deleting its link).
#[cfg(test)]
pub(crate) fn delete_address_msg(a: &Address) -> Vec<u8> {
    addr_msg(
        libc::RTM_DELADDR,
        (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16,
        a,
    )
}

/// RTM_GETADDR dump of both families.
pub fn dump_addresses_msg() -> Vec<u8> {
    let mut b = MsgBuilder::new(
        libc::RTM_GETADDR,
        (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
    );
    b.raw(&[0u8; IFADDRMSG_LEN]);
    b.finish()
}

/// Parses an RTM_NEWADDR payload. IFA_LOCAL is the local address when
/// present (IFA_ADDRESS is then the peer's); IPv6 usually sends only
/// IFA_ADDRESS. None as well for a prefix longer than the family allows.
pub fn parse_address(payload: &[u8]) -> Option<Address> {
    let prefix_len = *payload.get(1)?;
    let index = read_u32(payload, 4)?;
    let (mut local, mut address) = (None, None);
    for (ty, p) in attrs(payload.get(IFADDRMSG_LEN..)?) {
        match ty {
            libc::IFA_LOCAL => local = ip_from(p),
            libc::IFA_ADDRESS => address = ip_from(p),
            _ => {}
        }
    }
    Some(Address {
        index,
        net: IpNet::new(local.or(address)?, prefix_len)?,
    })
}

impl Socket {
    /// Adds an address (IPv6 with IFA_F_NODAD). Duplicates give EEXIST.
    pub fn add_address(&mut self, addr: &Address) -> Result<()> {
        let op = format!("add address {} to link #{}", addr.net, addr.index);
        self.ack(&op, add_address_msg(addr))
    }

    /// Removes an address; a missing one gives EADDRNOTAVAIL.
    #[cfg(test)]
    pub(crate) fn delete_address(&mut self, addr: &Address) -> Result<()> {
        let op = format!("delete address {} from link #{}", addr.net, addr.index);
        self.ack(&op, delete_address_msg(addr))
    }

    /// Addresses of `index` (all links when None), both families.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Address>> {
        let replies = self.dump("dump addresses", dump_addresses_msg)?;
        Ok(replies
            .iter()
            .filter(|(ty, _)| *ty == libc::RTM_NEWADDR)
            .filter_map(|(_, p)| parse_address(p))
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }
}

/// Golden bytes from iproute2 6.1 (`strace -e trace=sendmsg -e write=3`).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::message::{messages, stamped};

    /// `ip addr add 10.1.2.3/24 dev vp0` (vp0 = 4).
    #[test]
    fn add_ipv4() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x28, 0x00, 0x00, 0x00, 0x14, 0x00, 0x05, 0x06, // len 40, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE
            0xce, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x02, 0x18, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, // ifaddrmsg: AF_INET, /24, flags 0, scope 0, index 4
            0x08, 0x00, 0x02, 0x00, 0x0a, 0x01, 0x02, 0x03, // IFA_LOCAL 10.1.2.3
            0x08, 0x00, 0x01, 0x00, 0x0a, 0x01, 0x02, 0x03, // IFA_ADDRESS 10.1.2.3
        ];
        let a = Address {
            index: 4,
            net: "10.1.2.3/24".parse().unwrap(),
        };
        assert_eq!(stamped(add_address_msg(&a), 0x6b0a_21ce), golden);
    }

    /// `ip addr add fd00::5/64 dev vp0 nodad` (vp0 = 4).
    #[test]
    fn add_ipv6_nodad() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x40, 0x00, 0x00, 0x00, 0x14, 0x00, 0x05, 0x06, // len 64, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE
            0xce, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x0a, 0x40, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, // ifaddrmsg: AF_INET6, /64, IFA_F_NODAD, scope 0, index 4
            0x14, 0x00, 0x02, 0x00, 0xfd, 0x00, 0x00, 0x00, // IFA_LOCAL fd00::5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x05,
            0x14, 0x00, 0x01, 0x00, 0xfd, 0x00, 0x00, 0x00, // IFA_ADDRESS fd00::5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x05,
        ];
        let a = Address {
            index: 4,
            net: "fd00::5/64".parse().unwrap(),
        };
        assert_eq!(stamped(add_address_msg(&a), 0x6b0a_21ce), golden);
    }

    #[test]
    fn parse_round_trip_and_bad_prefix() {
        let a = Address {
            index: 9,
            net: "fd00::7/64".parse().unwrap(),
        };
        let msg = add_address_msg(&a);
        let m = messages(&msg).next().unwrap();
        assert_eq!(parse_address(m.payload), Some(a));
        // A reply with an impossible prefix (/33 for IPv4) is skipped.
        let v4 = Address {
            index: 9,
            net: "10.0.0.1/32".parse().unwrap(),
        };
        let msg = add_address_msg(&v4);
        let mut payload = messages(&msg).next().unwrap().payload.to_vec();
        payload[1] = 33;
        assert_eq!(parse_address(&payload), None);
        assert_eq!(parse_address(&[2, 24, 0]), None);
    }
}
