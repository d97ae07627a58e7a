//! Routes in the main table (RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE).
//!
//! The family comes from `dst`, else from `gateway`. Routes via a gateway
//! get scope UNIVERSE; IPv4 routes without one get scope LINK (what
//! `ip route` does; IPv6 ignores scope and iproute2 always sends UNIVERSE).
//! `onlink` sets RTNH_F_ONLINK: needed for a gateway outside every subnet
//! of the link, which the kernel otherwise refuses with ENETUNREACH
//! "Nexthop has invalid gateway"; on a down link it gives ENETDOWN
//! "Nexthop device is not up".

use super::addr::{family, ip_bytes, ip_from};
use super::consts::{RTMSG_LEN, RTNH_F_ONLINK};
use super::message::{attr_u32, attrs, read_u32, MsgBuilder};
use super::{Error, Result, Route, Socket};
use crate::ids::IpNet;

fn route_msg(ty: u16, flags: u16, r: &Route) -> Result<Vec<u8>> {
    let op = "encode route";
    let fam_ip = match (r.dst.map(|d| d.addr()), r.gateway) {
        (Some(d), Some(g)) if d.is_ipv4() != g.is_ipv4() => {
            return Err(Error::with_text(
                op,
                libc::EINVAL,
                "destination and gateway families differ",
            ))
        }
        (Some(d), _) => d,
        (None, Some(g)) => g,
        (None, None) => {
            return Err(Error::with_text(
                op,
                libc::EINVAL,
                "a default route needs a gateway to tell its address family",
            ))
        }
    };
    let dst_len = r.dst.map_or(0, |d| d.prefix());
    let scope = if r.gateway.is_none() && fam_ip.is_ipv4() {
        libc::RT_SCOPE_LINK
    } else {
        libc::RT_SCOPE_UNIVERSE
    };
    let mut hdr = [0u8; RTMSG_LEN];
    hdr[0] = family(&fam_ip);
    hdr[1] = dst_len;
    // [2] src_len, [3] tos: 0
    hdr[4] = libc::RT_TABLE_MAIN;
    hdr[5] = libc::RTPROT_BOOT; // what `ip route add` uses
    hdr[6] = scope;
    hdr[7] = libc::RTN_UNICAST;
    let rtm_flags = if r.onlink { RTNH_F_ONLINK } else { 0 };
    hdr[8..12].copy_from_slice(&rtm_flags.to_ne_bytes());

    let mut b = MsgBuilder::new(ty, flags);
    b.raw(&hdr);
    // The default route is expressed by dst_len 0 and no RTA_DST.
    if let Some(d) = r.dst {
        b.attr(libc::RTA_DST, &ip_bytes(&d.addr()));
    }
    if let Some(g) = r.gateway {
        b.attr(libc::RTA_GATEWAY, &ip_bytes(&g));
    }
    if r.oif != 0 {
        b.attr_u32(libc::RTA_OIF, r.oif);
    }
    Ok(b.finish())
}

/// RTM_NEWROUTE with CREATE|EXCL: an existing route gives EEXIST.
pub fn add_route_msg(r: &Route) -> Result<Vec<u8>> {
    let f = libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
    route_msg(libc::RTM_NEWROUTE, f as u16, r)
}

