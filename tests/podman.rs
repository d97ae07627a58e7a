//! The plugin under Debian's podman (CNI network backend), as a user runs
//! it: `podman run --network contrail` on a conflist `[contrail-k8s-cni,
//! portmap]`, with a busybox image imported from Debian's busybox-static.
//!
//! Podman runs in the test thread's own network and mount namespaces
//! (`common::runtime::private_host`) with its configuration, storage, run
//! root, temp and event files in a temporary directory (`CONTAINERS_CONF`,
//! `CONTAINERS_STORAGE_CONF`) and its cgroups under a parent of the test's
//! own, removed afterwards. The node file is found through
//! `CONTRAIL_CNI_CONF_DIRS`: podman passes its environment to the plugins
//! it runs itself, but the DEL of a container's cleanup runs in a podman
//! started by conmon, which gets only `conmon_env_vars` — so the variable is
//! listed there too.

mod common;

use common::runtime::*;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/ccni-busybox:test";
const REFERENCE_PLUGINS: &str = "/usr/lib/cni";
const NETWORK: &str = "contrail";

struct Podman {
    host: Host,
    node: Node,
    plugins: PluginDir,
    dir: TempDir,
    cgroup_parent: String,
}

impl Podman {
    /// The private host and the simulator (`sim_args`) in it; None when
    /// the test is skipped.
    fn host(sim_args: &[&str]) -> Option<(Host, Sim)> {
        let host = private_host()?;
        if !have_programs(
            "podman",
            &["podman", "conmon", "runc", "/bin/busybox", "iptables"],
        ) {
            return None;
        }
        Some((host, Sim::start(sim_args)))
    }

