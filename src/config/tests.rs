use super::*;
use crate::testutil::TempDir;
use std::os::unix::fs::PermissionsExt;

/// A temp dir holding node configuration files; removed on drop (the
/// `TempDir` is held for that).
struct Dir(PathBuf, #[allow(dead_code)] TempDir);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Dir {
        let t = TempDir::new("config");
        for (name, body) in files {
            let f = t.path().join(name);
            std::fs::write(&f, body).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        Dir(t.path().to_path_buf(), t)
    }
    fn load(&self, stdin: &str) -> Result<(NetConf, Vec<String>)> {
        load_from(stdin.as_bytes(), std::slice::from_ref(&self.0))
    }
}

const NODE_ALL_KEYS: &str = r#"{"cniVersion":"0.3.1","name":"contrail-k8s-cni","type":"contrail-k8s-cni",
    "contrail":{"cluster-name":"c1","mode":"k8s","meta-plugin":"multus","vif-type":"macvlan",
    "parent-interface":"eth1","mtu":1400,"vrouter-ip":"10.0.0.1","vrouter-port":"9092",
    "config-dir":"/tmp/x","poll-timeout":5,"poll-retries":15,"log-file":"/tmp/l.log",
    "log-level":"4","mesos-ip":"","mesos-port":"6991","network-name":"n","unknown":[1],
    "v6-prefix-len":64,"delegate":true,"log-max-size":"1024","log-max-files":3}}"#;

#[test]
fn defaults_without_node_file() {
    let d = Dir::new(&[]);
    let (c, w) = d.load(r#"{"name":"net"}"#).unwrap();
    assert_eq!(c.cni_version, "0.1.0");
    assert_eq!(c.contrail, Contrail::default());
    assert_eq!(c.node_file, None);
    assert!(w.is_empty());
    assert_eq!(c.prev_result, None);
    assert_eq!(c.valid_attachments, None);
    assert_eq!(c.contrail.vrouter().to_string(), "127.0.0.1:9091");
    assert_eq!(c.contrail.mesos(), None);
}

#[test]
fn the_reference_node_file_sets_every_key() {
    let d = Dir::new(&[("10-contrail.conf", NODE_ALL_KEYS)]);
    let (c, w) = d.load(r#"{"cniVersion":"0.3.1","name":"n"}"#).unwrap();
    let k = &c.contrail;
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.node_file, Some(d.0.join("10-contrail.conf")));
    assert_eq!(k.cluster_name, "c1");
    assert_eq!(k.vif_type, VifType::Macvlan);
    assert_eq!(k.parent_interface, "eth1");
    assert_eq!(k.mtu, 1400);
    assert_eq!(k.vrouter().to_string(), "10.0.0.1:9092");
    assert_eq!(k.mesos_port, Some(6991));
    assert_eq!(k.mesos(), None, "mesos-ip \"\" is unset");
    assert_eq!(k.log_level, LevelFilter::Debug);
    assert_eq!(k.log_max_size, 1024);
    assert_eq!(k.v6_prefix_len, Some(64));
    assert_eq!(k.delegate, Some(true));
    assert_eq!(k.poll_budget(), Duration::from_secs(75));
}

/// Every node-only key in stdin is ignored with a warning when it differs;
/// the keys stdin may set are applied.
#[test]
fn stdin_cannot_change_node_only_keys() {
    let d = Dir::new(&[(
        "10-contrail.conf",
        r#"{"contrail":{"log-file":"/tmp/node.log","cluster-name":"node"}}"#,
    )]);
    let stdin = r#"{"cniVersion":"1.0.0","name":"n","contrail":{
        "cluster-name":"other","mode":"mesos","meta-plugin":"evil","vif-type":"macvlan",
        "parent-interface":"ens3","vrouter-ip":"10.9.9.9","vrouter-port":1,"config-dir":"/etc",
        "log-file":"/etc/shadow","log-level":"trace","log-max-size":1,"log-max-files":1,
        "mesos-ip":"10.9.9.9","mesos-port":80,
        "mtu":1400,"poll-timeout":2,"poll-retries":4,"v6-prefix-len":64,"delegate":false}}"#;
    let (c, w) = d.load(stdin).unwrap();
    let k = &c.contrail;
    let mut want = Contrail {
        cluster_name: NetName::parse("node").unwrap(),
        log_file: "/tmp/node.log".into(),
        ..Contrail::default()
    };
    want.mtu = 1400;
    want.poll_timeout = 2;
    want.poll_retries = 4;
    want.v6_prefix_len = Some(64);
    want.delegate = Some(false);
    assert_eq!(*k, want);
    let node_only: Vec<&str> = KEYS
        .iter()
        .filter(|k| k.node_only)
        .map(|k| k.name)
        .collect();
    assert_eq!(w.len(), node_only.len(), "{w:#?}");
    for name in node_only {
        assert!(
            w.iter().any(|w| w.contains(&format!("contrail.{name} "))),
            "{name}: {w:?}"
        );
    }
}

