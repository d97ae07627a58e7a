//! Validated identifiers and addresses, each parsed once at the edge (the
//! environment, the configuration, an agent answer, a file on disk) by one
//! rule, and carried as a type afterwards: code past the edge never sees
//! an unchecked string where a name, UUID, MAC or address belongs.
//!
//! Parsing fails with [`Invalid`], which says what was wrong but carries no
//! CNI code: the edge decides the code (4 for the environment, 7 for the
//! configuration, 101 for the agent, "corrupt" for a file).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// Why a value was rejected: `what` it should have been, a bounded and
/// escaped copy of the value, and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub what: &'static str,
    pub value: String,
    pub why: String,
}

impl Invalid {
    fn new(what: &'static str, value: &str, why: impl Into<String>) -> Invalid {
        Invalid {
            what,
            value: printable(value, 64),
            why: why.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {}: {}", self.what, self.value, self.why)
    }
}

impl std::error::Error for Invalid {}

/// A bounded, quoted and escaped copy of untrusted text for messages and
/// logs: no control character reaches a log line verbatim.
pub fn printable(s: &str, max: usize) -> String {
    let cut: String = s.chars().take(max).collect();
    let more = if cut.len() < s.len() { "..." } else { "" };
    format!("{cut:?}{more}")
}

/// `s` with every control character (newline, carriage return, escape...)
/// written as a Rust escape: text from outside for a log line or a
/// terminal, which it can then neither break nor rewrite.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Implements `Display`, `AsRef<str>`, `FromStr` (through `parse`) and
/// serde as a validated string for a newtype over `String`.
macro_rules! string_id {
    ($t:ident) => {
        impl $t {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<std::path::Path> for $t {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl FromStr for $t {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                $t::parse(s)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $t::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// The CNI rule for names that become file names and URL segments:
/// `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, at most `max` bytes.
fn is_name(s: &str, max: usize) -> bool {
    let mut b = s.bytes();
    s.len() <= max
        && b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Linux's longest file name; VM names are directory and file names.
pub const NAME_MAX: usize = 255;

/// Longest interface alias the kernel keeps (IFALIASZ - 1).
pub const ALIAS_MAX: usize = 255;

/// The prefix of every link mark: `contrail-k8s-cni:<container id>`.
pub const MARK_PREFIX: &str = "contrail-k8s-cni:";

/// A CNI container id: `^[A-Za-z0-9][A-Za-z0-9_.-]*$`, at most
/// [`ContainerId::MAX`] bytes, so that the link mark naming it fits the
/// kernel's alias (runtimes use 64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);
string_id!(ContainerId);

impl ContainerId {
    /// `ALIAS_MAX - MARK_PREFIX.len()`.
    pub const MAX: usize = ALIAS_MAX - MARK_PREFIX.len();

    pub fn parse(s: &str) -> Result<ContainerId, Invalid> {
        if is_name(s, Self::MAX) {
            Ok(ContainerId(s.to_string()))
        } else {
            Err(Invalid::new(
                "container id",
                s,
                format!(
                    "must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$ and be at most {} bytes",
                    Self::MAX
                ),
            ))
        }
    }

    /// The ownership mark of the host links created for this container
    /// (`IFLA_IFALIAS`).
    pub fn mark(&self) -> String {
        format!("{MARK_PREFIX}{}", self.0)
    }

    /// The container a link mark names, None when it is not our mark.
    pub fn from_mark(alias: &str) -> Option<ContainerId> {
        ContainerId::parse(alias.strip_prefix(MARK_PREFIX)?).ok()
    }
}

/// A network name (the config's `name`) and the cluster name: the CNI
/// name rule, at most [`NAME_MAX`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetName(String);
string_id!(NetName);

impl NetName {
    pub fn parse(s: &str) -> Result<NetName, Invalid> {
        if is_name(s, NAME_MAX) {
            Ok(NetName(s.to_string()))
        } else {
            Err(Invalid::new(
                "name",
                s,
                "must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$ and be at most 255 bytes",
            ))
        }
    }
}

/// The name the agent knows a pod by, `<cluster>__<namespace>__<pod>` (the
/// container id in Mesos mode). It is a directory name under `config-dir`,
/// a file name of the agent's and a URL segment, so: the CNI name rule and
/// at most [`NAME_MAX`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmName(String);
string_id!(VmName);

impl VmName {
    pub fn parse(s: &str) -> Result<VmName, Invalid> {
        if s.len() > NAME_MAX {
            return Err(Invalid::new(
                "VM name",
                s,
                format!(
                    "is {} bytes, longer than {NAME_MAX}, the limit of a file name",
                    s.len()
                ),
            ));
        }
        if is_name(s, NAME_MAX) {
            Ok(VmName(s.to_string()))
        } else {
            Err(Invalid::new(
                "VM name",
                s,
                "must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$",
            ))
        }
    }

    /// `<cluster>__<namespace>__<pod>`.
    pub fn k8s(cluster: &NetName, namespace: &str, pod: &str) -> Result<VmName, Invalid> {
        VmName::parse(&format!("{cluster}__{namespace}__{pod}"))
    }

    /// Mesos: the container id names the VM.
    pub fn mesos(container: &ContainerId) -> VmName {
        VmName(container.0.clone())
    }
}

/// A UUID in canonical lower-case form (`8-4-4-4-12` hex digits; either
/// case is accepted). Pod UIDs, VM, VMI and VN ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(String);
string_id!(Uuid);

impl Uuid {
    pub const LEN: usize = 36;

    pub fn parse(s: &str) -> Result<Uuid, Invalid> {
        let ok = s.len() == Self::LEN
            && s.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        if ok {
            Ok(Uuid(s.to_ascii_lowercase()))
        } else {
            Err(Invalid::new("UUID", s, "must be 8-4-4-4-12 hex digits"))
        }
    }
}

/// An interface name the kernel accepts and we can put in a sysctl path:
/// 1..=15 bytes, not `.` or `..`, no `/`, `:`, `%` (a template to the
/// kernel), whitespace or control character (`dev_valid_name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);
string_id!(IfName);

impl IfName {
    /// IFNAMSIZ - 1.
    pub const MAX: usize = 15;

    /// The loopback interface.
    pub fn lo() -> IfName {
        IfName("lo".into())
    }

    pub fn parse(s: &str) -> Result<IfName, Invalid> {
        let why = if s.is_empty() {
            "is empty"
        } else if s.len() > Self::MAX {
            "is longer than 15 bytes"
        } else if s == "." || s == ".." {
            "is . or .."
        } else if s
            .chars()
            .any(|c| matches!(c, '/' | ':' | '%') || c.is_whitespace() || c.is_control())
        {
            "contains /, :, %, whitespace or a control character"
        } else {
            return Ok(IfName(s.to_string()));
        };
        Err(Invalid::new("interface name", s, why))
    }
}

/// A 6-byte Ethernet address; parses exactly `xx:xx:xx:xx:xx:xx` (either
/// case) and prints lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub fn parse(s: &str) -> Result<Mac, Invalid> {
        let bad = || Invalid::new("MAC address", s, "must be xx:xx:xx:xx:xx:xx");
        let b = s.as_bytes();
        if b.len() != 17 || (2..17).step_by(3).any(|i| b[i] != b':') {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            let pair = s.get(i * 3..i * 3 + 2).ok_or_else(bad)?;
            if !pair.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *o = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Mac(out))
    }

    /// The address a pod interface may carry: not zero, not multicast
    /// (which includes broadcast).
    pub fn check_unicast(self, what: &'static str) -> Result<Mac, Invalid> {
        if self.0 == [0; 6] {
            Err(Invalid::new(what, &self.to_string(), "is all zeros"))
        } else if self.0[0] & 1 != 0 {
            Err(Invalid::new(
                what,
                &self.to_string(),
                "is a multicast address",
            ))
        } else {
            Ok(self)
        }
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

impl FromStr for Mac {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Mac, Invalid> {
        Mac::parse(s)
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Mac::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An address with a prefix length no longer than its family's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// None when `prefix` is longer than the family's width.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        (prefix <= width(&addr)).then_some(IpNet { addr, prefix })
    }

    /// `addr/len`.
    pub fn parse(s: &str) -> Result<IpNet, Invalid> {
        let bad = || Invalid::new("address/prefix", s, "must be ADDRESS/LENGTH");
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        if l.is_empty() || l.len() > 3 || !l.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = l.parse().map_err(|_| bad())?;
        IpNet::new(addr, prefix).ok_or_else(|| {
            Invalid::new(
                "address/prefix",
                s,
                format!("prefix length is longer than {}", width(&addr)),
            )
        })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// An address a pod interface may be given: a unicast host address
    /// (not unspecified, loopback, multicast or broadcast; for IPv4 with a
    /// prefix up to /30, neither the subnet's network nor its broadcast
    /// address; for IPv6 up to /126, not the subnet-router anycast address)
    /// with a prefix length from 1 to the family's width.
    pub fn check_host(self) -> Result<IpNet, Invalid> {
        let why = check_unicast(&self.addr).err().or_else(|| {
            if self.prefix == 0 {
                return Some("has prefix length 0");
            }
            let v4 = match self.addr {
                IpAddr::V4(v4) => v4,
                // The all-zero host of a subnet is its routers' anycast address.
                IpAddr::V6(v6) if self.prefix <= 126 => {
                    let host = u128::from(v6) & (u128::MAX >> self.prefix);
                    return (host == 0).then_some("is the subnet-router anycast address");
                }
                IpAddr::V6(_) => return None,
            };
            if self.prefix > 30 {
                return None;
            }
            let host_bits = u32::MAX >> self.prefix;
            let host = u32::from(v4) & host_bits;
            if host == 0 {
                Some("is the subnet's network address")
            } else if host == host_bits {
                Some("is the subnet's broadcast address")
            } else {
                None
            }
        });
        match why {
            Some(why) => Err(Invalid::new("host address", &self.to_string(), why)),
            None => Ok(self),
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<IpNet, Invalid> {
        IpNet::parse(s)
    }
}

/// 32 or 128.
pub fn width(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// Ok for an address a host can be reached at (a gateway, a DNS server):
/// not unspecified, loopback, multicast or the IPv4 broadcast address.
pub fn check_unicast(addr: &IpAddr) -> Result<(), &'static str> {
    if addr.is_unspecified() {
        Err("is unspecified")
    } else if addr.is_loopback() {
        Err("is a loopback address")
    } else if addr.is_multicast() {
        Err("is a multicast address")
    } else if *addr == IpAddr::V4(Ipv4Addr::BROADCAST) {
        Err("is the broadcast address")
    } else {
        Ok(())
    }
}

/// A unicast address as [`check_unicast`] defines it, or why not.
pub fn unicast(what: &'static str, addr: IpAddr) -> Result<IpAddr, Invalid> {
    check_unicast(&addr)
        .map(|()| addr)
        .map_err(|why| Invalid::new(what, &addr.to_string(), why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_fit_the_mark() {
        let id = ContainerId::parse(&"a".repeat(ContainerId::MAX)).unwrap();
        assert_eq!(id.mark().len(), ALIAS_MAX);
        assert_eq!(ContainerId::from_mark(&id.mark()), Some(id));
        for bad in [
            "",
            "-a",
            "a/b",
            "a b",
            "a\n",
            &"a".repeat(ContainerId::MAX + 1),
        ] {
            assert!(ContainerId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ContainerId::from_mark("contrail-k8s-cni-vlan-100"), None);
        assert_eq!(ContainerId::from_mark("contrail-k8s-cni:../x"), None);
        assert_eq!(ContainerId::from_mark("other:abc"), None);
    }

    #[test]
    fn vm_names_are_file_names_and_say_the_limit() {
        let k8s = NetName::parse("k8s").unwrap();
        assert_eq!(
            VmName::k8s(&k8s, "default", "p-1.x").unwrap().as_str(),
            "k8s__default__p-1.x"
        );
        let long = "a".repeat(253);
        let e = VmName::k8s(&k8s, "default", &long).unwrap_err();
        assert!(e.to_string().contains("255"), "{e}");
        for bad in ["", ".", "..", ".hidden", "a/b", "a%2f", "a b", "a?b"] {
            assert!(VmName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uuids_lower_case_and_reject_everything_else() {
        assert_eq!(
            Uuid::parse("0B1C2D3E-0000-4000-8000-00000000000A")
                .unwrap()
                .as_str(),
            "0b1c2d3e-0000-4000-8000-00000000000a"
        );
        for bad in [
            "",
            "../../etc/passwd",
            "0b1c2d3e-0000-4000-8000-00000000000",
            "0b1c2d3e-0000-4000-8000-00000000000g",
            "0b1c2d3e00000-4000-8000-00000000000a",
            "0b1c2d3e-0000-4000-8000-00000000000a ",
        ] {
            assert!(Uuid::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn interface_names_follow_the_kernel_and_reject_templates() {
        assert!(IfName::parse("eth0").is_ok());
        assert!(IfName::parse("123456789012345").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "a:b",
            "eth%d",
            "a\nb",
            "a\u{b}b",
            "a\0b",
            "1234567890123456",
        ] {
            assert!(IfName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn macs_parse_exactly_and_know_unicast() {
        let m = Mac::parse("02:AB:cd:00:11:22").unwrap();
        assert_eq!(m.to_string(), "02:ab:cd:00:11:22");
        assert!(m.check_unicast("mac").is_ok());
        for bad in [
            "02:ab:cd:00:11",
            "02-ab-cd-00-11-22",
            "02:ab:cd:00:11:2g",
            "+2:ab:cd:00:11:22",
            "02:ab:cd:00:11:22:",
            "ü2:ab:cd:00:11:2",
        ] {
            assert!(Mac::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Mac([0; 6]).check_unicast("mac").is_err());
        assert!(Mac([1, 0, 0x5e, 0, 0, 1]).check_unicast("mac").is_err());
        assert!(Mac([0xff; 6]).check_unicast("mac").is_err());
    }

    #[test]
    fn host_addresses_are_unicast_with_a_sane_prefix() {
        for ok in ["10.0.0.5/24", "10.0.0.5/32", "10.0.0.0/31", "fd00::5/128"] {
            let n: IpNet = ok.parse().unwrap();
            assert!(n.check_host().is_ok(), "{ok}");
        }
        for bad in [
            "224.0.0.1/32",
            "255.255.255.255/32",
            "0.0.0.0/24",
            "127.0.0.1/8",
            "10.0.0.5/0",
            "10.0.0.0/24",
            "10.0.0.255/24",
            "ff02::1/128",
            "::1/128",
            "::/64",
            "fd00::/64",
        ] {
            let n: IpNet = bad.parse().unwrap();
            assert!(n.check_host().is_err(), "{bad}");
        }
        for bad in [
            "10.0.0.5/33",
            "fd00::/129",
            "10.0.0.5",
            "10.0.0.5/+1",
            "x/1",
        ] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }
}
