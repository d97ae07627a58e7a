//! Per-interface sysctls under `/proc/sys/net/ipv{4,6}/conf/<ifname>/<key>`.
//!
//! `/proc/sys/net` resolves against the network namespace of the *calling
//! thread*, so to change a pod interface run this inside `NetNs::run`.

use super::{Error, Result};
use crate::ids::IfName;
use std::io::Write;

fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::with_text(
            &format!("validate sysctl key {key:?}"),
            libc::EINVAL,
            "sysctl keys are ASCII letters, digits and '_'",
        ));
    }
    Ok(())
}

/// The path written by [`set_interface_sysctl`], after validation.
pub fn interface_sysctl_path(ipv6: bool, ifname: &IfName, key: &str) -> Result<String> {
    validate_key(key)?;
    let fam = if ipv6 { "ipv6" } else { "ipv4" };
    Ok(format!("/proc/sys/net/{fam}/conf/{ifname}/{key}"))
}

/// Writes `/proc/sys/net/<ipv4|ipv6>/conf/<ifname>/<key>` in the calling
/// thread's network namespace. `key` is validated first (`ifname` was, by
/// its type).
pub fn set_interface_sysctl(ipv6: bool, ifname: &IfName, key: &str, value: &str) -> Result<()> {
    let path = interface_sysctl_path(ipv6, ifname, key)?;
    let op = format!("write {value:?} to {path}");
    // No create, no truncate: sysctl files exist or the name is wrong.
    let res = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|e| Error::new(&op, e.raw_os_error().unwrap_or(libc::EIO)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_validated() {
        let n = |s: &str| IfName::parse(s).unwrap();
        assert_eq!(
            interface_sysctl_path(true, &n("eth0"), "accept_ra").unwrap(),
            "/proc/sys/net/ipv6/conf/eth0/accept_ra"
        );
        assert_eq!(
            interface_sysctl_path(false, &n("veth-1"), "rp_filter").unwrap(),
            "/proc/sys/net/ipv4/conf/veth-1/rp_filter"
        );
        for bad in ["", "../x", "a.b", "a/b", "a-b"] {
            assert!(
                interface_sysctl_path(false, &n("eth0"), bad).is_err(),
                "{bad:?}"
            );
        }
    }
}
