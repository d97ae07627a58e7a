//! The binary kubelet executes: read the environment and stdin, validate,
//! dispatch to `plugin::*`, print exactly one JSON document, exit.
//!
//! Order of checks (it decides the error code when several things are
//! wrong; it follows the reference skel: environment first, then stdin):
//! 1. `CNI_COMMAND`: unset -> about line on stderr, exit 0 (skel); set but
//!    empty, unknown or not UTF-8 -> code 4.
//! 2. VERSION: answered from `cniVersion` of stdin alone; nothing else is
//!    read or checked, garbage stdin is fine.
//! 3. The command's environment variables ([`Env::from_env`]) -> code 4.
//! 4. stdin, at most 1 MiB: read failure -> 5; larger, empty or not a JSON
//!    object -> 6 ([`config::load`]).
//! 5. The configuration (name, node file, `contrail` keys) -> 7.
//! 6. Logging starts with the merged configuration.
//! 7. The version gate: unsupported `cniVersion`, CHECK below 0.4.0, STATUS
//!    and GC below 1.1.0 -> 1. Then `plugin::*`.
//!
//! Every error is one JSON object on stdout (`cniVersion` is the config's
//! when it is known and supported, else 1.1.0), one log line, exit 1. When
//! the configuration could not be loaded, the log line goes where the node
//! file (or the default) says. A panic hook is the last resort: it prints a
//! code 999 error instead of a Rust backtrace, so stdout stays parseable.

use contrail_cni::cni::args::{Command, Env};
use contrail_cni::cni::error::{code, Error, Result};
use contrail_cni::cni::version::{self, LATEST, SUPPORTED};
use contrail_cni::config::{self, MAX_INPUT};
use contrail_cni::ids::printable;
use contrail_cni::logging;
use contrail_cni::ops;
use contrail_cni::plugin::{self, Request};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The `cniVersion` the error JSON carries; updated once the config is known.
static ERROR_VERSION: Mutex<String> = Mutex::new(String::new());
/// Set once something was printed on stdout: the panic hook must not add a
/// second document.
static STDOUT_USED: AtomicBool = AtomicBool::new(false);
/// Set once the logger is installed (with the request's config or the
/// fallback).
static LOGGING_UP: AtomicBool = AtomicBool::new(false);

const HELP: &str = "\
Usage: contrail-k8s-cni [--version | --help]
       contrail-k8s-cni install [--bin-dir DIR] [--conf-dir DIR] [--conf FILE|-] [--force] [--dry-run]
       contrail-k8s-cni doctor [--json]

A CNI plugin for the Tungsten Fabric / OpenSDN vRouter. Container runtimes run
it without arguments, with CNI_COMMAND (ADD, DEL, CHECK, VERSION, STATUS, GC)
and the other CNI_* variables set, and the network configuration on stdin.

Operator commands (`contrail-k8s-cni install --help` tells more):
  install   copy this binary to /opt/cni/bin and write the node configuration
            /etc/cni/net.d/10-contrail.conflist (kept when one exists)
  doctor    report the node's health: configuration, agent, pods, leaks
            (read-only; exit 0 healthy, 1 problems, 2 could not check)

Node configuration: the first *contrail.conf, *tf-cni.conf or
*contrail*.conflist file in /etc/cni/net.d, else /etc/kubernetes/cni/net.d
(CONTRAIL_CNI_CONF_DIRS overrides the directories).";

fn main() {
    install_panic_hook();
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(first) = args.first() {
        std::process::exit(subcommand(first, &args[1..]));
    }
    let command = match std::env::var_os("CNI_COMMAND") {
        None => {
            eprintln!("{}", about());
            std::process::exit(0);
        }
        Some(c) => c
            .into_string()
            .map_err(|_| Error::new(code::INVALID_ENV, "CNI_COMMAND is not valid UTF-8")),
    };
    let command = command.and_then(|c| Command::parse(&c));
    if command == Ok(Command::Version) {
        let stdin = read_stdin().unwrap_or_default();
        let input = peek_version(&stdin).unwrap_or_default();
        emit(&version::version_reply(&input));
        std::process::exit(0);
    }
    match command.and_then(run) {
        Ok(Some(out)) => emit(&out),
        Ok(None) => {}
        Err(e) => {
            ensure_logging();
            log::error!("{e}");
            emit(&e.to_json(&error_version()));
            log::logger().flush();
            std::process::exit(1);
        }
    }
    log::logger().flush();
}

/// `install`, `doctor` (their own `--help` included), `--version`/`-v`,
/// `--help`/`-h`; anything else is a usage error (2).
fn subcommand(arg: &str, rest: &[String]) -> i32 {
    let help = matches!(rest.first().map(String::as_str), Some("--help" | "-h"));
    match arg {
        "install" if help => println!("{}", ops::install::USAGE),
        "doctor" if help => println!("{}", ops::doctor::USAGE),
        "install" => return ops::install::main(rest),
        "doctor" => return ops::doctor::main(rest),
        _ => return flag(arg),
    }
    0
}

