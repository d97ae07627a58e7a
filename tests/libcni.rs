//! The plugin driven by a real runtime library: Debian's libcni 1.1.2 (what
//! containerd and CRI-O are built on) through a small Go driver, chained
//! with Debian's reference plugins tuning, portmap and bandwidth, for
//! cniVersion 0.3.1, 0.4.0 and 1.0.0.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const REFERENCE_PLUGINS: &str = "/usr/lib/cni";

/// Builds the Go driver once per test binary, offline, in GOPATH mode.
fn driver() -> &'static Path {
    static DRIVER: OnceLock<PathBuf> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cnidriver");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/libcni");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg("cnidriver")
            .env("GO111MODULE", "off")
            .env("GOPATH", format!("{}:/usr/share/gocode", src.display()))
            .env(
                "GOCACHE",
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gocache"),
            )
            .status()
            .expect("run go build (apt-get install golang-go golang-github-appc-cni-dev)");
        assert!(status.success(), "building the libcni driver failed");
        out
    })
}

struct Net {
    node: Node,
    confdir: TempDir,
    cache: TempDir,
}

impl Net {
    /// The conflist [contrail-k8s-cni, tuning, portmap, bandwidth].
    fn new(sim_port: u16, version: &str) -> Net {
        let node = Node::new(sim_port);
        let confdir = TempDir::new("netconf");
        let list = json!({
            "cniVersion": version,
            "name": "contrail",
            "plugins": [
                {"type": "contrail-k8s-cni"},
                {"type": "tuning", "capabilities": {"mac": true}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "bandwidth", "capabilities": {"bandwidth": true}}
            ]
        });
        std::fs::write(
            confdir.path().join("10-contrail.conflist"),
            list.to_string(),
        )
        .unwrap();
        Net {
            node,
            confdir,
            cache: TempDir::new("cnicache"),
        }
    }

    fn run(&self, args: &[&str], pod: &str) -> std::process::Output {
        self.run_caps(args, pod, true)
    }

    /// `port_mappings` false leaves portMappings out of CAP_ARGS: portmap
    /// 1.1.1's CHECK looks for IPv4 rules in the IPv6 table and always fails
    /// (containernetworking/plugins#819, fixed in 1.3.0); without mappings
    /// its CHECK is a no-op and the rest of the chain is still checked.
    fn run_caps(&self, args: &[&str], pod: &str, port_mappings: bool) -> std::process::Output {
        let mut caps = json!({"mac": "c2:11:22:33:44:55",
               "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
               "bandwidth": {"ingressRate": 1000000, "ingressBurst": 100000,
                             "egressRate": 1000000, "egressBurst": 100000}});
        if !port_mappings {
            caps.as_object_mut().unwrap().remove("portMappings");
        }
        let plugin_dir = Path::new(plugin()).parent().unwrap();
        Command::new(driver())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("NETCONFPATH", self.confdir.path())
            .env(
                "CNI_PATH",
                format!("{}:{REFERENCE_PLUGINS}", plugin_dir.display()),
            )
            .env("CNI_CACHE_DIR", self.cache.path())
            .env("CNI_CONTAINERID", format!("libcni-{pod}"))
            .env("CNI_IFNAME", "eth0")
            .env(
                "CNI_ARGS",
                format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"),
            )
            .env("CAP_ARGS", caps.to_string())
            .env("CONTRAIL_CNI_CONF_DIRS", self.node.dir.path().join("net.d"))
            .output()
            .expect("run cnidriver")
    }
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "cnidriver failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn libcni_version_reply_lists_seven_versions() {
    let net_dir = TempDir::new("ver");
    let out = Command::new(driver())
        .args(["version", "contrail-k8s-cni"])
        .env("CNI_PATH", Path::new(plugin()).parent().unwrap())
        .env("NETCONFPATH", net_dir.path())
        .output()
        .unwrap();
    let versions: Vec<String> = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(
        versions,
        ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    );
}

fn full_cycle(version: &str) {
    if !setup() {
        return;
    }
    // Dual-stack pods, so the chain also carries IPv6 results.
    let sim = Sim::start(&["--ipv6"]);
    let net = Net::new(sim.port, version);
    let pod = NsFd::new();
    let name = format!("lib-{}", version.replace('.', ""));

    ok(&net.run(&["validate", "contrail"], &name));
    let result: Value =
        serde_json::from_str(&ok(&net.run(&["add", "contrail", &pod.path], &name))).unwrap();
    assert_eq!(result["cniVersion"], version);
    let ifs = result["interfaces"].as_array().expect("interfaces");
    let eth0 = ifs
        .iter()
        .position(|i| i["name"] == "eth0")
        .expect("eth0 in the result");
    assert_eq!(ifs[eth0]["sandbox"], pod.path.as_str());
    assert_eq!(
        ifs[eth0]["mac"], "c2:11:22:33:44:55",
        "tuning changed the MAC: {result}"
    );
    assert!(pod
        .ip(&["link", "show", "eth0"])
        .contains("c2:11:22:33:44:55"));
    let tap = ifs
        .iter()
        .find(|i| i["name"].as_str().unwrap().starts_with("tap"))
        .expect("host tap in the result");
    assert!(tap.get("sandbox").is_none() || tap["sandbox"] == "");
    let ip = result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["interface"] == eth0)
        .expect("ip of eth0");
    let addr = ip["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(pod.ip(&["-o", "addr"]).contains(&addr));
    // bandwidth found the host veth and shaped it; portmap DNATs to our IP.
    let tap_name = tap["name"].as_str().unwrap();
    let qdisc = run_ok("tc", &["qdisc", "show", "dev", tap_name]);
    assert!(
        qdisc.contains("tbf"),
        "bandwidth shaped {tap_name}: {qdisc}"
    );
    assert!(
        ifs.iter()
            .any(|i| i["name"].as_str().unwrap().starts_with("bwp")),
        "{result}"
    );
    let nat = run_ok("iptables-save", &["-t", "nat"]);
    assert!(
        nat.contains(&format!("--to-destination {addr}:80")),
        "{nat}"
    );

    if version != "0.3.1" {
        ok(&net.run_caps(&["check", "contrail", &pod.path], &name, false));
    }
    ok(&net.run(&["del", "contrail", &pod.path], &name));
    ok(&net.run(&["del", "contrail", &pod.path], &name));
    assert!(
        link_names()
            .iter()
            .all(|n| !n.starts_with("tap") && !n.starts_with("bwp")),
        "{:?}",
        link_names()
    );
    assert_eq!(pod.link_names(), Vec::<String>::new());
    assert!(net.node.port_files().is_empty());
    assert!(!run_ok("iptables-save", &["-t", "nat"]).contains(&addr));
}

#[test]
fn libcni_chain_0_3_1() {
    full_cycle("0.3.1");
}

#[test]
fn libcni_chain_0_4_0() {
    full_cycle("0.4.0");
}

#[test]
fn libcni_chain_1_0_0() {
    full_cycle("1.0.0");
}