#[test]
fn stdin_repeating_the_node_value_or_sending_garbage_for_it() {
    let d = Dir::new(&[("10-contrail.conf", r#"{"contrail":{"vrouter-port":9091}}"#)]);
    // Same port, other spelling: no warning.
    let (_, w) = d
        .load(r#"{"name":"n","contrail":{"vrouter-port":"9091"}}"#)
        .unwrap();
    assert!(w.is_empty(), "{w:?}");
    // An invalid value of a node-only key is not an error: old configs keep working.
    let (c, w) = d
        .load(r#"{"name":"n","contrail":{"config-dir":"relative","log-file":7}}"#)
        .unwrap();
    assert_eq!(c.contrail, Contrail::default());
    assert_eq!(w.len(), 2, "{w:?}");
    // A raw newline stays escaped in the warning.
    let (_, w) = d
        .load("{\"name\":\"n\",\"contrail\":{\"log-file\":\"/x\\n* * * * * root evil\"}}")
        .unwrap();
    assert!(!w[0].contains('\n'), "{w:?}");
}

#[test]
fn the_installers_conflist_is_node_configuration() {
    let conflist = r#"{"cniVersion":"1.0.0","name":"contrail-k8s-cni","plugins":[
        {"type":"contrail-k8s-cni","contrail":{"config-dir":"/tmp/state","vrouter-port":9999}},
        {"type":"portmap","capabilities":{"portMappings":true}}]}"#;
    let d = Dir::new(&[("10-contrail.conflist", conflist)]);
    let (c, w) = d
        .load(r#"{"name":"n","contrail":{"vrouter-port":1234}}"#)
        .unwrap();
    assert_eq!(c.node_file, Some(d.0.join("10-contrail.conflist")));
    assert_eq!(c.contrail.config_dir, PathBuf::from("/tmp/state"));
    assert_eq!(c.contrail.vrouter_port, 9999);
    assert_eq!(w.len(), 1);
    // A conflist without our entry is not ours: the next candidate counts.
    let other = r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]}"#;
    let d = Dir::new(&[
        ("05-contrail-other.conflist", other),
        ("10-contrail.conf", r#"{"contrail":{"mtu":1234}}"#),
    ]);
    let (c, _) = d.load(r#"{"name":"n"}"#).unwrap();
    assert_eq!(c.node_file, Some(d.0.join("10-contrail.conf")));
    assert_eq!(c.contrail.mtu, 1234);
    // Names that are not node configuration are never read.
    let d = Dir::new(&[
        ("05-other.conflist", "garbage"),
        ("contrail.conf.bak", "garbage"),
    ]);
    assert_eq!(d.load(r#"{"name":"n"}"#).unwrap().0.node_file, None);
}

#[test]
fn first_directory_with_a_node_file_wins_and_tf_names_count() {
    let a = Dir::new(&[]);
    let b = Dir::new(&[("10-tf-cni.conf", r#"{"contrail":{"mtu":9000}}"#)]);
    let (c, _) = load_from(
        br#"{"name":"n"}"#,
        &[a.0.clone(), PathBuf::from("/nonexistent"), b.0.clone()],
    )
    .unwrap();
    assert_eq!(c.contrail.mtu, 9000);
}

#[test]
fn unsafe_node_files_are_refused_naming_them() {
    let d = Dir::new(&[("10-contrail.conf", r#"{"contrail":{"mtu":1400}}"#)]);
    let f = d.0.join("10-contrail.conf");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = d.load(r#"{"name":"n"}"#).unwrap_err();
    assert_eq!(e.code, 7);
    assert!(
        e.msg.contains("10-contrail.conf") && e.msg.contains("writable"),
        "{}",
        e.msg
    );

    let d = Dir::new(&[("real.json", r#"{"contrail":{"mtu":1400}}"#)]);
    std::os::unix::fs::symlink(d.0.join("real.json"), d.0.join("10-contrail.conf")).unwrap();
    let e = d.load(r#"{"name":"n"}"#).unwrap_err();
    assert!(e.msg.contains("symlink"), "{}", e.msg);

    let d = Dir::new(&[]);
    std::fs::create_dir(d.0.join("10-contrail.conf")).unwrap();
    let e = d.load(r#"{"name":"n"}"#).unwrap_err();
    assert!(e.msg.contains("10-contrail.conf"), "{}", e.msg);

    if nix::unistd::geteuid().is_root() {
        let d = Dir::new(&[("10-contrail.conf", r#"{"contrail":{"mtu":1400}}"#)]);
        let f = d.0.join("10-contrail.conf");
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let e = d.load(r#"{"name":"n"}"#).unwrap_err();
        assert!(e.msg.contains("owned by uid 65534"), "{}", e.msg);
    }
}

#[test]
fn bad_node_file_is_code_7_naming_it() {
    let d = Dir::new(&[("10-contrail.conf", "{not json")]);
    let e = d.load(r#"{"name":"n"}"#).unwrap_err();
    assert_eq!(e.code, 7);
    assert!(e.msg.contains("10-contrail.conf"), "{}", e.msg);
    let d = Dir::new(&[(
        "10-contrail.conf",
        r#"{"contrail":{"mtu":"x","log-file":"/tmp/fallback.log"}}"#,
    )]);
    let e = d.load(r#"{"name":"n"}"#).unwrap_err();
    assert!(
        e.msg.contains("10-contrail.conf") && e.msg.contains("mtu"),
        "{}",
        e.msg
    );
    let f = fallback_contrail(std::slice::from_ref(&d.0));
    assert_eq!(f.log_file, PathBuf::from("/tmp/fallback.log"));
    assert_eq!(f.mtu, 1500);
}

#[test]
fn decode_errors_are_code_6() {
    let d = Dir::new(&[]);
    let deep = "[".repeat(100_000);
    let big = format!(r#"{{"name":"n","x":"{}"}}"#, "a".repeat(MAX_INPUT));
    for bad in [
        "",
        "  \n",
        "nope",
        "[]",
        "\"s\"",
        "{\"name\":\"n\"\0}",
        &deep,
        &big,
        r#"{"name":"n","cniVersion":1}"#,
    ] {
        let e = d.load(bad).unwrap_err();
        assert_eq!(e.code, 6, "{:?}", &bad[..bad.len().min(40)]);
    }
    let e = load_from(b"{\"name\":\"n\",\"x\":\"\xff\"}", &[]).unwrap_err();
    assert_eq!(e.code, 6);
}

#[test]
fn invalid_values_are_code_7_naming_the_key() {
    let d = Dir::new(&[]);
    for (key, val) in [
        ("mtu", r#""x""#),
        ("mtu", "70000"),
        ("mtu", "67"),
        ("mtu", "-1"),
        ("mtu", "1.5"),
        ("poll-timeout", "0"),
        ("poll-timeout", "61"),
        ("poll-retries", "0"),
        ("v6-prefix-len", "129"),
        ("delegate", r#""yes""#),
    ] {
        let e = d
            .load(&format!(r#"{{"name":"n","contrail":{{"{key}":{val}}}}}"#))
            .unwrap_err();
        assert_eq!(e.code, 7, "{key}={val}");
        assert!(e.msg.contains(key), "{key}: {}", e.msg);
    }
    for (key, val) in [
        ("vrouter-port", "0"),
        ("vrouter-port", r#""99999""#),
        ("vif-type", r#""foo""#),
        ("mode", r#""bar""#),
        ("vrouter-ip", r#""localhost""#),
        ("config-dir", r#""relative/dir""#),
        ("config-dir", r#""/""#),
        ("config-dir", r#""/var/../etc""#),
        ("log-file", r#""x.log""#),
        ("log-level", r#""loud""#),
        ("log-level", "6"),
        ("parent-interface", r#""a/b""#),
        ("cluster-name", r#""../x""#),
        ("mesos-ip", r#""x""#),
        ("meta-plugin", "1"),
        ("meta-plugin", r#""a/b""#),
    ] {
        let node = format!(r#"{{"contrail":{{"{key}":{val}}}}}"#);
        let d = Dir::new(&[("10-contrail.conf", &node)]);
        let e = d.load(r#"{"name":"n"}"#).unwrap_err();
        assert_eq!(e.code, 7, "{key}={val}");
        assert!(e.msg.contains(key), "{key}: {}", e.msg);
    }
    for (top, what) in [
        (r#"{}"#, "name"),
        (r#"{"name":""}"#, "name"),
        (r#"{"name":"../x"}"#, "name"),
        (r#"{"name":"a b"}"#, "name"),
        (r#"{"name":7}"#, "name"),
        (r#"{"name":"n","contrail":[]}"#, "contrail"),
        (
            r#"{"name":"n","cni.dev/valid-attachments":{}}"#,
            "valid-attachments",
        ),
        (
            r#"{"name":"n","cni.dev/valid-attachments":[{"containerID":"../x","ifname":"eth0"}]}"#,
            "container id",
        ),
    ] {
        let e = d.load(top).unwrap_err();
        assert_eq!(e.code, 7, "{top}");
        assert!(e.msg.contains(what), "{top}: {}", e.msg);
    }
}

#[test]
fn log_levels() {
    for (val, want) in [
        (r#""debug""#, LevelFilter::Debug),
        (r#""WARNING""#, LevelFilter::Warn),
        (r#""error""#, LevelFilter::Error),
        ("0", LevelFilter::Off),
        (r#""3""#, LevelFilter::Info),
    ] {
        let node = format!(r#"{{"contrail":{{"log-level":{val}}}}}"#);
        let d = Dir::new(&[("10-contrail.conf", &node)]);
        let (c, _) = d.load(r#"{"name":"n"}"#).unwrap();
        assert_eq!(c.contrail.log_level, want, "{val}");
    }
}

#[test]
fn attachments_prefer_valid_key() {
    let d = Dir::new(&[]);
    let (c, _) = d
        .load(
            r#"{"name":"n","cni.dev/attachments":[{"containerID":"old","ifname":"eth0"}],
               "cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}],
               "prevResult":{"cniVersion":"1.0.0"}}"#,
        )
        .unwrap();
    let att = c.valid_attachments.unwrap();
    assert_eq!(att.len(), 1);
    assert_eq!(att[0].container_id, "a");
    assert_eq!(att[0].ifname, "eth0");
    assert!(c.prev_result.is_some());
    let (c, _) = d.load(r#"{"name":"n","cni.dev/attachments":[]}"#).unwrap();
    assert_eq!(c.valid_attachments, Some(vec![]));
}

#[test]
fn poll_budget_is_capped() {
    let c = Contrail {
        poll_timeout: 60,
        poll_retries: 1000,
        ..Contrail::default()
    };
    assert_eq!(c.poll_budget(), MAX_POLL_BUDGET);
    assert_eq!(Contrail::default().poll_budget(), Duration::from_secs(60));
}

/// `Contrail::default()` and the table's documented defaults agree: each
/// default, applied to a configuration where every key differs, gives
/// back the default value.
#[test]
fn defaults_match_the_table() {
    let d = Contrail::default();
    let mut other = Contrail::default();
    for k in KEYS {
        let v: Value =
            serde_json::from_str(k.default).unwrap_or_else(|e| panic!("{}: {e}", k.name));
        if v.is_null() {
            continue;
        }
        other.set(k.name, &v).unwrap();
    }
    assert_eq!(other, d);
    for (name, v) in defaults_object() {
        assert!(key(&name).is_some(), "{name}");
        assert!(!v.is_null());
    }
    let unset: Vec<&str> = KEYS
        .iter()
        .filter(|k| k.default == "null")
        .map(|k| k.name)
        .collect();
    assert_eq!(
        unset,
        ["delegate", "v6-prefix-len", "mesos-ip", "mesos-port"]
    );
    assert_eq!(
        (d.delegate, d.v6_prefix_len, d.mesos_ip, d.mesos_port),
        (None, None, None, None)
    );
}

/// README.md and docs/security.md carry the key table generated from
/// [`KEYS`].
#[test]
fn docs_key_tables_are_the_generated_one() {
    for doc in ["README.md", "docs/security.md"] {
        let path = format!("{}/{doc}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&keys_markdown()),
            "{doc}'s key table differs from config::keys_markdown(); paste this:\n{}",
            keys_markdown()
        );
    }
}
