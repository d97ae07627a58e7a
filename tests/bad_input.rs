//! The bad-input catalogue: each test runs the real binary with a cleared
//! environment, controlled `CNI_*` variables and a node file in a temp dir
//! (log file and state dir inside it), and checks that the plugin fails the
//! CNI way: the expected code, exit 1 (not a panic, not a signal), exactly
//! one JSON error object on stdout, no "panicked" on stderr, and a log line.
//!
//! Everything here is rejected before `plugin::*` runs, except
//! `add_netns_regular_file`, which needs the plugin's netns check.

mod common;

use common::TempDir;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;

const GOOD_STDIN: &str = r#"{"cniVersion":"1.0.0","name":"net1","type":"contrail-k8s-cni"}"#;

/// One invocation: environment and stdin, starting from a valid ADD.
struct Req {
    vars: BTreeMap<String, String>,
    stdin: Vec<u8>,
    node: Option<String>,
}

impl Req {
    fn new(command: &str) -> Req {
        let vars = [
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", "c0ffee0123456789"),
            ("CNI_NETNS", "/run/netns/ccni-test-does-not-exist"),
            ("CNI_IFNAME", "eth0"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod1;K8S_POD_INFRA_CONTAINER_ID=c0ffee0123456789",
            ),
            ("CNI_PATH", "/nonexistent/cni/bin"),
        ];
        Req {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stdin: GOOD_STDIN.as_bytes().to_vec(),
            node: None,
        }
    }
    fn set(mut self, k: &str, v: &str) -> Req {
        self.vars.insert(k.into(), v.into());
        self
    }
    fn without(mut self, k: &str) -> Req {
        self.vars.remove(k);
        self
    }
    fn stdin(mut self, s: impl Into<Vec<u8>>) -> Req {
        self.stdin = s.into();
        self
    }
    /// Stdin with `contrail` set to `contrail_json`.
    fn contrail(self, contrail_json: &str) -> Req {
        self.stdin(format!(
            r#"{{"cniVersion":"1.0.0","name":"net1","contrail":{contrail_json}}}"#
        ))
    }
    /// Extra `contrail` keys for the node file (besides log-file etc.).
    fn node_extra(mut self, extra: &str) -> Req {
        self.node = Some(extra.into());
        self
    }

    /// Runs the binary and checks the common error contract; returns the
    /// error object.
    fn expect(self, code: u64, msg_has: &[&str]) -> Value {
        self.expect_logged(code, msg_has).0
    }

    /// [`Req::expect`], also returning the log file's content.
    fn expect_logged(self, code: u64, msg_has: &[&str]) -> (Value, String) {
        let dir = TempDir::new("bad");
        let log = dir.path().join("log/cni.log");
        let extra = self
            .node
            .as_deref()
            .map(|e| format!(",{e}"))
            .unwrap_or_default();
        std::fs::write(
            dir.path().join("10-contrail.conf"),
            format!(
                r#"{{"cniVersion":"1.0.0","name":"node","contrail":{{"log-file":"{}","config-dir":"{}","vrouter-port":1,"poll-timeout":1,"poll-retries":1{extra}}}}}"#,
                log.display(),
                dir.path().join("ports").display()
            ),
        )
        .unwrap();
        let conf_dirs = dir.path().display().to_string();
        let mut env: Vec<(&str, &str)> = vec![("CONTRAIL_CNI_CONF_DIRS", &conf_dirs)];
        env.extend(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let out = common::launch(&[], &env, &self.stdin);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ctx = format!("stdout={stdout:?} stderr={stderr:?}");

        assert_eq!(
            out.status.code(),
            Some(1),
            "exit status {:?}: {ctx}",
            out.status
        );
        assert!(!stderr.contains("panicked"), "{ctx}");
        let docs: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {ctx}"));
        assert_eq!(docs.len(), 1, "{ctx}");
        let err = docs.into_iter().next().unwrap();
        assert!(err["cniVersion"].is_string(), "{ctx}");
        assert_eq!(err["code"], code, "{ctx}");
        let msg = err["msg"]
            .as_str()
            .unwrap_or_else(|| panic!("no msg: {ctx}"));
        for want in msg_has {
            assert!(msg.contains(want), "msg lacks {want:?}: {ctx}");
        }
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            logged.contains(&format!("(code {code})")) && logged.contains("[ERROR]"),
            "no log line in {}: {logged:?}",
            log.display()
        );
        (err, logged)
    }
}

