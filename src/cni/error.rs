//! The one error type of the plugin: a CNI error code, a short message and
//! optional details. Every layer adds context with [`Context::ctx`]; `main`
//! turns the error into the CNI error JSON on stdout.

use std::fmt;

/// CNI error codes (spec §"Error codes") and the plugin's own (>= 100).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in the network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist (never used on DEL).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid or missing environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure (reading stdin, ...).
    pub const IO: u32 = 5;
    /// Failed to decode content (stdin JSON, prevResult).
    pub const DECODE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later: a transient condition (the agent is not ready).
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADD.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, existing containers may have limited connectivity.
    pub const NOT_AVAILABLE_LIMITED: u32 = 51;
    /// A kernel (netlink, namespace, sysctl) operation failed.
    pub const KERNEL: u32 = 100;
    /// The vRouter agent (or the Mesos manager) refused a request.
    pub const AGENT: u32 = 101;
    /// Reading or writing the plugin's state files failed.
    pub const STATE: u32 = 102;
    /// CHECK found a difference between the expected and the live state.
    pub const CHECK_MISMATCH: u32 = 103;
    /// Anything else.
    pub const INTERNAL: u32 = 999;
}

/// A CNI error: `code`, `msg` and `details` as the spec's error object has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Error {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// Sets the longer explanation carried in the `details` field.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// Prefixes the message with what the caller was doing: `"ctx: msg"`.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.msg = format!("{ctx}: {}", self.msg);
        self
    }

    /// The CNI error object, encoded for `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> String {
        let mut obj = serde_json::Map::new();
        obj.insert("cniVersion".into(), cni_version.into());
        obj.insert("code".into(), self.code.into());
        obj.insert("msg".into(), self.msg.clone().into());
        if !self.details.is_empty() {
            obj.insert("details".into(), self.details.clone().into());
        }
        serde_json::Value::Object(obj).to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.msg, self.code)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(code::IO, e.to_string())
    }
}

/// Adds context to any error that converts into [`Error`].
pub trait Context<T> {
    fn ctx(self, ctx: impl fmt::Display) -> Result<T>;
    fn with_ctx<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn ctx(self, ctx: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(ctx))
    }
    fn with_ctx<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_field_and_omits_empty_details() {
        let e = Error::new(code::INVALID_ENV, "CNI_IFNAME is missing");
        assert_eq!(
            e.to_json("1.0.0"),
            r#"{"cniVersion":"1.0.0","code":4,"msg":"CNI_IFNAME is missing"}"#
        );
        let e = e.with_details("set CNI_IFNAME").context("ADD");
        let v: serde_json::Value = serde_json::from_str(&e.to_json("0.4.0")).unwrap();
        assert_eq!(v["msg"], "ADD: CNI_IFNAME is missing");
        assert_eq!(v["details"], "set CNI_IFNAME");
    }
}
