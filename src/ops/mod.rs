//! The binary as the operator's tool (docs/operations.md): `install` puts
//! the binary and the node configuration in place, `doctor` reads the
//! node's state and says what is wrong. Neither runs as a CNI command:
//! `main` dispatches on the first argument, and the CNI environment plays
//! no part except `CONTRAIL_CNI_CONF_DIRS` (doctor reads the node
//! configuration the plugin reads).

pub mod doctor;
pub mod install;
mod report;

/// Exit code of a usage error (and of doctor's "could not check").
pub const EXIT_USAGE: i32 = 2;

/// Prints a usage error for subcommand `cmd` and returns [`EXIT_USAGE`].
fn usage_error(cmd: &str, msg: &str, usage: &str) -> i32 {
    eprintln!("contrail-k8s-cni {cmd}: {msg}\n\n{usage}");
    EXIT_USAGE
}

/// Text from files and the kernel for a terminal: control characters
/// escaped, so a planted name cannot rewrite the operator's screen.
fn clean(s: &str) -> String {
    crate::ids::escape_controls(s).into_owned()
}
