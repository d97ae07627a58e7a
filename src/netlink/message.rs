//! Netlink message encoding and bounds-checked decoding (pure, no syscalls).
//!
//! Wire rules (linux/netlink.h): everything is native-endian; messages and
//! attributes are aligned to 4 bytes; an attribute's `len` counts its 4-byte
//! header and payload but not the trailing padding; a nest's `len` covers
//! its padded children. Decoding never trusts a length field: a malformed
//! reply ends the walk instead of reading out of bounds.

use super::consts::{NLA_HDRLEN, NLMSG_HDRLEN};

/// Rounds `n` up to the netlink alignment (4).
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds one netlink request: header, fixed struct, attributes, nests.
/// The sequence number is left 0; the socket stamps it when sending.
#[derive(Debug, Clone)]
pub struct MsgBuilder {
    buf: Vec<u8>,
}

impl MsgBuilder {
    /// Starts a message of type `ty` with `flags` (NLM_F_*); pid is 0.
    pub fn new(ty: u16, flags: u16) -> MsgBuilder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, patched in finish()
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: 0 = to the kernel
        MsgBuilder { buf }
    }

    /// Appends raw bytes (a fixed header such as ifinfomsg), padded to 4.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    /// Appends one attribute with `payload`, padded to 4.
    pub fn attr(&mut self, ty: u16, payload: &[u8]) -> &mut Self {
        // Payloads we build are tiny (names, addresses, u32s); saturating
        // keeps this panic-free even if a caller passed something absurd,
        // and the kernel would then reject the attribute.
        let len = u16::try_from(NLA_HDRLEN + payload.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    /// A native-endian u32 attribute.
    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A native-endian u16 attribute (len 6, padded to 8).
    pub fn attr_u16(&mut self, ty: u16, v: u16) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute (IFLA_IFNAME).
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v)
    }

    /// Opens a nest; pass the returned offset to [`MsgBuilder::end_nest`].
    /// Like iproute2 we do not set NLA_F_NESTED: IFLA_LINKINFO and
    /// IFLA_INFO_DATA are legacy nests the kernel parses either way.
    pub fn begin_nest(&mut self, ty: u16) -> usize {
        let start = self.buf.len();
        self.attr(ty, &[]);
        start
    }

    /// Closes the nest opened at `start`: its length covers all children.
    pub fn end_nest(&mut self, start: usize) -> &mut Self {
        let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
        if let Some(slot) = self.buf.get_mut(start..start + 2) {
            slot.copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// Patches `nlmsg_len` and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        if let Some(slot) = self.buf.get_mut(0..4) {
            slot.copy_from_slice(&len.to_ne_bytes());
        }
        self.buf
    }

    fn pad(&mut self) {
        let padded = align4(self.buf.len());
        self.buf.resize(padded, 0);
    }
}

/// `struct ifinfomsg`: family AF_UNSPEC, type 0, index, flags, change.
pub fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// Overwrites the sequence number of an encoded message.
pub fn set_seq(msg: &mut [u8], seq: u32) {
    if let Some(slot) = msg.get_mut(8..12) {
        slot.copy_from_slice(&seq.to_ne_bytes());
    }
}

/// Tests: `msg` stamped with the sequence number iproute2 used, so it can be
/// compared with a capture byte for byte.
#[cfg(test)]
pub fn stamped(mut msg: Vec<u8>, seq: u32) -> Vec<u8> {
    set_seq(&mut msg, seq);
    msg
}

/// One message of a reply, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    /// Everything after the 16-byte header, up to `nlmsg_len`.
    pub payload: &'a [u8],
}

/// Iterates over the messages of one datagram. Stops at the first header
/// whose length is impossible (too short or past the end).
pub struct MsgIter<'a> {
    buf: &'a [u8],
}

/// Walks the netlink messages in `buf`.
pub fn messages(buf: &[u8]) -> MsgIter<'_> {
    MsgIter { buf }
}

