//! Logging to a size-rotated file (simplelog), stderr when it cannot be opened.
//!
//! Every plugin run is a short process, and many run at once. So:
//! * rotation happens once, at startup, under an `flock` on `<log>.lock`,
//!   and only when the file has reached `log-max-size`: `.N-1` -> `.N` ...
//!   `log` -> `log.1`; the rename onto `.N` drops the oldest;
//! * the file is opened `O_APPEND` behind a `LineWriter`, so each line is one
//!   `write(2)` and lines of concurrent processes never interleave;
//! * the directory is created 0700 and the files 0600 (they can hold pod
//!   names and, at debug, the config);
//! * no open follows a symlink or blocks on a FIFO planted at the log's or
//!   the lock's name, and a log that is not a regular file is not used;
//! * control characters in a message (a newline in a tenant's config) are
//!   escaped, so one record is one line and cannot forge another.
//!
//! Line format: `<RFC 3339 UTC time> [LEVEL] <pid> <COMMAND> <container id> <message>`.

use crate::config::Contrail;
use log::{LevelFilter, Log, Metadata, Record};
use simplelog::{ConfigBuilder, LevelPadding, WriteLogger};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{LineWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Installs the global logger. Each line carries time, level, pid, command
/// and container id. Never fails: falls back to stderr. A second call in the
/// same process does nothing.
pub fn init(conf: &Contrail, command: &str, container_id: &str) {
    let level = conf.log_level;
    let sink: Box<dyn Write + Send> =
        match open(&conf.log_file, conf.log_max_size, conf.log_max_files) {
            Ok(file) => Box::new(LineWriter::new(file)),
            Err(e) => {
                eprintln!(
                    "contrail-k8s-cni: cannot open log file {}: {e}; logging to stderr",
                    conf.log_file.display()
                );
                Box::new(std::io::stderr())
            }
        };
    let config = ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        .set_level_padding(LevelPadding::Off)
        // ureq logs requests and bodies at debug; the agent client logs
        // what matters itself.
        .add_filter_ignore_str("ureq")
        .build();
    let logger = Tagged {
        inner: WriteLogger::new(level, config, sink),
        tag: format!(
            "{} {command} {}",
            std::process::id(),
            if container_id.is_empty() {
                "-"
            } else {
                container_id
            }
        ),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

/// Adds the per-process tag (pid, command, container id) to every message.
struct Tagged {
    inner: Box<WriteLogger<Box<dyn Write + Send>>>,
    tag: String,
}

impl Log for Tagged {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        let msg = escape_controls(&text);
        self.inner.log(
            &Record::builder()
                .args(format_args!("{} {msg}", self.tag))
                .metadata(record.metadata().clone())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// `s` with every control character (newline, carriage return, escape...)
/// written as a Rust escape.
fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Opens `path` for appending (created 0600 when absent) without following
/// a symlink or blocking on a FIFO, and only when it is a regular file.
fn open_append(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// Creates the directory, rotates when due, opens the log for appending.
fn open(path: &Path, max_size: u64, max_files: u32) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    if max_size > 0 && size(path) >= max_size {
        // A failed rotation must not cost the log line: keep appending.
        let _ = rotate(path, max_size, max_files);
    }
    open_append(path)
}

fn size(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .map(|m| m.len())
        .unwrap_or(0)
}

/// `<log>.<n>`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Shifts the rotated files under the lock. The size is checked again once
/// the lock is held: another process may have rotated meanwhile.
fn rotate(path: &Path, max_size: u64, max_files: u32) -> std::io::Result<()> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = open_append(&PathBuf::from(lock_path))?;
    // Released when the returned guard drops, at the end of this function.
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| std::io::Error::from(errno))?;
    if size(path) < max_size {
        return Ok(());
    }
    if max_files == 0 {
        return std::fs::remove_file(path);
    }
    for n in (1..max_files).rev() {
        match std::fs::rename(numbered(path, n), numbered(path, n + 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, numbered(path, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rotation_shifts_and_drops_the_oldest() {
        let t = TempDir::new("log-rot");
        let dir = t.path();
        let log = dir.join("sub/cni.log");
        for round in 0..5 {
            let mut f = open(&log, 10, 3).unwrap();
            writeln!(f, "round {round} ....").unwrap();
        }
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(log.clone()), "round 4 ....\n");
        assert_eq!(read(numbered(&log, 1)), "round 3 ....\n");
        assert_eq!(read(numbered(&log, 3)), "round 1 ....\n");
        assert!(!numbered(&log, 4).exists());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&log), 0o600);
        assert_eq!(mode(log.parent().unwrap()), 0o700);
    }

    #[test]
    fn planted_symlinks_and_fifos_are_not_followed() {
        let t = TempDir::new("log-planted");
        let dir = t.path();
        let decoy = dir.join("decoy");
        std::fs::write(&decoy, "keep").unwrap();
        let log = dir.join("cni.log");
        std::os::unix::fs::symlink(&decoy, &log).unwrap();
        assert!(open(&log, 0, 3).is_err(), "a symlink is not followed");
        std::fs::remove_file(&log).unwrap();
        // A symlink at the lock's name: rotation fails, the log still opens.
        std::fs::write(&log, "x".repeat(20)).unwrap();
        std::os::unix::fs::symlink(&decoy, dir.join("cni.log.lock")).unwrap();
        assert!(open(&log, 10, 3).is_ok());
        assert!(!numbered(&log, 1).exists(), "no rotation without the lock");
        std::fs::remove_file(&log).unwrap();
        nix::unistd::mkfifo(&log, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(
            open(&log, 0, 3).is_err(),
            "a FIFO neither blocks nor is used"
        );
        assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "keep");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain"), "plain");
        assert_eq!(
            escape_controls("a\n* * * * * root x\r\u{1b}[2J"),
            "a\\n* * * * * root x\\r\\u{1b}[2J"
        );
    }

    #[test]
    fn no_rotation_below_the_limit_or_when_disabled() {
        let t = TempDir::new("log-norot");
        let dir = t.path();
        let log = dir.join("cni.log");
        for _ in 0..3 {
            writeln!(open(&log, 0, 3).unwrap(), "line").unwrap();
        }
        writeln!(open(&log, 1 << 20, 3).unwrap(), "line").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 4);
        assert!(!numbered(&log, 1).exists());
    }
}