    /// A private podman with the `contrail` network, its plugins recorded,
    /// talking to `sim`.
    fn start(host: Host, sim: &Sim) -> Podman {
        let dir = TempDir::new("podman");
        let node = Node::new(sim.port);
        let plugins = PluginDir::new(dir.path());
        plugins
            .record("contrail-k8s-cni", Path::new(plugin()))
            .record("portmap", &Path::new(REFERENCE_PLUGINS).join("portmap"));
        let netdir = dir.path().join("networks");
        std::fs::create_dir_all(&netdir).unwrap();
        let conflist = json!({
            "cniVersion": "1.0.0",
            "name": NETWORK,
            "plugins": [
                {"type": "contrail-k8s-cni"},
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        std::fs::write(netdir.join("contrail.conflist"), conflist.to_string()).unwrap();
        let d = dir.path().display();
        let node_dirs = node.dir.path().join("net.d");
        let containers_conf = format!(
            "[network]\n\
             network_backend = \"cni\"\n\
             cni_plugin_dirs = [\"{bin}\"]\n\
             network_config_dir = \"{net}\"\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             runtime = \"runc\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             tmp_dir = \"{d}/tmp\"\n\
             volume_path = \"{d}/volumes\"\n\
             conmon_env_vars = [\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\", \"CONTRAIL_CNI_CONF_DIRS={nodes}\"]\n",
            bin = plugins.bin.display(),
            net = netdir.display(),
            nodes = node_dirs.display(),
        );
        std::fs::write(dir.path().join("containers.conf"), containers_conf).unwrap();
        let storage_conf = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/storage\"\nrunroot = \"{d}/run\"\n"
        );
        std::fs::write(dir.path().join("storage.conf"), storage_conf).unwrap();
        let cgroup_parent = format!(
            "/ccni-podman-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let pm = Podman {
            host,
            node,
            plugins,
            dir,
            cgroup_parent,
        };
        pm.import_busybox();
        pm
    }

    /// A one-layer image: busybox-static and the applets the tests use.
    fn import_busybox(&self) {
        let rootfs = self.dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "ip", "cat", "sleep", "true"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let tar = self.dir.path().join("rootfs.tar");
        run_ok(
            "tar",
            &[
                "-C",
                rootfs.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                ".",
            ],
        );
        self.ok(&["import", tar.to_str().unwrap(), IMAGE]);
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run podman")
    }

    /// `podman args` in the test's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", self.dir.path())
            .env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            )
            .env("CONTRAIL_CNI_CONF_DIRS", self.node.dir.path().join("net.d"));
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}\n{}\nplugin log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.node.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman run` with this machine's options and the test's cgroups;
    /// without `name`, podman generates one (`pedantic_jennings`).
    fn run_args<'a>(&'a self, name: Option<&'a str>, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["run"];
        if let Some(name) = name {
            v.extend_from_slice(&["--name", name]);
        }
        v.extend_from_slice(&[
            "--network",
            NETWORK,
            "--cgroup-parent",
            &self.cgroup_parent,
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=1000:1000",
        ]);
        v.extend_from_slice(extra);
        v
    }

    /// The cgroup directories under the test's parent, deepest first.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            collect_dirs(
                &h.path().join(self.cgroup_parent.trim_start_matches('/')),
                &mut out,
            );
        }
        out
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&e.path(), out);
        }
    }
    out.push(dir.to_path_buf());
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let left = self.host.kill_leftovers();
        if !left.is_empty() {
            eprintln!("podman: killed leftover processes {left:?}");
        }
        // Empty by now; rmdir removes nothing else.
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(&d);
        }
    }
}

/// The iptables NAT rules that send traffic to `ip`.
fn dnat_rules_to(ip: &str) -> Vec<String> {
    run_ok("iptables-save", &["-t", "nat"])
        .lines()
        .filter(|l| l.contains("DNAT") && l.contains(&format!("{ip}:")))
        .map(String::from)
        .collect()
}

fn podman_version() -> String {
    version_of("podman", &["--version"])
}

#[test]
fn podman_run_detached_with_a_published_port_then_rm() {
    let Some((host, sim)) = Podman::host(&[]) else {
        return;
    };
    let pm = Podman::start(host, &sim);
    let (name, vm) = ("web1", "k8s__default__web1");
    let args = pm.run_args(Some(name), &["-d", "-p", "18080:80", IMAGE, "sleep", "600"]);
    let id = pm.ok(&args).trim().to_string();
    let agent = agent_view(&sim, vm);

    // Inside the container: the agent's address, MAC and default route.
    let addr = pm.ok(&["exec", name, "ip", "-o", "addr", "show", "eth0"]);
    assert!(
        addr.contains(&format!("inet {}/{}", agent.ip, agent.plen)),
        "{addr} vs {agent:?}"
    );
    let link = pm.ok(&["exec", name, "ip", "link", "show", "eth0"]);
    assert!(link.contains(&agent.mac), "{link} vs {agent:?}");
    let routes = pm.ok(&["exec", name, "ip", "route"]);
    assert!(
        routes.contains(&format!("default via {}", agent.gateway)),
        "{routes}"
    );
    let fib = pm.ok(&["exec", name, "cat", "/proc/net/fib_trie"]);
    assert!(fib.contains(&agent.ip), "{fib}");
    // What podman recorded from the result.
    let inspect = pm.ok(&[
        "inspect",
        "--format",
        "{{(index .NetworkSettings.Networks \"contrail\").IPAddress}}",
        name,
    ]);
    assert_eq!(inspect.trim(), agent.ip);

    // On the host: the tap and portmap's DNAT rule to the container.
    let taps = taps();
    assert_eq!(taps.len(), 1, "{:?}", link_names());
    let rules = dnat_rules_to(&agent.ip);
    assert!(
        rules
            .iter()
            .any(|r| r.contains("--dport 18080") && r.contains(&format!("{}:80", agent.ip))),
        "{rules:?}"
    );

    // What podman sent: only the pod name in CNI_ARGS.
    let adds = pm.plugins.calls_of("contrail-k8s-cni", "ADD", &id);
    assert_eq!(adds.len(), 1, "{adds:?}");
    let add = &adds[0];
    assert_eq!(add.arg("K8S_POD_NAME").as_deref(), Some(name));
    assert_eq!(add.arg("K8S_POD_NAMESPACE"), None);
    assert_eq!(add.arg("K8S_POD_UID"), None);
    let port_add = pm.plugins.calls_of("portmap", "ADD", &id);
    assert_eq!(port_add.len(), 1);
    let mappings = &port_add[0].stdin["runtimeConfig"]["portMappings"];

    pm.ok(&["rm", "--force", "--time", "0", name]);

    let dels = pm.plugins.calls_of("contrail-k8s-cni", "DEL", &id);
    assert!(!dels.is_empty(), "no DEL for {id}");
    assert!(
        pm.node
            .log()
            .contains(&format!("DEL {vm}: removed 1 interface(s)")),
        "the DEL found the node file (CONTRAIL_CNI_CONF_DIRS): {}",
        pm.node.log()
    );
    assert_eq!(
        sim.count("DELETE", &format!("/vm/{}", agent.vm_uuid)),
        1,
        "agent unsubscribed"
    );
    assert!(dnat_rules_to(&agent.ip).is_empty(), "DNAT rule left");
    assert_nothing_left(&pm.node, &[vm.to_string()]);
    let netns: Vec<_> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert!(netns.is_empty(), "netns mounts left: {netns:?}");
    assert!(pm.ok(&["ps", "-a", "-q"]).trim().is_empty());

    report(
        "podman: run -d -p 18080:80, exec, rm",
        &[
            podman_version(),
            format!("container {name} ({vm}): {}/{} via {}", agent.ip, agent.plen, agent.gateway),
            format!("CNI_ARGS keys on ADD: {:?}", add.arg_keys()),
            format!("portmap runtimeConfig: {mappings}"),
            format!(
                "DELs: {} (CNI_NETNS {:?}, prevResult {})",
                dels.len(),
                dels[0].netns(),
                dels[0].stdin.get("prevResult").is_some()
            ),
            "checked: address, MAC, default route, fib_trie, inspect, tap, DNAT; after rm no link, port file, VM dir, netns, DNAT rule, agent subscription".into(),
        ],
    );
}

#[test]
fn podman_run_rm_in_the_foreground() {
    let Some((host, sim)) = Podman::host(&[]) else {
        return;
    };
    let pm = Podman::start(host, &sim);
    // The container prints its address and waits for a file from the test,
    // so the agent's view can be read while the pod exists.
    let gate = pm.dir.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let volume = format!("{}:/gate", gate.display());
    // No --name: podman's generated name (`adjective_name`) is the pod name.
    let args = pm.run_args(
        None,
        &[
            "--rm",
            "-v",
            &volume,
            IMAGE,
            "sh",
            "-c",
            "ip -o addr show eth0; while [ ! -e /gate/go ]; do sleep 0.1; done",
        ],
    );
    let child = pm
        .command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn podman run");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.count("GET", "/vm/") == 0 {
        assert!(
            Instant::now() < deadline,
            "no ADD within 60 s: {}",
            pm.node.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let vm = sim
        .requests()
        .iter()
        .find_map(|r| r.path.strip_prefix("/vm-cfg/").map(String::from))
        .expect("a GET /vm-cfg");
    let name = vm
        .strip_prefix("k8s__default__")
        .expect("VM name of a podman container");
    assert!(name.contains('_'), "podman generated {name}");
    let agent = agent_view(&sim, &vm);
    std::fs::write(gate.join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains(&format!("inet {}/{}", agent.ip, agent.plen)),
        "{out} vs {agent:?}"
    );
    let dels = pm
        .plugins
        .calls()
        .into_iter()
        .filter(|c| c.plugin == "contrail-k8s-cni" && c.command() == "DEL")
        .count();
    assert!(dels >= 1, "no DEL after run --rm");
    assert_eq!(sim.count("DELETE", &format!("/vm/{}", agent.vm_uuid)), 1);
    assert_nothing_left(&pm.node, std::slice::from_ref(&vm));
    assert!(pm.ok(&["ps", "-a", "-q"]).trim().is_empty());
    report(
        "podman: run --rm",
        &[format!(
            "container {name}: {} seen inside, {dels} DEL(s), nothing left",
            agent.ip
        )],
    );
}

#[test]
fn podman_refused_add_leaves_nothing() {
    // Every POST /vm fails: the plugin's ADD fails after creating the veth
    // and the port file, and must undo both.
    let Some((host, sim)) = Podman::host(&["--fault", "post:500"]) else {
        return;
    };
    let pm = Podman::start(host, &sim);
    let (name, vm) = ("refused", "k8s__default__refused");
    let args = pm.run_args(Some(name), &["--rm", IMAGE, "true"]);
    let out = pm.run(&args);
    assert!(!out.status.success(), "podman run succeeded: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("POST"),
        "the plugin's error reaches the user: {stderr}"
    );
    assert!(sim.count("POST", "/vm") >= 1);
    assert_nothing_left(&pm.node, &[vm.to_string()]);
    assert!(dnat_rules_to("10.").is_empty());
    report(
        "podman: refused ADD (agent POST /vm answers 500)",
        &[format!(
            "podman run failed with: {}",
            stderr.lines().last().unwrap_or_default()
        )],
    );
}