/// RTM_DELROUTE for the same route (a pod's routes go with its link:
/// only the on-link fallback's undo and tests need it).
pub(crate) fn delete_route_msg(r: &Route) -> Result<Vec<u8>> {
    route_msg(
        libc::RTM_DELROUTE,
        (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16,
        r,
    )
}

/// RTM_GETROUTE dump of both families.
pub fn dump_routes_msg() -> Vec<u8> {
    let mut b = MsgBuilder::new(
        libc::RTM_GETROUTE,
        (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
    );
    b.raw(&[0u8; RTMSG_LEN]);
    b.finish()
}

/// Parses an RTM_NEWROUTE payload; None for anything but a unicast route
/// of the main table (local, broadcast and multicast routes live elsewhere).
pub fn parse_route(payload: &[u8]) -> Option<Route> {
    let dst_len = *payload.get(1)?;
    let mut table = u32::from(*payload.get(4)?);
    let rtm_type = *payload.get(7)?;
    let flags = read_u32(payload, 8)?;
    let (mut dst, mut gateway, mut oif) = (None, None, 0);
    for (ty, p) in attrs(payload.get(RTMSG_LEN..)?) {
        match ty {
            libc::RTA_DST => dst = ip_from(p),
            libc::RTA_GATEWAY => gateway = ip_from(p),
            libc::RTA_OIF => oif = attr_u32(p).unwrap_or(0),
            // Tables above 255 are only in RTA_TABLE (rtm_table is then
            // RT_TABLE_COMPAT); the kernel always sends it.
            libc::RTA_TABLE => table = attr_u32(p).unwrap_or(table),
            _ => {}
        }
    }
    if table != u32::from(libc::RT_TABLE_MAIN) || rtm_type != libc::RTN_UNICAST {
        return None;
    }
    Some(Route {
        dst: if dst_len == 0 {
            None
        } else {
            Some(IpNet::new(dst?, dst_len)?)
        },
        gateway,
        oif,
        onlink: flags & RTNH_F_ONLINK != 0,
    })
}

/// What an IPv6 on-link route becomes on a kernel that refused it.
///
/// IPv6 honours RTNH_F_ONLINK only since Linux 4.16: older kernels ignore
/// the flag and refuse a gateway that no route of the link covers with
/// EHOSTUNREACH. They accept the same thing in two steps: a host route to
/// the gateway on the link, then the route without the flag. None when
/// `errno` is not that refusal or the route is not an IPv6 on-link one.
pub fn onlink_fallback(route: &Route, errno: i32) -> Option<(Route, Route)> {
    let gw = route.gateway.filter(|g| g.is_ipv6())?;
    if !route.onlink || route.oif == 0 || !matches!(errno, libc::EHOSTUNREACH | libc::ENETUNREACH) {
        return None;
    }
    let host = Route {
        dst: IpNet::new(gw, 128),
        gateway: None,
        oif: route.oif,
        onlink: false,
    };
    Some((
        host,
        Route {
            onlink: false,
            ..*route
        },
    ))
}

impl Socket {
    /// Adds a route to the main table (EEXIST when it exists). An IPv6
    /// on-link route that a kernel before 4.16 refuses is added the way
    /// those kernels accept ([`onlink_fallback`]).
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        self.add_route_via(route, |s, r| s.ack(&route_op("add", r), add_route_msg(r)?))
    }

    /// [`Socket::add_route`] with the request made by `add` (the seam the
    /// tests use to play an older kernel's answer).
    pub(crate) fn add_route_via(
        &mut self,
        route: &Route,
        mut add: impl FnMut(&mut Socket, &Route) -> Result<()>,
    ) -> Result<()> {
        let err = match add(self, route) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let Some((host, plain)) = onlink_fallback(route, err.errno) else {
            return Err(err);
        };
        log::info!("{err}: this kernel has no IPv6 on-link routes (before 4.16); adding a host route to the gateway first");
        match add(self, &host) {
            Ok(()) => {}
            Err(e) if e.errno == libc::EEXIST => {}
            Err(e) => return Err(e),
        }
        add(self, &plain).inspect_err(|_| {
            let _ = self.delete_route(&host);
        })
    }

    /// Deletes a route from the main table (ESRCH when missing): the
    /// on-link fallback's undo, and tests.
    pub(crate) fn delete_route(&mut self, route: &Route) -> Result<()> {
        self.ack(&route_op("delete", route), delete_route_msg(route)?)
    }

    /// Routes of the main table, both families.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let replies = self.dump("dump routes", dump_routes_msg)?;
        Ok(replies
            .iter()
            .filter(|(ty, _)| *ty == libc::RTM_NEWROUTE)
            .filter_map(|(_, p)| parse_route(p))
            .collect())
    }
}

fn route_op(verb: &str, r: &Route) -> String {
    let dst = r.dst.map_or("default".to_string(), |d| d.to_string());
    let via = r.gateway.map_or(String::new(), |g| format!(" via {g}"));
    let onlink = if r.onlink { " onlink" } else { "" };
    format!("{verb} route {dst}{via} dev #{}{onlink}", r.oif)
}

