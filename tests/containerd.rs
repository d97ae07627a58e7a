//! The plugin under Debian's containerd through its CRI plugin, the way
//! kubelet drives it: RunPodSandbox, PodSandboxStatus, StopPodSandbox,
//! RemovePodSandbox over CRI v1 gRPC, with the conflist `[contrail-k8s-cni,
//! portmap]` and Debian's `loopback` plugin.
//!
//! Each test starts its own containerd in the test thread's own network and
//! mount namespaces (`common::runtime::private_host`) with root, state,
//! socket, plugin and conflist directories in a temporary directory, the
//! runc runtime without systemd cgroups and the sandboxes' cgroups under a
//! parent of the test's own; it is stopped and everything removed after.
//! The pod sandbox image is built here: `tests/cri/pause.c` compiled with
//! `gcc -static`, packed by `tests/cri/pause_image.py` as a docker archive
//! and imported with `ctr`. The CRI client is `tests/cri/cri.py`, with
//! stubs generated at test time from `tests/cri/runtime_v1.proto`.
//!
//! The agent simulator gives each pod's VM the pod's UID (`--pod-uid`), as
//! kube-manager does: containerd sends `K8S_POD_UID` and the plugin checks
//! it against the agent's VM UUID.

mod common;

use common::runtime::*;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const PAUSE_IMAGE: &str = "localhost/ccni-pause:test";
const REFERENCE_PLUGINS: &str = "/usr/lib/cni";
const NETWORK: &str = "contrail";

fn cri_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cri")
}

/// Generated once per test binary: the gRPC stubs and the pause image.
struct Built {
    stubs: PathBuf,
    image: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cri");
        let stubs = out.join("stubs");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&stubs).unwrap();
        let cri = cri_dir();
        run_ok(
            PYTHON,
            &[
                "-m",
                "grpc_tools.protoc",
                &format!("-I{}", cri.display()),
                &format!("--python_out={}", stubs.display()),
                &format!("--grpc_python_out={}", stubs.display()),
                cri.join("runtime_v1.proto").to_str().unwrap(),
            ],
        );
        let pause = out.join("pause");
        run_ok(
            "gcc",
            &[
                "-static",
                "-Os",
                "-o",
                pause.to_str().unwrap(),
                cri.join("pause.c").to_str().unwrap(),
            ],
        );
        let image = out.join("pause.tar");
        run_ok(
            PYTHON,
            &[
                cri.join("pause_image.py").to_str().unwrap(),
                pause.to_str().unwrap(),
                image.to_str().unwrap(),
                PAUSE_IMAGE,
            ],
        );
        Built { stubs, image }
    })
}

/// A pod to run: name, namespace, UID, host ports.
#[derive(Clone)]
struct PodSpec {
    name: String,
    namespace: String,
    uid: String,
    host_ports: Vec<(u16, u16)>,
}

impl PodSpec {
    fn new(name: &str, namespace: &str, uid: &str) -> PodSpec {
        PodSpec {
            name: name.into(),
            namespace: namespace.into(),
            uid: uid.into(),
            host_ports: Vec::new(),
        }
    }

    /// The VM name the plugin asks the agent about.
    fn vm(&self) -> String {
        format!("k8s__{}__{}", self.namespace, self.name)
    }

    /// The simulator flag giving this pod's VM its UID.
    fn sim_uid(&self) -> String {
        format!("{}={}", self.vm(), self.uid)
    }
}

/// A UUID for pod `n` of a test.
fn uid(n: u32) -> String {
    format!("0b1c0000-0000-4000-8000-{n:012x}")
}

struct Containerd {
    host: Host,
    node: Node,
    plugins: PluginDir,
    dir: TempDir,
    sock: PathBuf,
    child: Option<Child>,
    cgroup_parent: String,
    /// Sandboxes not removed yet, removed on drop.
    pods: Mutex<Vec<String>>,
}

/// What PodSandboxStatus says about a running pod.
struct Status {
    state: String,
    ip: String,
    netns: String,
}

impl Containerd {
    /// The private host and the simulator (`sim_args`) in it; None when
    /// the test is skipped.
    fn host(sim_args: &[String]) -> Option<(Host, Sim)> {
        let host = private_host()?;
        if !have_programs(
            "containerd",
            &[
                "containerd",
                "containerd-shim-runc-v2",
                "ctr",
                "runc",
                "gcc",
                "iptables",
                PYTHON,
            ],
        ) {
            return None;
        }
        let args: Vec<&str> = sim_args.iter().map(String::as_str).collect();
        Some((host, Sim::start(&args)))
    }

