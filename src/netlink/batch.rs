//! Deleting several links in one kernel batch.
//!
//! The kernel pays a synchronisation period (RCU grace periods, about
//! 20 ms) for every RTM_DELLINK that names one link, but only one for all
//! the links a single request removes. The one request that removes many
//! links is "delete every link of group G" (RTM_DELLINK with ifindex 0 and
//! IFLA_GROUP, `ip link del group G`). So [`Socket::delete_links`] moves the
//! links into a fresh random group, checks with a dump that the group holds
//! exactly them, and deletes the group. Whenever anything looks wrong (a
//! link that cannot be moved, a group another program uses, a kernel that
//! refuses the group delete), it deletes the links one by one instead:
//! slower, never wider.

use super::link::{LinkRef, LinkUpdate, REQ_ACK};
use super::message::{ifinfomsg, MsgBuilder};
use super::{Result, Socket};

/// What [`Socket::delete_links`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deleted {
    /// Links removed by our requests.
    pub deleted: usize,
    /// Links that were already gone (ENODEV): not an error.
    pub gone: usize,
    /// True when one group delete removed them all.
    pub batched: bool,
}

/// Groups below this are left to people and other programs (iproute2
/// names only 0, "default"; hand-made groups are small numbers).
const MIN_GROUP: u32 = 1 << 16;

/// RTM_DELLINK of every link in `group`: ifindex 0 + IFLA_GROUP.
pub fn delete_group_msg(group: u32) -> Vec<u8> {
    let mut b = MsgBuilder::new(libc::RTM_DELLINK, REQ_ACK);
    b.raw(&ifinfomsg(0, 0, 0));
    b.attr_u32(libc::IFLA_GROUP, group);
    b.finish()
}

/// 32 random bits from getrandom(2); if that fails (a kernel before 3.17,
/// a seccomp filter), a mix of the time, the pid and a stack address,
/// which only has to differ from groups other programs picked.
fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    // SAFETY: getrandom(2) writes at most buf.len() bytes into `buf`,
    // which is valid for writes of that many bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), libc::GRND_NONBLOCK) };
    if n == buf.len() as isize {
        return u32::from_ne_bytes(buf);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let stack = &buf as *const _ as u64;
    let mut h = nanos ^ (u64::from(std::process::id()) << 32) ^ stack;
    // splitmix64's finaliser spreads every input bit over the result.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (h ^ (h >> 31)) as u32
}

/// A group number for one batch: at least [`MIN_GROUP`], never u32::MAX.
fn fresh_group(r: u32) -> u32 {
    MIN_GROUP + r % (u32::MAX - MIN_GROUP)
}

impl Socket {
    /// Deletes the links with these ifindexes (in this socket's namespace),
    /// with one kernel synchronisation for all of them when there are two
    /// or more. Links already gone are counted, not errors. The caller
    /// must have checked that every index is a link it owns: the batch
    /// touches exactly these links and nothing else (a foreign link found
    /// in the group makes it fall back to deleting ours one by one).
    ///
    /// Cost: one setlink per link and one link dump (to verify the group)
    /// on top of the single delete; one link is deleted directly.
    pub fn delete_links(&mut self, links: &[u32]) -> Result<Deleted> {
        self.delete_links_in_group(links, fresh_group(random_u32()))
    }

    /// [`Socket::delete_links`] with the group chosen by the caller (tests
    /// pick one a foreign link already uses).
    pub(super) fn delete_links_in_group(&mut self, links: &[u32], group: u32) -> Result<Deleted> {
        let mut want: Vec<u32> = links.iter().copied().filter(|&i| i != 0).collect();
        want.sort_unstable();
        want.dedup();
        if want.len() < 2 {
            return self.delete_each(&want, 0);
        }
        let mark = LinkUpdate {
            group: Some(group),
            ..LinkUpdate::default()
        };
        let mut moved = Vec::with_capacity(want.len());
        let mut gone = 0;
        for &index in &want {
            match self.update_link(LinkRef::Index(index), &mark) {
                Ok(()) => moved.push(index),
                Err(e) if e.errno == libc::ENODEV => gone += 1,
                Err(e) => {
                    log::debug!("{e}: deleting the links one by one");
                    return self.delete_each(&want, 0);
                }
            }
        }
        if moved.len() < 2 {
            return self.delete_each(&moved, gone);
        }
        // The group must hold exactly our links: another program may use
        // the same number (improbable with 32 random bits, but then its
        // links would go too).
        let mut members: Vec<u32> = match self.links() {
            Ok(all) => all
                .iter()
                .filter(|l| l.group == group)
                .map(|l| l.index)
                .collect(),
            Err(e) => {
                log::debug!("{e}: deleting the links one by one");
                return self.delete_each(&moved, gone);
            }
        };
        members.sort_unstable();
        if members != moved {
            log::warn!(
                "link group {group} holds links {members:?}, not just ours {moved:?}: \
                 deleting ours one by one"
            );
            return self.delete_each(&moved, gone);
        }
        let op = format!("delete link group {group} ({} links)", moved.len());
        match self.ack(&op, delete_group_msg(group)) {
            Ok(()) => Ok(Deleted {
                deleted: moved.len(),
                gone,
                batched: true,
            }),
            Err(e) => {
                log::debug!("{e}: deleting the links one by one");
                self.delete_each(&moved, gone)
            }
        }
    }

    /// Deletes each link by index, going on after a failure; returns the
    /// first failure once all were tried.
    fn delete_each(&mut self, links: &[u32], gone: usize) -> Result<Deleted> {
        let mut done = Deleted {
            gone,
            ..Deleted::default()
        };
        let mut first_err = None;
        for &index in links {
            match self.delete_link(index) {
                Ok(()) => done.deleted += 1,
                Err(e) if e.errno == libc::ENODEV => done.gone += 1,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::message::stamped;

    /// `ip link del group 7`: RTM_DELLINK, ifindex 0, IFLA_GROUP 7.
    #[test]
    fn delete_group() {
        #[rustfmt::skip]
        let golden: Vec<u8> = vec![
            0x28, 0x00, 0x00, 0x00, 0x11, 0x00, 0x05, 0x00, // len 40, RTM_DELLINK, REQUEST|ACK
            0x49, 0x90, 0x0c, 0x6b, 0x00, 0x00, 0x00, 0x00, // seq, pid
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg: index 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x1b, 0x00, 0x07, 0x00, 0x00, 0x00, // IFLA_GROUP 7
        ];
        assert_eq!(stamped(delete_group_msg(7), 0x6b0c_9049), golden);
    }

    #[test]
    fn groups_avoid_the_well_known_ones() {
        for r in [
            0,
            1,
            7,
            MIN_GROUP - 1,
            u32::MAX - MIN_GROUP,
            u32::MAX - 1,
            u32::MAX,
        ] {
            let g = fresh_group(r);
            assert!((MIN_GROUP..u32::MAX).contains(&g), "{r} -> {g}");
        }
        // Two draws differ (32 random bits: a clash is a 1 in 4e9 event).
        assert_ne!(random_u32(), random_u32());
    }
}
