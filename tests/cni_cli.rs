//! The command line outside the CNI commands proper: VERSION, `--version`,
//! `--help`, a bare run. None of these read the node file or write a log.

mod common;

use serde_json::Value;
use std::process::Output;

const SEVEN: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

fn run(args: &[&str], vars: &[(&str, &str)], stdin: &[u8]) -> Output {
    // Any node-file lookup would fail loudly instead of reading /etc.
    let mut env = vec![("CONTRAIL_CNI_CONF_DIRS", "/nonexistent-ccni")];
    env.extend_from_slice(vars);
    common::launch(args, &env, stdin)
}

fn version_reply(vars: &[(&str, &str)], stdin: &[u8]) -> Value {
    let out = run(&[], vars, stdin);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["supportedVersions"], serde_json::json!(SEVEN));
    v
}

#[test]
fn version_with_empty_stdin_and_no_other_env() {
    let v = version_reply(&[("CNI_COMMAND", "VERSION")], b"");
    assert_eq!(v["cniVersion"], "1.1.0");
}

#[test]
fn version_with_garbage_stdin() {
    let v = version_reply(&[("CNI_COMMAND", "VERSION")], b"\0\xff[[[[not json");
    assert_eq!(v["cniVersion"], "1.1.0");
}

#[test]
fn version_echoes_the_input_version() {
    for input in ["0.2.0", "1.0.0", "9.9.9"] {
        let stdin = format!(r#"{{"cniVersion":"{input}"}}"#);
        let v = version_reply(&[("CNI_COMMAND", "VERSION")], stdin.as_bytes());
        assert_eq!(v["cniVersion"], input);
    }
}

/// What libcni 1.1.2 sends: dummy NETNS/IFNAME/PATH, empty id and args.
#[test]
fn version_ignores_libcni_dummies() {
    let v = version_reply(
        &[
            ("CNI_COMMAND", "VERSION"),
            ("CNI_NETNS", "dummy"),
            ("CNI_IFNAME", "dummy"),
            ("CNI_PATH", "dummy"),
            ("CNI_CONTAINERID", ""),
            ("CNI_ARGS", ""),
        ],
        br#"{"cniVersion":"1.0.0"}"#,
    );
    assert_eq!(v["cniVersion"], "1.0.0");
}

#[test]
fn version_flag() {
    for flag in ["--version", "-v"] {
        let out = run(&[flag], &[], b"");
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
        for v in SEVEN {
            assert!(text.contains(v), "{text}");
        }
    }
}

#[test]
fn help_flag_and_unknown_flag() {
    let out = run(&["--help"], &[], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CNI_COMMAND"));
    let out = run(&["--bogus"], &[], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// No CNI_COMMAND at all: the skel "about" text on stderr, nothing on
/// stdout, exit 0.
#[test]
fn bare_run_prints_about() {
    let out = run(&[], &[], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CNI protocol versions supported: 0.1.0"),
        "{err}"
    );
}

/// Many plugin processes logging and rotating one file at once: every line
/// stays whole (one write(2) per line, O_APPEND) and rotation keeps at most
/// `log-max-files` old files.
#[test]
fn concurrent_processes_share_and_rotate_the_log() {
    let dir = std::env::temp_dir().join(format!("ccni-cli-rot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("cni.log");
    std::fs::write(
        dir.join("10-contrail.conf"),
        format!(
            r#"{{"contrail":{{"log-file":"{}","log-max-size":600,"log-max-files":2}}}}"#,
            log.display()
        ),
    )
    .unwrap();
    let runs: Vec<_> = (0..24)
        .map(|i| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let (dir, cid) = (dir.display().to_string(), format!("c{i}"));
                let env = [
                    ("CONTRAIL_CNI_CONF_DIRS", dir.as_str()),
                    ("CNI_COMMAND", "DEL"),
                    ("CNI_CONTAINERID", cid.as_str()),
                ];
                let out = common::launch(&[], &env, b"");
                assert_eq!(out.status.code(), Some(1), "{out:?}");
            })
        })
        .collect();
    for r in runs {
        r.join().unwrap();
    }
    let mut lines = 0;
    for name in ["cni.log", "cni.log.1", "cni.log.2"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        for line in text.lines() {
            lines += 1;
            assert!(
                line.starts_with("20") && line.contains(" [ERROR] ") && line.contains(" DEL c"),
                "torn line in {name}: {line:?}"
            );
        }
    }
    assert!(lines > 0);
    assert!(!dir.join("cni.log.3").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