    fn start(host: Host, sim: &Sim) -> Containerd {
        let built = built();
        let dir = TempDir::new("containerd");
        let node = Node::new(sim.port);
        let plugins = PluginDir::new(dir.path());
        plugins
            .record("contrail-k8s-cni", Path::new(plugin()))
            .record("portmap", &Path::new(REFERENCE_PLUGINS).join("portmap"))
            .link("loopback", &Path::new(REFERENCE_PLUGINS).join("loopback"));
        let netdir = dir.path().join("net.d");
        std::fs::create_dir_all(&netdir).unwrap();
        let conflist = json!({
            "cniVersion": "1.0.0",
            "name": NETWORK,
            "plugins": [
                {"type": "contrail-k8s-cni"},
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        std::fs::write(netdir.join("10-contrail.conflist"), conflist.to_string()).unwrap();
        let d = dir.path().display();
        let sock = dir.path().join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{bin}"
    conf_dir = "{net}"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
"#,
            sock = sock.display(),
            bin = plugins.bin.display(),
            net = netdir.display(),
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config_path)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CONTRAIL_CNI_CONF_DIRS", node.dir.path().join("net.d"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let cgroup_parent = format!(
            "/ccni-cri-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let cd = Containerd {
            host,
            node,
            plugins,
            dir,
            sock,
            child: Some(child),
            cgroup_parent,
            pods: Mutex::new(Vec::new()),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if cd.sock.exists() && cd.cri("Version", json!({})).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer in 60 s:\n{}",
                cd.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let sock = cd.sock.to_str().unwrap();
        run_ok(
            "ctr",
            &[
                "-a",
                sock,
                "-n",
                "k8s.io",
                "images",
                "import",
                "--snapshotter",
                "native",
                built.image.to_str().unwrap(),
            ],
        );
        cd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// One CRI call: the response, or the gRPC error `{code, details}`.
    fn cri(&self, method: &str, request: Value) -> Result<Value, Value> {
        let out = Command::new(PYTHON)
            .arg(cri_dir().join("cri.py"))
            .arg(&self.sock)
            .arg(method)
            .arg(request.to_string())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("PYTHONPATH", &built().stubs)
            .output()
            .expect("run cri.py");
        let parsed: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "cri.py {method}: {e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        match out.status.code() {
            Some(0) => Ok(parsed),
            Some(1) => Err(parsed),
            _ => panic!("cri.py {method}: {out:?}"),
        }
    }

    fn cri_ok(&self, method: &str, request: Value) -> Value {
        self.cri(method, request.clone()).unwrap_or_else(|e| {
            panic!(
                "{method} {request}: {e}\nplugin log:\n{}\ncontainerd log tail:\n{}",
                self.node.log(),
                tail(&self.log(), 30)
            )
        })
    }

    /// RunPodSandbox as kubelet sends it (the fields the runtime uses).
    fn run_pod(&self, pod: &PodSpec) -> Result<String, Value> {
        let ports: Vec<Value> = pod
            .host_ports
            .iter()
            .map(|(host, container)| {
                json!({"protocol": "TCP", "container_port": container, "host_port": host})
            })
            .collect();
        let config = json!({
            "metadata": {"name": pod.name, "uid": pod.uid, "namespace": pod.namespace, "attempt": 0},
            "hostname": pod.name,
            "log_directory": self.dir.path().join("pods").join(&pod.uid),
            "port_mappings": ports,
            "labels": {"io.kubernetes.pod.name": pod.name, "io.kubernetes.pod.namespace": pod.namespace},
            "linux": {
                "cgroup_parent": format!("{}/pod{}", self.cgroup_parent, pod.uid),
                "security_context": {"namespace_options": {"network": "POD", "pid": "CONTAINER", "ipc": "POD"}}
            }
        });
        let id = self.cri("RunPodSandbox", json!({"config": config}))?["pod_sandbox_id"]
            .as_str()
            .expect("pod_sandbox_id")
            .to_string();
        self.pods.lock().unwrap().push(id.clone());
        Ok(id)
    }

    fn run_pod_ok(&self, pod: &PodSpec) -> String {
        self.run_pod(pod).unwrap_or_else(|e| {
            panic!(
                "RunPodSandbox {}: {e}\nplugin log:\n{}\ncontainerd log tail:\n{}",
                pod.vm(),
                self.node.log(),
                tail(&self.log(), 30)
            )
        })
    }

    fn status(&self, id: &str) -> Status {
        let s = self.cri_ok(
            "PodSandboxStatus",
            json!({"pod_sandbox_id": id, "verbose": true}),
        );
        let info: Value = serde_json::from_str(s["info"]["info"].as_str().unwrap_or("{}"))
            .expect("verbose info is JSON");
        let netns = info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["type"] == "network")
            .and_then(|n| n["path"].as_str())
            .unwrap_or_default()
            .to_string();
        Status {
            state: s["status"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            ip: s["status"]["network"]["ip"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            netns,
        }
    }

    fn stop(&self, id: &str) {
        self.cri_ok("StopPodSandbox", json!({"pod_sandbox_id": id}));
    }

    fn remove(&self, id: &str) {
        self.cri_ok("RemovePodSandbox", json!({"pod_sandbox_id": id}));
        self.pods.lock().unwrap().retain(|p| p != id);
    }

    fn sandboxes(&self) -> Vec<Value> {
        self.cri_ok("ListPodSandbox", json!({}))["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Network namespace mounts containerd still holds.
    fn netns_files(&self) -> Vec<String> {
        let dir = self
            .dir
            .path()
            .join("state/io.containerd.grpc.v1.cri/netns");
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
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

    /// Nothing of the pods is left: the plugin's state (links, port files,
    /// VM directories), containerd's sandboxes and netns mounts, portmap's
    /// rules, the sandboxes' cgroups.
    fn assert_nothing_left(&self, pods: &[&PodSpec]) {
        let vms: Vec<String> = pods.iter().map(|p| p.vm()).collect();
        assert_nothing_left(&self.node, &vms);
        assert_eq!(self.sandboxes(), Vec::<Value>::new(), "sandboxes left");
        assert_eq!(self.netns_files(), Vec::<String>::new(), "netns left");
        let nat = run_ok("iptables-save", &["-t", "nat"]);
        assert!(
            !nat.contains("-j DNAT") && !nat.contains(":CNI-DN-"),
            "portmap rules left:\n{nat}"
        );
        // The pod-level cgroups (`<parent>/pod<uid>`) are kubelet's to
        // remove; the sandbox's own, below them, are the runtime's.
        let parent = self.cgroup_parent.trim_start_matches('/');
        let cgroups: Vec<PathBuf> = self
            .cgroup_dirs()
            .into_iter()
            .filter(|d| {
                let below = d.iter().skip_while(|c| *c != parent).count();
                below > 2
            })
            .collect();
        assert!(cgroups.is_empty(), "sandbox cgroups left: {cgroups:?}");
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

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let pods = self.pods.lock().unwrap().clone();
        for id in pods {
            let _ = self.cri("StopPodSandbox", json!({"pod_sandbox_id": id}));
            let _ = self.cri("RemovePodSandbox", json!({"pod_sandbox_id": id}));
        }
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let left = self.host.kill_leftovers();
        if !left.is_empty() {
            eprintln!("containerd: killed leftover processes {left:?}");
        }
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(&d);
        }
    }
}

/// Runs `ip args` inside the network namespace at `path`.
fn ip_in(path: &str, args: &[&str]) -> String {
    let net = format!("--net={path}");
    let mut full = vec![net.as_str(), "ip"];
    full.extend_from_slice(args);
    run_ok("nsenter", &full)
}

/// Checks the pod's namespace against what the agent gave it.
fn assert_pod_network(netns: &str, agent: &AgentView) {
    let addr = ip_in(netns, &["-o", "addr", "show", "eth0"]);
    assert!(
        addr.contains(&format!("inet {}/{}", agent.ip, agent.plen)),
        "{addr} vs {agent:?}"
    );
    let link = ip_in(netns, &["link", "show", "eth0"]);
    assert!(link.contains(&agent.mac) && link.contains("UP"), "{link}");
    let routes = ip_in(netns, &["route"]);
    assert!(
        routes.contains(&format!("default via {}", agent.gateway)),
        "{routes}"
    );
    // loopback, from the runtime's own network.
    assert!(ip_in(netns, &["link", "show", "lo"]).contains("UP"));
}

fn versions(cd: &Containerd) -> String {
    let v = cd.cri_ok("Version", json!({"version": "v1"}));
    format!(
        "{} {} (CRI {}), {}",
        v["runtime_name"].as_str().unwrap_or_default(),
        v["runtime_version"].as_str().unwrap_or_default(),
        v["runtime_api_version"].as_str().unwrap_or_default(),
        version_of("runc", &["--version"])
    )
}

#[test]
fn cri_pod_lifecycle_and_the_two_dels() {
    let pod = PodSpec::new("web", "shop", &uid(1));
    let Some((host, sim)) = Containerd::host(&["--pod-uid".into(), pod.sim_uid()]) else {
        return;
    };
    let cd = Containerd::start(host, &sim);
    let id = cd.run_pod_ok(&pod);
    let agent = agent_view(&sim, &pod.vm());
    assert_eq!(agent.vm_uuid, pod.uid, "the agent's VM is the pod");
    let st = cd.status(&id);
    assert_eq!(st.state, "SANDBOX_READY");
    assert_eq!(
        st.ip, agent.ip,
        "PodSandboxStatus reports the agent's address"
    );
    assert!(!st.netns.is_empty(), "netns path in the verbose status");
    assert_pod_network(&st.netns, &agent);
    let taps = taps();
    assert_eq!(taps.len(), 1, "{:?}", link_names());

    // What containerd sent on ADD: the four Kubernetes keys.
    let adds = cd.plugins.calls_of("contrail-k8s-cni", "ADD", &id);
    assert_eq!(adds.len(), 1, "{adds:?}");
    let add = &adds[0];
    assert_eq!(add.arg("K8S_POD_NAMESPACE").as_deref(), Some("shop"));
    assert_eq!(add.arg("K8S_POD_NAME").as_deref(), Some("web"));
    assert_eq!(add.arg("K8S_POD_UID").as_deref(), Some(pod.uid.as_str()));
    assert_eq!(
        add.arg("K8S_POD_INFRA_CONTAINER_ID").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(add.netns(), st.netns);

    // StopPodSandbox: the first DEL, with the netns and the prevResult.
    cd.stop(&id);
    let dels = cd.plugins.calls_of("contrail-k8s-cni", "DEL", &id);
    assert_eq!(dels.len(), 1, "one DEL at StopPodSandbox: {dels:?}");
    assert_eq!(dels[0].netns(), st.netns);
    assert!(
        dels[0].stdin.get("prevResult").is_some(),
        "{:?}",
        dels[0].stdin
    );
    assert_eq!(link_names(), Vec::<String>::new(), "tap gone at stop");
    assert!(cd.node.port_files().is_empty());
    assert_eq!(sim.count("DELETE", &format!("/vm/{}", pod.uid)), 1);
    assert_eq!(cd.status(&id).state, "SANDBOX_NOTREADY");

    // RemovePodSandbox: the second DEL, without netns or prevResult.
    cd.remove(&id);
    let dels = cd.plugins.calls_of("contrail-k8s-cni", "DEL", &id);
    assert_eq!(dels.len(), 2, "a second DEL at RemovePodSandbox: {dels:?}");
    let second = &dels[1];
    assert_eq!(second.netns(), "", "{second:?}");
    assert!(second.stdin.get("prevResult").is_none(), "{second:?}");
    let log = cd.node.log();
    assert!(!log.contains("[ERROR]"), "{log}");
    assert_eq!(
        sim.count("DELETE", &format!("/vm/{}", pod.uid)),
        1,
        "the second DEL has nothing to undo"
    );
    cd.assert_nothing_left(&[&pod]);

    report(
        "containerd CRI: one pod, RunPodSandbox .. RemovePodSandbox",
        &[
            versions(&cd),
            format!(
                "pod {}/{} uid {}: {}/{} via {}, sandbox {}",
                pod.namespace,
                pod.name,
                pod.uid,
                agent.ip,
                agent.plen,
                agent.gateway,
                &id[..12]
            ),
            format!("CNI_ARGS on ADD (order as sent): {:?}", add.arg_keys()),
            format!(
                "DEL 1 (StopPodSandbox): CNI_NETNS {:?}, prevResult {}",
                dels[0].netns(),
                dels[0].stdin.get("prevResult").is_some()
            ),
            format!(
                "DEL 2 (RemovePodSandbox): CNI_NETNS {:?}, prevResult {}",
                second.netns(),
                second.stdin.get("prevResult").is_some()
            ),
            "checked: status IP = agent's, eth0 address/MAC/route and lo in the netns, one tap, the UID check; after: no link, port file, VM dir, sandbox, netns, DNAT rule, cgroup".into(),
        ],
    );
}

#[test]
fn cri_host_port_through_chained_portmap() {
    let mut pod = PodSpec::new("front", "shop", &uid(2));
    pod.host_ports = vec![(18080, 80)];
    let Some((host, sim)) = Containerd::host(&["--pod-uid".into(), pod.sim_uid()]) else {
        return;
    };
    let cd = Containerd::start(host, &sim);
    let id = cd.run_pod_ok(&pod);
    let agent = agent_view(&sim, &pod.vm());
    assert_eq!(cd.status(&id).ip, agent.ip);
    let nat = run_ok("iptables-save", &["-t", "nat"]);
    let rule = nat
        .lines()
        .find(|l| l.contains("--dport 18080") && l.contains("-j DNAT"))
        .unwrap_or_else(|| panic!("no DNAT rule for 18080:\n{nat}"));
    assert!(
        rule.contains(&format!("--to-destination {}:80", agent.ip)),
        "{rule}"
    );
    let port_adds = cd.plugins.calls_of("portmap", "ADD", &id);
    assert_eq!(port_adds.len(), 1);
    let mapping = &port_adds[0].stdin["runtimeConfig"]["portMappings"][0];
    // containerd 1.6 sends the Go field names.
    assert_eq!(mapping["HostPort"], 18080, "{mapping}");
    assert_eq!(mapping["ContainerPort"], 80, "{mapping}");
    // portmap chained after us got our result.
    let prev = &port_adds[0].stdin["prevResult"];
    assert!(
        prev["ips"][0]["address"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&agent.ip),
        "{prev}"
    );

    cd.stop(&id);
    let nat = run_ok("iptables-save", &["-t", "nat"]);
    assert!(
        !nat.contains(&format!("{}:80", agent.ip)),
        "DNAT rule left after stop:\n{nat}"
    );
    cd.remove(&id);
    cd.assert_nothing_left(&[&pod]);

    report(
        "containerd CRI: hostPort 18080 -> 80 through portmap",
        &[
            format!("DNAT rule while running: {rule}"),
            format!("portmap runtimeConfig as containerd sends it: {mapping}"),
            "checked: rule present while the pod runs, gone after StopPodSandbox".into(),
        ],
    );
}

#[test]
fn cri_five_pods_in_parallel() {
    let pods: Vec<PodSpec> = (0..5)
        .map(|i| PodSpec::new(&format!("par-{i}"), "batch", &uid(10 + i)))
        .collect();
    let mut args = Vec::new();
    for p in &pods {
        args.push("--pod-uid".to_string());
        args.push(p.sim_uid());
    }
    let Some((host, sim)) = Containerd::host(&args) else {
        return;
    };
    let cd = Containerd::start(host, &sim);
    let start = Instant::now();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .map(|p| {
                let cd = &cd;
                s.spawn(move || cd.run_pod_ok(p))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let run_time = start.elapsed();
    let mut ips = Vec::new();
    for (p, id) in pods.iter().zip(&ids) {
        let agent = agent_view(&sim, &p.vm());
        assert_eq!(agent.vm_uuid, p.uid);
        let st = cd.status(id);
        assert_eq!(st.ip, agent.ip, "{}", p.name);
        assert_pod_network(&st.netns, &agent);
        ips.push(agent.ip);
    }
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "{ips:?}");
    assert_eq!(taps().len(), 5, "{:?}", link_names());
    assert_eq!(cd.node.port_files().len(), 5);

    std::thread::scope(|s| {
        for id in &ids {
            let cd = &cd;
            s.spawn(move || {
                cd.stop(id);
                cd.remove(id);
            });
        }
    });
    for p in &pods {
        assert_eq!(sim.count("DELETE", &format!("/vm/{}", p.uid)), 1);
    }
    let refs: Vec<&PodSpec> = pods.iter().collect();
    cd.assert_nothing_left(&refs);

    report(
        "containerd CRI: 5 pods in parallel",
        &[
            format!("addresses {ips:?}, all 5 RunPodSandbox in {run_time:.1?}"),
            "checked: each status IP = agent's, each netns configured, 5 taps, 5 port files; parallel stop+remove leaves nothing".into(),
        ],
    );
}

#[test]
fn cri_same_pod_name_in_two_namespaces() {
    let blue = PodSpec::new("web", "blue", &uid(21));
    let red = PodSpec::new("web", "red", &uid(22));
    let Some((host, sim)) = Containerd::host(&[
        "--pod-uid".into(),
        blue.sim_uid(),
        "--pod-uid".into(),
        red.sim_uid(),
    ]) else {
        return;
    };
    let cd = Containerd::start(host, &sim);
    let blue_id = cd.run_pod_ok(&blue);
    let red_id = cd.run_pod_ok(&red);
    let (blue_agent, red_agent) = (agent_view(&sim, &blue.vm()), agent_view(&sim, &red.vm()));
    assert_ne!(blue_agent.ip, red_agent.ip);
    assert_eq!(
        (blue_agent.vm_uuid.as_str(), red_agent.vm_uuid.as_str()),
        (blue.uid.as_str(), red.uid.as_str())
    );
    let red_status = cd.status(&red_id);
    assert_eq!(cd.status(&blue_id).ip, blue_agent.ip);
    assert_eq!(red_status.ip, red_agent.ip);
    assert_eq!(taps().len(), 2);

    // Removing blue's pod leaves red's untouched.
    cd.stop(&blue_id);
    cd.remove(&blue_id);
    assert_eq!(taps().len(), 1, "{:?}", link_names());
    let ports = cd.node.port_files();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert!(
        ports[0].0.to_string_lossy().contains(&red.vm()),
        "{ports:?}"
    );
    assert_pod_network(&red_status.netns, &red_agent);
    assert_eq!(sim.count("DELETE", &format!("/vm/{}", red.uid)), 0);

    cd.stop(&red_id);
    cd.remove(&red_id);
    cd.assert_nothing_left(&[&blue, &red]);

    report(
        "containerd CRI: pod \"web\" in namespaces blue and red",
        &[
            format!(
                "{} -> {}, {} -> {}",
                blue.vm(),
                blue_agent.ip,
                red.vm(),
                red_agent.ip
            ),
            "checked: two VMs, two addresses; removing one leaves the other's tap, port file and netns".into(),
        ],
    );
}

#[test]
fn cri_refused_add_leaves_nothing() {
    // "stale": the agent knows the VM under another UID (a pod of the same
    // name that was deleted and recreated): the plugin refuses, code 11.
    // "broken": the agent answers POST /vm with 500 after the plugin has
    // created the veth and the port file, which must be undone.
    let stale = PodSpec::new("stale", "faulty", &uid(31));
    let broken = PodSpec::new("broken", "faulty", &uid(32));
    let Some((host, sim)) = Containerd::host(&[
        "--pod-uid".into(),
        format!("{}={}", stale.vm(), uid(99)),
        "--pod-uid".into(),
        broken.sim_uid(),
        "--fault".into(),
        "post:500".into(),
    ]) else {
        return;
    };
    let cd = Containerd::start(host, &sim);
    let mut lines = Vec::new();
    for (pod, expect) in [(&stale, "stale VM"), (&broken, "HTTP 500")] {
        let err = cd
            .run_pod(pod)
            .expect_err("RunPodSandbox must fail when the plugin refuses");
        let details = err["details"].as_str().unwrap_or_default();
        assert!(
            details.contains("contrail-k8s-cni") && details.contains(expect),
            "{err}"
        );
        let calls: Vec<String> = cd
            .plugins
            .calls()
            .into_iter()
            .filter(|c| {
                c.plugin == "contrail-k8s-cni"
                    && c.arg("K8S_POD_NAME").as_deref() == Some(pod.name.as_str())
            })
            .map(|c| format!("{}(netns {})", c.command(), !c.netns().is_empty()))
            .collect();
        lines.push(format!("{}: {details}", pod.vm()));
        lines.push(format!("  plugin calls: {calls:?}"));
    }
    assert!(sim.count("POST", "/vm") >= 1, "broken got as far as POST");
    cd.assert_nothing_left(&[&stale, &broken]);
    lines.push("checked: RunPodSandbox fails with the plugin's message; no link, port file, VM dir, sandbox, netns, cgroup left".into());
    report("containerd CRI: refused ADDs", &lines);
}