/// Golden bytes from iproute2 6.1 (`strace -e trace=sendmsg -e write=3`).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::message::{messages, stamped};

    /// `ip route add default via 10.1.2.1 dev vp0` (vp0 = 4).
    #[test]
    fn default_via_gateway() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x2c, 0x00, 0x00, 0x00, 0x18, 0x00, 0x05, 0x06, // len 44, RTM_NEWROUTE, REQUEST|ACK|EXCL|CREATE
            0xce, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x02, 0x00, 0x00, 0x00, 0xfe, 0x03, 0x00, 0x01, // rtmsg: AF_INET, dst_len 0, src 0, tos 0, MAIN, BOOT, UNIVERSE, UNICAST
            0x00, 0x00, 0x00, 0x00,                         //   rtm_flags 0
            0x08, 0x00, 0x05, 0x00, 0x0a, 0x01, 0x02, 0x01, // RTA_GATEWAY 10.1.2.1
            0x08, 0x00, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00, // RTA_OIF 4
        ];
        let r = Route {
            dst: None,
            gateway: Some("10.1.2.1".parse().unwrap()),
            oif: 4,
            onlink: false,
        };
        assert_eq!(stamped(add_route_msg(&r).unwrap(), 0x6b0a_21ce), golden);
    }

    /// `ip route add default via 169.254.1.1 dev vp0 onlink` (vp0 = 4).
    #[test]
    fn default_onlink() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x2c, 0x00, 0x00, 0x00, 0x18, 0x00, 0x05, 0x06, // len 44, RTM_NEWROUTE, REQUEST|ACK|EXCL|CREATE
            0xd8, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x02, 0x00, 0x00, 0x00, 0xfe, 0x03, 0x00, 0x01, // rtmsg: AF_INET, /0, MAIN, BOOT, UNIVERSE, UNICAST
            0x04, 0x00, 0x00, 0x00,                         //   rtm_flags RTNH_F_ONLINK
            0x08, 0x00, 0x05, 0x00, 0xa9, 0xfe, 0x01, 0x01, // RTA_GATEWAY 169.254.1.1
            0x08, 0x00, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00, // RTA_OIF 4
        ];
        let r = Route {
            dst: None,
            gateway: Some("169.254.1.1".parse().unwrap()),
            oif: 4,
            onlink: true,
        };
        assert_eq!(stamped(add_route_msg(&r).unwrap(), 0x6b0a_21d8), golden);
    }

    /// `ip -6 route add default via fd00::1 dev vp0` (vp0 = 4). iproute2
    /// sends an explicit RTA_DST `::` (len 20) for the IPv6 default; we
    /// deliberately omit it (dst_len 0 already means default, and that is
    /// what we do for IPv4 too), so our message is those 20 bytes shorter.
    #[test]
    fn ipv6_default() {
        #[rustfmt::skip]
        let iproute2: Vec<u8> = vec![
            0x4c, 0x00, 0x00, 0x00, 0x18, 0x00, 0x05, 0x06, // len 76, RTM_NEWROUTE, REQUEST|ACK|EXCL|CREATE
            0xce, 0x21, 0x0a, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x0a, 0x00, 0x00, 0x00, 0xfe, 0x03, 0x00, 0x01, // rtmsg: AF_INET6, /0, MAIN, BOOT, UNIVERSE, UNICAST
            0x00, 0x00, 0x00, 0x00,                         //   rtm_flags 0
            0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // RTA_DST :: (we omit this attribute)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00,
            0x14, 0x00, 0x05, 0x00, 0xfd, 0x00, 0x00, 0x00, // RTA_GATEWAY fd00::1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x01,
            0x08, 0x00, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00, // RTA_OIF 4
        ];
        let mut expected = iproute2.clone();
        expected.drain(28..48);
        expected[0] = 0x38; // len 56
        let r = Route {
            dst: None,
            gateway: Some("fd00::1".parse().unwrap()),
            oif: 4,
            onlink: false,
        };
        assert_eq!(stamped(add_route_msg(&r).unwrap(), 0x6b0a_21ce), expected);
    }

    #[test]
    fn ipv6_onlink_fallback_only_for_what_old_kernels_refuse() {
        let r = Route {
            dst: None,
            gateway: Some("fd00::1".parse().unwrap()),
            oif: 4,
            onlink: true,
        };
        let (host, plain) = onlink_fallback(&r, libc::EHOSTUNREACH).unwrap();
        assert_eq!(
            host,
            Route {
                dst: Some("fd00::1/128".parse().unwrap()),
                gateway: None,
                oif: 4,
                onlink: false
            }
        );
        assert_eq!(plain, Route { onlink: false, ..r });
        assert!(onlink_fallback(&r, libc::ENETUNREACH).is_some());
        // Other errors, IPv4 (on-link since forever), no flag, no device: as is.
        assert_eq!(onlink_fallback(&r, libc::EEXIST), None);
        let v4 = Route {
            gateway: Some("10.0.0.1".parse().unwrap()),
            ..r
        };
        assert_eq!(onlink_fallback(&v4, libc::EHOSTUNREACH), None);
        let plain_route = Route { onlink: false, ..r };
        assert_eq!(onlink_fallback(&plain_route, libc::EHOSTUNREACH), None);
        assert_eq!(
            onlink_fallback(&Route { oif: 0, ..r }, libc::EHOSTUNREACH),
            None
        );
    }

    #[test]
    fn parse_round_trip_and_filters() {
        let r = Route {
            dst: Some("10.0.0.0/8".parse().unwrap()),
            gateway: Some("10.1.2.1".parse().unwrap()),
            oif: 4,
            onlink: true,
        };
        let msg = add_route_msg(&r).unwrap();
        let m = messages(&msg).next().unwrap();
        assert_eq!(parse_route(m.payload), Some(r));
        // Same route in the local table (255) is filtered out.
        let mut local = m.payload.to_vec();
        local[4] = libc::RT_TABLE_LOCAL;
        assert_eq!(parse_route(&local), None);
        // Direct IPv4 routes get scope LINK; mismatched families are refused.
        let direct = Route {
            gateway: None,
            onlink: false,
            ..r
        };
        assert_eq!(add_route_msg(&direct).unwrap()[16 + 6], libc::RT_SCOPE_LINK);
        let mixed = Route {
            gateway: Some("fd00::1".parse().unwrap()),
            ..r
        };
        assert_eq!(add_route_msg(&mixed).unwrap_err().errno, libc::EINVAL);
        let nothing = Route {
            dst: None,
            gateway: None,
            oif: 1,
            onlink: false,
        };
        assert_eq!(add_route_msg(&nothing).unwrap_err().errno, libc::EINVAL);
        assert_eq!(parse_route(&[2, 0, 0]), None);
    }
}