// --- environment: code 4 naming the variable ---

#[test]
fn add_missing_containerid() {
    Req::new("ADD")
        .without("CNI_CONTAINERID")
        .expect(4, &["CNI_CONTAINERID"]);
}

#[test]
fn add_missing_netns() {
    Req::new("ADD")
        .without("CNI_NETNS")
        .expect(4, &["CNI_NETNS"]);
}

#[test]
fn add_missing_ifname() {
    Req::new("ADD")
        .without("CNI_IFNAME")
        .expect(4, &["CNI_IFNAME"]);
}

#[test]
fn add_missing_all_names_every_variable() {
    Req::new("ADD")
        .without("CNI_CONTAINERID")
        .without("CNI_NETNS")
        .without("CNI_IFNAME")
        .expect(4, &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]);
}

#[test]
fn del_missing_containerid() {
    Req::new("DEL")
        .without("CNI_NETNS")
        .without("CNI_CONTAINERID")
        .expect(4, &["CNI_CONTAINERID"]);
}

#[test]
fn del_missing_ifname() {
    let e = Req::new("DEL")
        .without("CNI_IFNAME")
        .expect(4, &["CNI_IFNAME"]);
    // CNI_NETNS is optional on DEL and must not be named.
    assert!(!e["msg"].as_str().unwrap().contains("CNI_NETNS"));
}

#[test]
fn check_missing_netns() {
    Req::new("CHECK")
        .without("CNI_NETNS")
        .expect(4, &["CNI_NETNS"]);
}

#[test]
fn check_missing_containerid() {
    Req::new("CHECK")
        .without("CNI_CONTAINERID")
        .expect(4, &["CNI_CONTAINERID"]);
}

#[test]
fn empty_containerid_is_missing() {
    Req::new("ADD")
        .set("CNI_CONTAINERID", "")
        .expect(4, &["CNI_CONTAINERID"]);
}

#[test]
fn containerid_with_path_characters() {
    Req::new("ADD")
        .set("CNI_CONTAINERID", "abc/../x")
        .expect(4, &["CNI_CONTAINERID"]);
}

#[test]
fn containerid_leading_dash() {
    Req::new("DEL")
        .set("CNI_CONTAINERID", "-rf")
        .expect(4, &["CNI_CONTAINERID"]);
}

#[test]
fn ifname_too_long() {
    Req::new("ADD")
        .set("CNI_IFNAME", "0123456789abcdef")
        .expect(4, &["CNI_IFNAME"]);
}

#[test]
fn ifname_with_slash() {
    Req::new("ADD")
        .set("CNI_IFNAME", "a/b")
        .expect(4, &["CNI_IFNAME"]);
}

#[test]
fn ifname_dotdot() {
    Req::new("DEL")
        .set("CNI_IFNAME", "..")
        .expect(4, &["CNI_IFNAME"]);
}

#[test]
fn ifname_with_colon() {
    Req::new("CHECK")
        .set("CNI_IFNAME", "eth0:1")
        .expect(4, &["CNI_IFNAME"]);
}

#[test]
fn ifname_template() {
    Req::new("ADD")
        .set("CNI_IFNAME", "eth%d")
        .expect(4, &["CNI_IFNAME"]);
}

#[test]
fn netns_relative_path() {
    Req::new("ADD")
        .set("CNI_NETNS", "run/netns/x")
        .expect(4, &["CNI_NETNS"]);
}

#[test]
fn cni_args_pod_name_traversal() {
    Req::new("ADD")
        .set(
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=../x",
        )
        .expect(4, &["K8S_POD_NAME"]);
}

#[test]
fn cni_args_namespace_traversal() {
    Req::new("DEL")
        .set("CNI_ARGS", "K8S_POD_NAMESPACE=../../etc;K8S_POD_NAME=p")
        .expect(4, &["K8S_POD_NAMESPACE"]);
}

#[test]
fn cni_args_namespace_slash_and_upper_case() {
    Req::new("ADD")
        .set("CNI_ARGS", "K8S_POD_NAMESPACE=/")
        .expect(4, &["K8S_POD_NAMESPACE"]);
    Req::new("ADD")
        .set("CNI_ARGS", "K8S_POD_NAMESPACE=Default;K8S_POD_NAME=p")
        .expect(4, &["K8S_POD_NAMESPACE"]);
}

