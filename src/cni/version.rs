//! Supported spec versions, the VERSION reply, version ordering.

/// Every spec version this plugin speaks, oldest first.
pub const SUPPORTED: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// True when `v` (major.minor.patch) is at least `min`.
pub fn at_least(v: &str, min: &str) -> bool {
    let _ = (v, min);
    todo!("cni owner")
}

/// The VERSION reply: echoes `cni_version` when non-empty, else "1.1.0".
pub fn version_reply(cni_version: &str) -> String {
    let _ = cni_version;
    todo!()
}
