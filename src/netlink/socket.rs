//! The NETLINK_ROUTE socket: open, send, receive, match sequence numbers,
//! turn NLMSG_ERROR into [`Error`] (errno + extended-ack text), dumps.
//!
//! A netlink socket stays bound to the network namespace of the thread that
//! created it, so a socket opened inside a pod namespace keeps working there
//! after the thread has switched back (see `NetNs::socket`).

use super::consts::{NLMSGERR_ATTR_MSG, NLMSG_HDRLEN};
use super::message::{align4, attr_string, attrs, messages, read_i32, read_u32, set_seq};
use super::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Receive buffer size. Dump datagrams are up to ~32 KiB on x86_64 (the
/// kernel sizes them from our buffer, capped at 32 KiB); 64 KiB leaves room.
const RECV_BUF: usize = 64 * 1024;
/// No kernel reply within this time is a bug; never hang the plugin.
const RECV_TIMEOUT_SECS: u8 = 10;
/// How often a dump is restarted when the kernel flags NLM_F_DUMP_INTR.
const DUMP_ATTEMPTS: usize = 10;

/// A NETLINK_ROUTE socket bound in the namespace of the thread that opened
/// it; every change request carries NLM_F_ACK and waits for it.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// One data reply: message type (RTM_NEW*) and payload after the header.
pub type Reply = (u16, Vec<u8>);

fn os_error(op: &str) -> Error {
    let errno = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    Error::new(op, errno)
}

impl Socket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Socket> {
        let op = "open netlink socket";
        // SAFETY: socket(2) with constant arguments; no memory is passed.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(os_error(op));
        }
        // SAFETY: `raw` was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // SAFETY: sockaddr_nl is plain old data (it has a private pad field,
        // hence zeroed() instead of a literal); all-zero is valid.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `sa` is a valid sockaddr_nl and we pass its exact size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(os_error("bind netlink socket"));
        }

        // Extended ack (kernel >= 4.12) gives errors a human-readable text;
        // CAP_ACK stops the kernel echoing the whole request back. Both are
        // niceties: an old kernel without them still works, so failures are
        // only logged and the error parser copes with either layout.
        for opt in [libc::NETLINK_EXT_ACK, libc::NETLINK_CAP_ACK] {
            if let Err(e) = setsockopt(fd.as_raw_fd(), libc::SOL_NETLINK, opt, &1i32) {
                log::debug!("netlink setsockopt {opt}: {e}");
            }
        }
        let tv = libc::timeval {
            // `time_t` is deprecated as a name on musl; the field's own type is used.
            tv_sec: RECV_TIMEOUT_SECS.into(),
            tv_usec: 0,
        };
        setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;

        Ok(Socket {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends a change request (built with NLM_F_ACK) and waits for its ACK.
    pub fn ack(&mut self, op: &str, msg: Vec<u8>) -> Result<()> {
        self.request(op, msg).map(|_| ())
    }

    /// Sends `msg` (built by [`super::message::MsgBuilder`] with NLM_F_ACK or
    /// NLM_F_DUMP) with a fresh sequence number and collects the data
    /// replies until the ACK or NLMSG_DONE. An NLMSG_ERROR becomes [`Error`]
    /// named `op`. A dump the kernel flagged interrupted gives EINTR.
    pub fn request(&mut self, op: &str, mut msg: Vec<u8>) -> Result<Vec<Reply>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        set_seq(&mut msg, seq);
        self.send(op, &msg)?;

        let mut replies = Replies::new(seq);
        loop {
            let n = self.recv(op)?;
            if let Some(out) = replies.feed(op, self.buf.get(..n).unwrap_or(&[]))? {
                return Ok(out);
            }
        }
    }

    /// Runs a dump built by `build`, restarting it while the kernel reports
    /// NLM_F_DUMP_INTR (the table changed under the dump).
    pub fn dump(&mut self, op: &str, build: impl Fn() -> Vec<u8>) -> Result<Vec<Reply>> {
        let mut last = Error::new(op, libc::EINTR);
        for _ in 0..DUMP_ATTEMPTS {
            match self.request(op, build()) {
                Err(e) if e.errno == libc::EINTR => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    fn send(&mut self, op: &str, msg: &[u8]) -> Result<()> {
        loop {
            // SAFETY: `msg` is valid for reads of msg.len() bytes; the fd is
            // our open, bound netlink socket (unconnected: goes to the kernel).
            let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
            if n < 0 {
                let e = os_error(op);
                if e.errno == libc::EINTR {
                    continue;
                }
                return Err(e);
            }
            if n as usize != msg.len() {
                return Err(Error::with_text(op, libc::EIO, "short netlink send"));
            }
            return Ok(());
        }
    }

    fn recv(&mut self, op: &str) -> Result<usize> {
        loop {
            // SAFETY: `buf` is valid for writes of buf.len() bytes. MSG_TRUNC
            // makes recv return the real datagram size so truncation shows.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = os_error(op);
                match e.errno {
                    libc::EINTR => continue,
                    libc::EAGAIN => {
                        return Err(Error::with_text(
                            op,
                            libc::ETIMEDOUT,
                            "no reply from the kernel within 10 s",
                        ))
                    }
                    _ => return Err(e),
                }
            }
            let n = n as usize;
            if n > self.buf.len() {
                return Err(Error::with_text(
                    op,
                    libc::EMSGSIZE,
                    "netlink reply truncated",
                ));
            }
            return Ok(n);
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Collects the replies to one request across datagrams (pure, so the
/// multi-part, seq and interrupted-dump logic is unit-tested).
struct Replies {
    seq: u32,
    out: Vec<Reply>,
    interrupted: bool,
}

impl Replies {
    fn new(seq: u32) -> Replies {
        Replies {
            seq,
            out: Vec::new(),
            interrupted: false,
        }
    }

    /// Takes one datagram; Some(replies) once the ACK or NLMSG_DONE came.
    fn feed(&mut self, op: &str, datagram: &[u8]) -> Result<Option<Vec<Reply>>> {
        for m in messages(datagram) {
            if m.seq != self.seq {
                // A late reply to an earlier request that failed or timed out.
                log::debug!(
                    "{op}: dropping netlink reply with seq {} != {}",
                    m.seq,
                    self.seq
                );
                continue;
            }
            if m.flags & libc::NLM_F_DUMP_INTR as u16 != 0 {
                self.interrupted = true;
            }
            match i32::from(m.ty) {
                libc::NLMSG_NOOP => {}
                libc::NLMSG_ERROR => {
                    check_nlmsgerr(op, m.flags, m.payload)?;
                    return Ok(Some(std::mem::take(&mut self.out)));
                }
                libc::NLMSG_DONE => {
                    check_done(op, m.flags, m.payload)?;
                    if self.interrupted {
                        return Err(Error::with_text(
                            op,
                            libc::EINTR,
                            "dump interrupted by a concurrent change",
                        ));
                    }
                    return Ok(Some(std::mem::take(&mut self.out)));
                }
                libc::NLMSG_OVERRUN => {
                    return Err(Error::with_text(op, libc::ENOBUFS, "netlink overrun"))
                }
                _ => self.out.push((m.ty, m.payload.to_vec())),
            }
        }
        Ok(None)
    }
}

fn setsockopt<T>(fd: RawFd, level: i32, name: i32, val: &T) -> Result<()> {
    // SAFETY: `val` points to a live T and we pass its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(os_error(&format!("setsockopt({level}, {name})")));
    }
    Ok(())
}

/// Checks an NLMSG_ERROR payload: `i32 error` (0 = ACK, else -errno), the
/// echoed request (only its 16-byte header when NLM_F_CAPPED), then, when
/// NLM_F_ACK_TLVS, extended-ack attributes such as NLMSGERR_ATTR_MSG.
pub(crate) fn check_nlmsgerr(op: &str, flags: u16, payload: &[u8]) -> Result<()> {
    let code = read_i32(payload, 0)
        .ok_or_else(|| Error::with_text(op, libc::EBADMSG, "short NLMSG_ERROR"))?;
    if code == 0 {
        return Ok(());
    }
    let echoed = if flags & libc::NLM_F_CAPPED as u16 != 0 {
        NLMSG_HDRLEN
    } else {
        read_u32(payload, 4).map_or(NLMSG_HDRLEN, |l| align4(l as usize))
    };
    let tlvs = if flags & libc::NLM_F_ACK_TLVS as u16 != 0 {
        payload.get(4 + echoed..)
    } else {
        None
    };
    Err(error_from_code(op, code, tlvs))
}

/// Checks NLMSG_DONE: its payload is an i32 (0 or -errno of a failed
/// dump), followed by extended-ack attributes when NLM_F_ACK_TLVS.
fn check_done(op: &str, flags: u16, payload: &[u8]) -> Result<()> {
    let code = read_i32(payload, 0).unwrap_or(0);
    if code == 0 {
        return Ok(());
    }
    let tlvs = if flags & libc::NLM_F_ACK_TLVS as u16 != 0 {
        payload.get(4..)
    } else {
        None
    };
    Err(error_from_code(op, code, tlvs))
}

fn error_from_code(op: &str, code: i32, tlvs: Option<&[u8]>) -> Error {
    let errno = if code < 0 {
        code.checked_neg().unwrap_or(libc::EIO)
    } else {
        code
    };
    let ext_ack = tlvs.and_then(|t| {
        attrs(t)
            .find(|(ty, _)| *ty == NLMSGERR_ATTR_MSG)
            .map(|(_, p)| attr_string(p))
    });
    Error {
        op: op.to_string(),
        errno,
        ext_ack,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_is_ok() {
        let mut p = vec![0u8; 20];
        p[4] = 32;
        assert_eq!(check_nlmsgerr("x", 0x100, &p), Ok(()));
    }

    #[test]
    fn error_with_ext_ack_capped() {
        // NLMSG_ERROR payload as the kernel sent it for a duplicate IPv4
        // address with EXT_ACK and CAP_ACK on (flags CAPPED|ACK_TLVS).
        let mut p = Vec::new();
        p.extend_from_slice(&(-libc::EEXIST).to_ne_bytes()); // error -17
        p.extend_from_slice(&[40, 0, 0, 0, 20, 0, 5, 6, 1, 0, 0, 0, 0, 0, 0, 0]); // echoed header
        let text = b"ipv4: Address already assigned\0";
        p.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes()); // NLMSGERR_ATTR_MSG
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(text);
        p.resize(align4(p.len()), 0);
        let e = check_nlmsgerr("add address", 0x300, &p).unwrap_err();
        assert_eq!(e.errno, libc::EEXIST);
        assert_eq!(e.ext_ack.as_deref(), Some("ipv4: Address already assigned"));
        assert_eq!(
            e.to_string(),
            "add address: File exists (os error 17) (ipv4: Address already assigned)"
        );
    }

    #[test]
    fn error_uncapped_skips_whole_request() {
        let mut p = Vec::new();
        p.extend_from_slice(&(-libc::ENODEV).to_ne_bytes());
        let mut req = vec![0u8; 24]; // a 24-byte echoed request
        req[0] = 24;
        p.extend_from_slice(&req);
        p.extend_from_slice(&[8, 0, 1, 0, b'b', b'a', b'd', 0]);
        let e = check_nlmsgerr("get", 0x200, &p).unwrap_err();
        assert_eq!((e.errno, e.ext_ack.as_deref()), (libc::ENODEV, Some("bad")));
        // Without ACK_TLVS the text is not looked for; short payloads are EBADMSG.
        assert_eq!(check_nlmsgerr("get", 0, &p).unwrap_err().ext_ack, None);
        assert_eq!(
            check_nlmsgerr("get", 0, &[1]).unwrap_err().errno,
            libc::EBADMSG
        );
    }

    /// A reply message: header with `ty`, `flags`, `seq`, then `payload`.
    fn msg(ty: i32, flags: i32, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = crate::netlink::message::MsgBuilder::new(ty as u16, flags as u16);
        b.raw(payload);
        let mut m = b.finish();
        set_seq(&mut m, seq);
        m
    }

    #[test]
    fn multi_part_dump_across_datagrams() {
        let multi = libc::NLM_F_MULTI;
        let mut r = Replies::new(7);
        let mut d1 = msg(libc::RTM_NEWLINK as i32, multi, 7, &[1; 16]);
        d1.extend(msg(libc::RTM_NEWLINK as i32, multi, 6, &[9; 16])); // stale: dropped
        d1.extend(msg(libc::NLMSG_NOOP, 0, 7, &[]));
        assert_eq!(r.feed("dump", &d1), Ok(None));
        let mut d2 = msg(libc::RTM_NEWLINK as i32, multi, 7, &[2; 16]);
        d2.extend(msg(libc::NLMSG_DONE, multi, 7, &0i32.to_ne_bytes()));
        let out = r.feed("dump", &d2).unwrap().unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].1[0], out[1].1[0]), (1, 2));
    }

    #[test]
    fn interrupted_dump_is_eintr() {
        let intr = libc::NLM_F_MULTI | libc::NLM_F_DUMP_INTR;
        let mut r = Replies::new(1);
        let mut d = msg(libc::RTM_NEWADDR as i32, intr, 1, &[0; 8]);
        d.extend(msg(libc::NLMSG_DONE, intr, 1, &0i32.to_ne_bytes()));
        assert_eq!(r.feed("dump", &d).unwrap_err().errno, libc::EINTR);
    }

    #[test]
    fn done_with_error_and_overrun() {
        let mut r = Replies::new(1);
        let d = msg(libc::NLMSG_DONE, 0, 1, &(-libc::EOPNOTSUPP).to_ne_bytes());
        assert_eq!(r.feed("dump", &d).unwrap_err().errno, libc::EOPNOTSUPP);
        let d = msg(libc::NLMSG_OVERRUN, 0, 1, &[]);
        assert_eq!(
            Replies::new(1).feed("x", &d).unwrap_err().errno,
            libc::ENOBUFS
        );
    }

    #[test]
    fn reply_then_ack() {
        let mut r = Replies::new(3);
        let mut d = msg(libc::RTM_NEWLINK as i32, 0, 3, &[5; 16]);
        let mut ack = vec![0u8; 20];
        ack[4] = 16;
        d.extend(msg(libc::NLMSG_ERROR, libc::NLM_F_CAPPED, 3, &ack));
        assert_eq!(r.feed("get", &d).unwrap().unwrap().len(), 1);
        // Garbage never panics and never completes a request.
        assert_eq!(Replies::new(3).feed("get", &[0xff; 7]), Ok(None));
    }
}