#[test]
fn cni_args_malformed_segment() {
    Req::new("ADD")
        .set("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME")
        .expect(4, &["CNI_ARGS"]);
}

#[test]
fn cni_args_bad_pod_uid() {
    Req::new("ADD")
        .set(
            "CNI_ARGS",
            "K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_UID=../x",
        )
        .expect(4, &["K8S_POD_UID"]);
}

#[test]
fn unknown_command() {
    Req::new("FOO").expect(4, &["CNI_COMMAND"]);
}

#[test]
fn empty_command() {
    Req::new("").expect(4, &["CNI_COMMAND"]);
}

#[test]
fn lower_case_command() {
    Req::new("add").expect(4, &["CNI_COMMAND"]);
}

/// The environment is checked before stdin, as skel does.
#[test]
fn env_error_wins_over_bad_stdin() {
    Req::new("ADD")
        .without("CNI_IFNAME")
        .stdin("not json")
        .expect(4, &["CNI_IFNAME"]);
}

// --- stdin that cannot be decoded: code 6 ---

#[test]
fn stdin_empty() {
    Req::new("ADD").stdin("").expect(6, &["empty"]);
}

#[test]
fn stdin_not_json() {
    Req::new("ADD").stdin("cniVersion=1.0.0").expect(6, &[]);
}

