//! Supported spec versions, the VERSION reply, version ordering and the
//! per-command version gate.
//!
//! Support is decided by exact string match against [`SUPPORTED`] (libcni's
//! reconciler does the same, so `"1.0"` is not `"1.0.0"`); only the ordering
//! checks parse `major.minor.patch`.

use super::args::Command;
use super::error::{code, Error, Result};

/// Every spec version this plugin speaks, oldest first.
pub const SUPPORTED: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// The newest version: used for errors when the config's is unknown and for
/// the VERSION reply when the input names none.
pub const LATEST: &str = "1.1.0";

/// What a missing or empty `cniVersion` in the config means (spec §1.1).
pub const IMPLICIT: &str = "0.1.0";

/// True when `v` is literally one of [`SUPPORTED`].
pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// `major.minor.patch` as numbers; `""` is [`IMPLICIT`]. None when malformed.
fn parse(v: &str) -> Option<(u64, u64, u64)> {
    let v = if v.is_empty() { IMPLICIT } else { v };
    let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
    let out = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(out)
}

/// True when `v` (major.minor.patch) is at least `min`. A malformed `v` is
/// never "at least" anything.
pub fn at_least(v: &str, min: &str) -> bool {
    match (parse(v), parse(min)) {
        (Some(a), Some(b)) => a >= b,
        _ => false,
    }
}

/// The VERSION reply: echoes `cni_version` when non-empty, else [`LATEST`].
pub fn version_reply(cni_version: &str) -> String {
    let v = if cni_version.is_empty() {
        LATEST
    } else {
        cni_version
    };
    serde_json::json!({ "cniVersion": v, "supportedVersions": SUPPORTED }).to_string()
}

/// The version gate: the config version must be supported (code 1, details
/// list both), and new enough for the command (CHECK ≥ 0.4.0, STATUS and GC
/// ≥ 1.1.0; code 1), as the reference skel does.
pub fn check_command(config_version: &str, command: Command) -> Result<()> {
    if !is_supported(config_version) {
        return Err(
            Error::new(code::INCOMPATIBLE_VERSION, "incompatible CNI versions").with_details(
                format!(
                    "config is {config_version:?}, plugin supports {}",
                    SUPPORTED.join(", ")
                ),
            ),
        );
    }
    let min = match command {
        Command::Check => "0.4.0",
        Command::Status | Command::Gc => "1.1.0",
        Command::Add | Command::Del | Command::Version => return Ok(()),
    };
    if at_least(config_version, min) {
        Ok(())
    } else {
        Err(Error::new(
            code::INCOMPATIBLE_VERSION,
            format!("config version does not allow {}", command.as_str()),
        )
        .with_details(format!(
            "config is {config_version:?}, {} needs {min} or later",
            command.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering() {
        assert!(at_least("0.4.0", "0.4.0"));
        assert!(at_least("1.0.0", "0.4.0"));
        assert!(at_least("0.10.0", "0.4.0"));
        assert!(!at_least("0.3.1", "0.4.0"));
        assert!(!at_least("", "0.2.0"));
        assert!(at_least("", "0.1.0"));
        assert!(!at_least("1.0", "0.1.0"));
        assert!(!at_least("1.0.0.0", "0.1.0"));
        assert!(!at_least("x.y.z", "0.1.0"));
    }

    #[test]
    fn reply_echoes_or_defaults() {
        let v: serde_json::Value = serde_json::from_str(&version_reply("0.3.1")).unwrap();
        assert_eq!(v["cniVersion"], "0.3.1");
        assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 7);
        let v: serde_json::Value = serde_json::from_str(&version_reply("")).unwrap();
        assert_eq!(v["cniVersion"], LATEST);
    }

    #[test]
    fn gate() {
        assert_eq!(check_command("1.0", Command::Add).unwrap_err().code, 1);
        assert!(check_command("9.9.9", Command::Del)
            .unwrap_err()
            .details
            .contains("1.1.0"));
        assert!(check_command("0.1.0", Command::Add).is_ok());
        assert_eq!(check_command("0.3.1", Command::Check).unwrap_err().code, 1);
        assert!(check_command("0.4.0", Command::Check).is_ok());
        assert_eq!(check_command("1.0.0", Command::Status).unwrap_err().code, 1);
        assert_eq!(check_command("1.0.0", Command::Gc).unwrap_err().code, 1);
        assert!(check_command("1.1.0", Command::Gc).is_ok());
    }
}