impl<'a> Iterator for MsgIter<'a> {
    type Item = NlMsg<'a>;
    fn next(&mut self) -> Option<NlMsg<'a>> {
        let len = read_u32(self.buf, 0)? as usize;
        if len < NLMSG_HDRLEN || len > self.buf.len() {
            self.buf = &[];
            return None;
        }
        let msg = NlMsg {
            ty: read_u16(self.buf, 4)?,
            flags: read_u16(self.buf, 6)?,
            seq: read_u32(self.buf, 8)?,
            payload: self.buf.get(NLMSG_HDRLEN..len)?,
        };
        self.buf = self.buf.get(align4(len)..).unwrap_or(&[]);
        Some(msg)
    }
}

/// Iterates over attributes as `(type & NLA_TYPE_MASK, payload)`.
pub struct AttrIter<'a> {
    buf: &'a [u8],
}

/// Walks the attributes in `buf` (bounds-checked, flag bits masked).
pub fn attrs(buf: &[u8]) -> AttrIter<'_> {
    AttrIter { buf }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let len = read_u16(self.buf, 0)? as usize;
        let ty = read_u16(self.buf, 2)? & libc::NLA_TYPE_MASK as u16;
        if len < NLA_HDRLEN || len > self.buf.len() {
            self.buf = &[];
            return None;
        }
        let payload = self.buf.get(NLA_HDRLEN..len)?;
        self.buf = self.buf.get(align4(len)..).unwrap_or(&[]);
        Some((ty, payload))
    }
}

/// Reads a native-endian u16 at `off`, None when out of bounds.
pub fn read_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

/// Reads a native-endian u32 at `off`, None when out of bounds.
pub fn read_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Reads a native-endian i32 at `off`, None when out of bounds.
pub fn read_i32(b: &[u8], off: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// A u32 attribute payload (None when it is not exactly 4 bytes).
pub fn attr_u32(payload: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(payload.try_into().ok()?))
}

/// A string attribute payload: the kernel includes the trailing NUL, so
/// cut at the first NUL; invalid UTF-8 is replaced rather than rejected.
pub fn attr_string(payload: &[u8]) -> String {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    String::from_utf8_lossy(&payload[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nest_and_padding() {
        let mut b = MsgBuilder::new(16, 1);
        b.raw(&[0u8; 16]);
        let n = b.begin_nest(18);
        b.attr(1, b"veth"); // len 8
        b.attr_u16(1, 100); // len 6, padded to 8
        b.end_nest(n);
        let m = b.finish();
        assert_eq!(m.len(), 16 + 16 + 4 + 8 + 8);
        assert_eq!(read_u32(&m, 0), Some(m.len() as u32));
        assert_eq!(read_u16(&m, 32), Some(20)); // nest covers padded children
        assert_eq!(&m[44..48], &[6, 0, 1, 0]);
    }

    #[test]
    fn decoding_never_reads_out_of_bounds() {
        // Attribute claiming 200 bytes in a 8-byte buffer: the walk stops.
        let bad = [200u8, 0, 1, 0, 1, 2, 3, 4];
        assert_eq!(attrs(&bad).count(), 0);
        // Truncated header, zero length, length past the end.
        assert_eq!(attrs(&[1, 0]).count(), 0);
        assert_eq!(attrs(&[0, 0, 1, 0]).count(), 0);
        assert_eq!(messages(&[16, 0, 0]).count(), 0);
        assert_eq!(messages(&[0u8; 16]).count(), 0);
        let mut m = [0u8; 20];
        m[0] = 40;
        assert_eq!(messages(&m).count(), 0);
        // Every prefix of a valid message decodes without panicking.
        let mut b = MsgBuilder::new(16, 0);
        b.raw(&ifinfomsg(1, 0, 0))
            .attr_str(3, "eth0")
            .attr_u32(4, 1500);
        let full = b.finish();
        for n in 0..full.len() {
            for msg in messages(&full[..n]) {
                let _ = attrs(msg.payload.get(16..).unwrap_or(&[])).count();
            }
        }
    }

    #[test]
    fn strings_stop_at_nul() {
        assert_eq!(attr_string(b"eth0\0"), "eth0");
        assert_eq!(attr_string(b"eth0"), "eth0");
        assert_eq!(attr_string(b""), "");
        assert_eq!(attr_u32(&[1, 2, 3]), None);
    }
}