#[test]
fn stdin_json_array() {
    Req::new("DEL")
        .stdin(r#"[{"cniVersion":"1.0.0"}]"#)
        .expect(6, &["object"]);
}

#[test]
fn stdin_over_one_mib() {
    let big = format!(
        r#"{{"cniVersion":"1.0.0","name":"n","pad":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    Req::new("ADD").stdin(big).expect(6, &["larger"]);
}

#[test]
fn stdin_deeply_nested() {
    Req::new("ADD").stdin("[".repeat(100_000)).expect(6, &[]);
    let deep = format!(
        r#"{{"cniVersion":"1.0.0","name":"n","x":{}{}}}"#,
        "{\"a\":".repeat(5000),
        "}".repeat(5000)
    );
    Req::new("ADD").stdin(deep).expect(6, &[]);
}

#[test]
fn stdin_nul_bytes() {
    Req::new("ADD")
        .stdin(b"{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}\0".to_vec())
        .expect(6, &["NUL"]);
}

#[test]
fn stdin_not_utf8() {
    Req::new("ADD")
        .stdin(b"{\"cniVersion\":\"1.0.0\",\"name\":\"n\xff\"}".to_vec())
        .expect(6, &[]);
}

#[test]
fn cni_version_not_a_string() {
    Req::new("ADD")
        .stdin(r#"{"cniVersion":1.0,"name":"n"}"#)
        .expect(6, &["cniVersion"]);
}

// --- configuration values: code 7 naming the key ---

#[test]
fn mtu_not_a_number() {
    Req::new("ADD")
        .contrail(r#"{"mtu":"x"}"#)
        .expect(7, &["mtu"]);
}

#[test]
fn mtu_too_large() {
    Req::new("ADD")
        .contrail(r#"{"mtu":70000}"#)
        .expect(7, &["mtu"]);
}

#[test]
fn vrouter_port_zero() {
    // The node file sets vrouter-port, so stdin's value is ignored with a
    // warning; check the node file's own validation instead.
    Req::new("ADD")
        .node_extra(r#""vrouter-port":0"#)
        .expect(7, &["vrouter-port", "10-contrail.conf"]);
}

#[test]
fn vif_type_unknown() {
    Req::new("ADD")
        .node_extra(r#""vif-type":"foo""#)
        .expect(7, &["vif-type", "10-contrail.conf"]);
}

#[test]
fn mode_unknown() {
    Req::new("DEL")
        .node_extra(r#""mode":"bar""#)
        .expect(7, &["mode", "10-contrail.conf"]);
}

#[test]
fn contrail_not_an_object() {
    Req::new("ADD")
        .contrail(r#""k8s""#)
        .expect(7, &["contrail"]);
}

#[test]
fn name_missing() {
    Req::new("ADD")
        .stdin(r#"{"cniVersion":"1.0.0"}"#)
        .expect(7, &["name"]);
}

#[test]
fn name_invalid() {
    Req::new("ADD")
        .stdin(r#"{"cniVersion":"1.0.0","name":"../net"}"#)
        .expect(7, &["name"]);
}

#[test]
fn gc_attachments_not_a_list() {
    Req::new("GC")
        .stdin(
            r#"{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":{"containerID":"a"}}"#,
        )
        .expect(7, &["valid-attachments"]);
}

#[test]
fn node_file_bad_value_names_the_file() {
    Req::new("ADD")
        .node_extra(r#""mtu":"x""#)
        .expect(7, &["10-contrail.conf", "mtu"]);
}

/// Under a node file, stdin cannot move the log (or the state dir, or the
/// agent): the line lands in the node file's log, with a warning.
#[test]
fn stdin_cannot_move_the_log_file() {
    let elsewhere = TempDir::new("evil-log");
    let evil = elsewhere.path().join("evil.log");
    let (_, logged) = Req::new("ADD")
        .stdin(format!(
            r#"{{"cniVersion":"9.9.9","name":"n","contrail":{{"log-file":"{}","config-dir":"/tmp/x","vrouter-port":9091}}}}"#,
            evil.display()
        ))
        .expect_logged(1, &[]);
    assert!(!evil.exists());
    for key in ["log-file", "config-dir", "vrouter-port"] {
        assert!(
            logged.contains("[WARN]") && logged.contains(key),
            "{logged}"
        );
    }
}

// --- versions: code 1 ---

#[test]
fn unsupported_version() {
    let e = Req::new("ADD")
        .stdin(r#"{"cniVersion":"9.9.9","name":"n"}"#)
        .expect(1, &[]);
    let details = e["details"].as_str().unwrap();
    assert!(
        details.contains("9.9.9") && details.contains("1.1.0"),
        "{details}"
    );
    assert_eq!(e["cniVersion"], "1.1.0");
}

#[test]
fn unsupported_short_version() {
    Req::new("ADD")
        .stdin(r#"{"cniVersion":"1.0","name":"n"}"#)
        .expect(1, &[]);
}

#[test]
fn check_under_0_3_1() {
    let e = Req::new("CHECK")
        .stdin(r#"{"cniVersion":"0.3.1","name":"n"}"#)
        .expect(1, &["CHECK"]);
    assert_eq!(e["cniVersion"], "0.3.1");
}

#[test]
fn check_without_version_is_0_1_0() {
    Req::new("CHECK")
        .stdin(r#"{"name":"n"}"#)
        .expect(1, &["CHECK"]);
}

#[test]
fn status_under_1_0_0() {
    Req::new("STATUS")
        .stdin(r#"{"cniVersion":"1.0.0","name":"n"}"#)
        .expect(1, &["STATUS"]);
}

#[test]
fn gc_under_1_0_0() {
    Req::new("GC")
        .stdin(r#"{"cniVersion":"1.0.0","name":"n"}"#)
        .expect(1, &["GC"]);
}

/// Config validation (7) comes before the version gate (1), as in skel.
#[test]
fn config_error_wins_over_version() {
    Req::new("ADD")
        .stdin(r#"{"cniVersion":"9.9.9","contrail":{"mtu":1}}"#)
        .expect(7, &["name"]);
}

// --- needs plugin::add and NetNs::open (lead, netlink owner) ---

/// CNI_NETNS naming a regular file is code 4. Passes once `plugin::add`
/// opens and checks the namespace (after the merge); before that the
/// plugin is a stub.
#[test]
fn add_netns_regular_file() {
    let dir = TempDir::new("netns-file");
    let file = dir.path().join("not-a-netns");
    std::fs::write(&file, "x").unwrap();
    Req::new("ADD")
        .set("CNI_NETNS", file.to_str().unwrap())
        .expect(4, &["CNI_NETNS"]);
}

/// A FIFO as CNI_NETNS is code 4 at once, never a hang in open(). Should
/// the plugin ever open it for reading again, a watchdog opens the other
/// end after 10 s so the test fails instead of hanging.
#[test]
fn add_netns_fifo() {
    let dir = TempDir::new("netns-fifo");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let other_end = fifo.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(10));
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(other_end);
    });
    Req::new("ADD")
        .set("CNI_NETNS", fifo.to_str().unwrap())
        .expect(4, &["CNI_NETNS", "FIFO"]);
}

/// The plugin's own network namespace is the host's, never a pod's.
#[test]
fn add_netns_own_namespace() {
    for own in ["/proc/self/ns/net", "/proc/thread-self/ns/net"] {
        Req::new("ADD")
            .set("CNI_NETNS", own)
            .expect(4, &["CNI_NETNS", "own network namespace"]);
    }
}
