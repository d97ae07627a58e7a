//! Logging to a size-rotated file, stderr when it cannot be opened.
//!
//! Every plugin run is a short process, and many run at once. So:
//! * rotation happens once, at startup, under an `flock` on `<log>.lock`,
//!   and only when the file has reached `log-max-size`: `.N-1` -> `.N` ...
//!   `log` -> `log.1`; the rename onto `.N` drops the oldest;
//! * the file is opened `O_APPEND` and each line, however long, is one
//!   `write(2)`, so lines of concurrent processes never interleave;
//! * the directory is created 0700 and the files 0600 (they can hold pod
//!   names and, at debug, the config);
//! * no open follows a symlink or blocks on a FIFO planted at the log's or
//!   the lock's name, and a log that is not a regular file is not used;
//! * control characters in a message (a newline in a tenant's config) are
//!   escaped, so one record is one line and cannot forge another.
//!
//! Line format: `<RFC 3339 UTC time> [LEVEL] <pid> <COMMAND> <container id> <message>`,
//! e.g. `2024-05-01T12:34:56.123456Z [INFO] 4242 ADD 0123abcd ADD k8s__ns__pod ...`.
//!
//! simplelog's `CombinedLogger` is the global logger (level filter,
//! dispatch); the one logger it drives, [`Tagged`], composes and writes the
//! line. simplelog's own `WriteLogger` formats through the `time` crate
//! even when told to print no time: 24.5 KB of the static binary
//! (docs/performance.md).

use crate::config::Contrail;
use crate::ids::escape_controls;
use log::{LevelFilter, Log, Metadata, Record};
use simplelog::{CombinedLogger, SharedLogger};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Installs the global logger. Each line carries time, level, pid, command
/// and container id. Never fails: falls back to stderr. A second call in the
/// same process does nothing.
pub fn init(conf: &Contrail, command: &str, container_id: &str) {
    let out: Box<dyn Write + Send> =
        match open(&conf.log_file, conf.log_max_size, conf.log_max_files) {
            Ok(file) => Box::new(file),
            Err(e) => {
                eprintln!(
                    "contrail-k8s-cni: cannot open log file {}: {e}; logging to stderr",
                    conf.log_file.display()
                );
                Box::new(std::io::stderr())
            }
        };
    let cid = if container_id.is_empty() {
        "-"
    } else {
        container_id
    };
    let logger = Tagged {
        level: conf.log_level,
        out: Mutex::new(out),
        tag: format!("{} {command} {cid}", std::process::id()),
    };
    // Sets the maximum level too; fails only when a logger is installed.
    let _ = CombinedLogger::init(vec![Box::new(logger)]);
}

/// Writes every record at or above `level` as one line: time, level, the
/// per-process tag (pid, command, container id) and the message, control
/// characters escaped.
struct Tagged {
    level: LevelFilter,
    out: Mutex<Box<dyn Write + Send>>,
    tag: String,
}

impl Tagged {
    /// The whole line, newline included, for one `write(2)`.
    fn line(&self, record: &Record) -> String {
        let text = record.args().to_string();
        format!(
            "{} [{}] {} {}\n",
            rfc3339(std::time::SystemTime::now()),
            record.level().as_str(),
            self.tag,
            escape_controls(&text)
        )
    }
}

impl Log for Tagged {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // ureq logs requests and bodies at debug; the agent client logs
        // what matters itself.
        metadata.level() <= self.level && !metadata.target().starts_with("ureq")
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = self.line(record);
        if let Ok(mut out) = self.out.lock() {
            // Nothing useful can be done when the log cannot be written.
            let _ = out.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

impl SharedLogger for Tagged {
    fn level(&self) -> LevelFilter {
        self.level
    }

    fn config(&self) -> Option<&simplelog::Config> {
        None
    }

    fn as_log(self: Box<Self>) -> Box<dyn Log> {
        self
    }
}

/// `t` as RFC 3339 in UTC with microseconds, e.g.
/// `2024-05-01T12:34:56.123456Z` (times before 1970 print as 1970).
fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm,
    // shifted so that years start on March 1st).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
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
    fn timestamps_are_rfc3339_utc() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |s: u64, us: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_micros(us))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_714_566_896, 123_456), "2024-05-01T12:34:56.123456Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
        assert_eq!(at(253_402_300_799, 0), "9999-12-31T23:59:59.000000Z");
    }

    #[test]
    fn each_line_is_one_write_and_ureq_is_filtered() {
        #[derive(Clone, Default)]
        struct Calls(std::sync::Arc<Mutex<Vec<Vec<u8>>>>);
        impl Write for Calls {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().push(b.to_vec());
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let calls = Calls::default();
        let logger = Tagged {
            level: LevelFilter::Info,
            out: Mutex::new(Box::new(calls.clone())),
            tag: "42 ADD c0ffee".into(),
        };
        let long = "x".repeat(5000);
        let record = |level, target: &str, text: &str| {
            logger.log(
                &Record::builder()
                    .level(level)
                    .target(target)
                    .args(format_args!("{text}"))
                    .build(),
            )
        };
        record(log::Level::Info, "contrail_cni", &format!("a {long}\nb"));
        record(log::Level::Debug, "contrail_cni", "hidden");
        record(log::Level::Warn, "ureq::run", "hidden");
        let got = calls.0.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "one write per line, nothing else");
        let line = String::from_utf8(got[0].clone()).unwrap();
        assert!(line.ends_with(&format!(" [INFO] 42 ADD c0ffee a {long}\\nb\n")));
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(&line[26..28], "Z ", "{line}");
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
