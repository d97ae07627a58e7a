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

/// Where the network sysctls live; the tests point it elsewhere.
const PROC_SYS_NET: &str = "/proc/sys/net";

/// The path written by [`set_interface_sysctl`], after validation.
pub fn interface_sysctl_path(ipv6: bool, ifname: &IfName, key: &str) -> Result<String> {
    interface_sysctl_path_in(PROC_SYS_NET, ipv6, ifname, key)
}

fn interface_sysctl_path_in(root: &str, ipv6: bool, ifname: &IfName, key: &str) -> Result<String> {
    validate_key(key)?;
    let fam = if ipv6 { "ipv6" } else { "ipv4" };
    Ok(format!("{root}/{fam}/conf/{ifname}/{key}"))
}

/// Writes `/proc/sys/net/<ipv4|ipv6>/conf/<ifname>/<key>` in the calling
/// thread's network namespace. `key` is validated first (`ifname` was, by
/// its type).
///
/// ENOENT has two causes, told apart in the error text: a kernel booted
/// with `ipv6.disable=1` (or built without IPv6) has no
/// `/proc/sys/net/ipv6` at all, which callers may tolerate; otherwise the
/// interface or the key does not exist.
pub fn set_interface_sysctl(ipv6: bool, ifname: &IfName, key: &str, value: &str) -> Result<()> {
    set_interface_sysctl_in(PROC_SYS_NET, ipv6, ifname, key, value)
}

fn set_interface_sysctl_in(
    root: &str,
    ipv6: bool,
    ifname: &IfName,
    key: &str,
    value: &str,
) -> Result<()> {
    let path = interface_sysctl_path_in(root, ipv6, ifname, key)?;
    let op = format!("write {value:?} to {path}");
    // No create, no truncate: sysctl files exist or the name is wrong.
    let res = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(libc::EIO);
        let fam = if ipv6 { "ipv6" } else { "ipv4" };
        if errno != libc::ENOENT {
            Error::new(&op, errno)
        } else if std::path::Path::new(&format!("{root}/{fam}")).exists() {
            Error::with_text(&op, errno, "no such interface or key")
        } else {
            Error::with_text(
                &op,
                errno,
                &format!("{fam} is disabled in this kernel (no {root}/{fam})"),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/sys/net` stand-in: `ipv4` always, `ipv6` only when asked
    /// (a kernel booted with ipv6.disable=1 has none), one interface.
    fn fake_proc(ipv6: bool) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("ccni-sysctl-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let fams: &[&str] = if ipv6 { &["ipv4", "ipv6"] } else { &["ipv4"] };
        for fam in fams {
            let dir = root.join(fam).join("conf/tap0");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("accept_ra"), "1").unwrap();
        }
        root
    }

    #[test]
    fn ipv6_disabled_is_enoent_and_says_so() {
        let root = fake_proc(false);
        let r = root.to_str().unwrap();
        let e = set_interface_sysctl_in(r, true, &IfName::parse("tap0").unwrap(), "accept_ra", "0")
            .unwrap_err();
        assert_eq!(e.errno, libc::ENOENT);
        assert!(e.to_string().contains("ipv6 is disabled"), "{e}");
        // IPv4 is still written.
        set_interface_sysctl_in(r, false, &IfName::parse("tap0").unwrap(), "accept_ra", "0")
            .unwrap();
        let v4 = root.join("ipv4/conf/tap0/accept_ra");
        assert_eq!(std::fs::read_to_string(v4).unwrap(), "0");
        std::fs::remove_dir_all(&root).unwrap();

        let root = fake_proc(true);
        let r = root.to_str().unwrap();
        set_interface_sysctl_in(r, true, &IfName::parse("tap0").unwrap(), "accept_ra", "0")
            .unwrap();
        // A missing interface is ENOENT too, but not "disabled".
        let e = set_interface_sysctl_in(r, true, &IfName::parse("tap9").unwrap(), "accept_ra", "0")
            .unwrap_err();
        assert_eq!(e.errno, libc::ENOENT);
        assert!(e.to_string().contains("no such interface"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

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