/// `--version`/`-v`, `--help`/`-h`; anything else is a usage error (2).
fn flag(arg: &str) -> i32 {
    match arg {
        "--version" | "-v" => {
            println!("{}", about());
            0
        }
        "--help" | "-h" => {
            println!("{HELP}");
            0
        }
        _ => {
            eprintln!("unknown argument {}\n\n{HELP}", printable(arg, 64));
            2
        }
    }
}

fn about() -> String {
    format!(
        "CNI contrail-k8s-cni plugin {}\nCNI protocol versions supported: {}",
        env!("CARGO_PKG_VERSION"),
        SUPPORTED.join(", ")
    )
}

/// Steps 3 to 7 of the module comment.
fn run(command: Command) -> Result<Option<String>> {
    let env = Env::from_env(command)?;
    let stdin = read_stdin()?;
    if let Some(v) = peek_version(&stdin).filter(|v| version::is_supported(v)) {
        set_error_version(&v);
    }
    let (conf, warnings) = config::load_verbose(&stdin)?;
    let cid = env.target.as_ref().map(|t| t.container_id.as_str());
    logging::init(&conf.contrail, command.as_str(), cid.unwrap_or_default());
    LOGGING_UP.store(true, Ordering::SeqCst);
    for w in &warnings {
        log::warn!("{w}");
    }
    version::check_command(&conf.cni_version, command)?;
    set_error_version(&conf.cni_version);
    match &env.target {
        Some(t) => log::info!(
            "cniVersion={} name={} netns={} ifname={} pod={}/{}",
            conf.cni_version,
            conf.name,
            t.netns.as_deref().unwrap_or("-"),
            t.ifname,
            t.args.pod_namespace.as_deref().unwrap_or("-"),
            t.args.pod_name.as_deref().unwrap_or("-"),
        ),
        None => log::info!("cniVersion={} name={}", conf.cni_version, conf.name),
    }
    // stdin may hold secrets (Multus passes user-written NADs): debug only.
    log::debug!("stdin: {}", conf.raw.trim_end());

    let started = std::time::Instant::now();
    let req = Request { env, conf };
    let out = match command {
        Command::Add => plugin::add(&req)
            .and_then(|r| r.to_json(&req.conf.cni_version))
            .map(|v| Some(v.to_string())),
        Command::Del => plugin::del(&req).map(|()| None),
        Command::Check => plugin::check(&req).map(|()| None),
        Command::Status => plugin::status(&req).map(|()| None),
        Command::Gc => plugin::gc(&req).map(|()| None),
        Command::Version => Ok(Some(version::version_reply(&req.conf.cni_version))),
    }?;
    log::info!(
        "{} ok in {} ms",
        command.as_str(),
        started.elapsed().as_millis()
    );
    Ok(out)
}

/// Reads stdin up to [`MAX_INPUT`] + 1 bytes, so `config::load` can tell
/// "too large" (code 6) from "exactly the limit". Read failures are code 5.
fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::new(code::IO, format!("cannot read stdin: {e}")))?;
    Ok(buf)
}

/// `cniVersion` of stdin, when stdin is a JSON object with a string there.
fn peek_version(stdin: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(stdin).ok()?;
    v.get("cniVersion")?.as_str().map(String::from)
}

/// Installs the fallback logger when the request's config never got that
/// far: the failure is still logged where the node file (or the default)
/// says.
fn ensure_logging() {
    if LOGGING_UP.swap(true, Ordering::SeqCst) {
        return;
    }
    let cid = std::env::var("CNI_CONTAINERID").unwrap_or_default();
    let cmd = std::env::var("CNI_COMMAND").unwrap_or_default();
    logging::init(
        &config::fallback_contrail(&config::conf_dirs()),
        &tag_safe(&cmd, 16),
        &tag_safe(&cid, 64),
    );
}

/// Raw env text for the log tag: only id characters, bounded.
fn tag_safe(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn set_error_version(v: &str) {
    if let Ok(mut g) = ERROR_VERSION.lock() {
        *g = v.to_string();
    }
}

fn error_version() -> String {
    // try_lock: the panic hook must never wait on a lock.
    match ERROR_VERSION.try_lock() {
        Ok(g) if !g.is_empty() => g.clone(),
        // "" would be 0.1.0; errors without a known config use the newest.
        _ => LATEST.to_string(),
    }
}

/// Prints the one stdout document.
fn emit(doc: &str) {
    STDOUT_USED.store(true, Ordering::SeqCst);
    let mut out = std::io::stdout().lock();
    // Nothing useful can be done when stdout is gone.
    let _ = writeln!(out, "{doc}").and_then(|()| out.flush());
}

/// Replaces Rust's panic output with a CNI error (code 999) on stdout and a
/// "panicked" line on stderr and in the log, then exits 1. Release builds
/// abort on panic, so the hook must exit itself.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("internal error: {info}");
        eprintln!("contrail-k8s-cni panicked: {info}");
        ensure_logging();
        log::error!("panicked: {info}");
        log::logger().flush();
        if !STDOUT_USED.swap(true, Ordering::SeqCst) {
            let e = Error::new(code::INTERNAL, msg);
            let _ = writeln!(std::io::stdout(), "{}", e.to_json(&error_version()));
        }
        std::process::exit(1);
    }));
}
