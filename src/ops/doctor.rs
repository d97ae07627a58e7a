//! `contrail-k8s-cni doctor`: what is wrong on this node, read-only.
//!
//! It reads the node configuration the plugin reads ([`config::read_node`]
//! with [`config::conf_dirs`]), then checks the agent, `config-dir` and the
//! log file, every pod with state (port files against the host links, the
//! agent and the pod's netns), and the debris a crashed or missed command
//! leaves (marked links without a port file, port files whose link is
//! gone, empty VM directories, Multus caches and lock files without state,
//! corrupt files). It never writes, removes or locks anything: GC is the
//! repair. Every agent request shares one deadline ([`AGENT_BUDGET`]).
//!
//! Exit code: 0 healthy, 1 problems found, 2 could not check (no usable
//! node configuration, no netlink, an unreadable state directory) and no
//! problem found. The picture is a snapshot: a command running meanwhile
//! can make a pod look incomplete.

use super::report::{AgentState, Iface, LinkState, Pod, Report, Status};
use super::usage_error;
use crate::agent::Agent;
use crate::config::{self, Contrail};
use crate::deadline::Deadline;
use crate::ids::{ContainerId, VmName};
use crate::netlink::{Link, Socket};
use crate::store::dirfd::DirFd;
use crate::store::{PortFile, Ports, Store, LOCK_DIR, MULTUS_DIR};
use crate::vif::names::{owner, Owner};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const USAGE: &str = "\
Usage: contrail-k8s-cni doctor [--json]

Reads the node configuration, the plugin's state, the host links and the
vRouter agent, and reports what is wrong (nothing is changed: CNI GC is the
repair). --json prints one JSON document. Exit code: 0 healthy, 1 problems
found, 2 could not check.";

/// What all agent requests of one run may take together.
pub const AGENT_BUDGET: Duration = Duration::from_secs(3);
/// The longest the first contact with the agent may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// `doctor` with the arguments after it; the exit code.
pub fn main(args: &[String]) -> i32 {
    let json = match args {
        [] => false,
        [a] if a == "--json" => true,
        [a, ..] => {
            let msg = format!("unknown argument {}", crate::ids::printable(a, 64));
            return usage_error("doctor", &msg, USAGE);
        }
    };
    let report = inspect(&config::conf_dirs());
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    report.exit_code()
}

/// The whole inspection with node directories `dirs`.
pub fn inspect(dirs: &[PathBuf]) -> Report {
    let mut r = Report::default();
    let Some(c) = node_config(&mut r, dirs) else {
        return r;
    };
    let deadline = Deadline::after(AGENT_BUDGET);
    let agent = Agent::new(c.vrouter(), Duration::from_secs(c.poll_timeout));
    let agent_up = check_agent(&mut r, &agent, &deadline);
    check_config_dir(&mut r, &c.config_dir);
    check_log_file(&mut r, &c.log_file);
    let store = Store::read_only(&c.config_dir);
    let links = match Socket::new().and_then(|mut s| s.links()) {
        Ok(l) => Some(l),
        Err(e) => {
            r.push("host-links", Status::Error, format!("cannot list: {e}"));
            None
        }
    };
    let vms = store.vm_names().map(|names| {
        let read = |vm: VmName| {
            let ports = store.read_ports(&vm);
            (vm, ports)
        };
        names.into_iter().map(read).collect::<Vec<_>>()
    });
    let vms = vms.unwrap_or_else(|e| {
        r.push("vm-dirs", Status::Error, e.msg);
        Vec::new()
    });
    let ask = agent_up.then_some((&agent, &deadline));
    r.pods = pods(&store, &vms, links.as_deref(), ask);
    pod_findings(&mut r, agent_up);
    link_findings(&mut r, &vms, links.as_deref());
    debris_findings(&mut r, &store, &vms);
    r
}

fn node_config(r: &mut Report, dirs: &[PathBuf]) -> Option<Contrail> {
    let (status, detail, c) = match config::read_node(dirs) {
        Ok(Some(n)) => match config::validate_contrail(&n.contrail) {
            Ok(c) => {
                r.node_file = Some(n.path.clone());
                (Status::Ok, n.path.display().to_string(), Some(c))
            }
            Err(e) => (Status::Error, e.msg, None),
        },
        Ok(None) => {
            let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            let detail = format!("none in {} (run contrail-k8s-cni install)", dirs.join(", "));
            (Status::Error, detail, None)
        }
        Err(e) => (Status::Error, e.msg, None),
    };
    r.push("node-config", status, detail);
    c
}

fn check_agent(r: &mut Report, agent: &Agent, deadline: &Deadline) -> bool {
    match agent.probe(deadline.cap(PROBE_TIMEOUT)) {
        Ok(took) => {
            let us = took.as_secs() * 1_000_000 + u64::from(took.subsec_micros());
            let ms = format!("{}.{}", us / 1000, us % 1000 / 100);
            let detail = format!("{} answered in {ms} ms", agent.address());
            r.push("agent", Status::Ok, detail);
            true
        }
        Err(e) => {
            r.push("agent", Status::Problem, e.msg);
            false
        }
    }
}

/// Present (absent is fine before the first pod), a directory, owned by
/// root (or us) and writable by nobody else.
fn check_config_dir(r: &mut Report, dir: &Path) {
    let at = dir.display();
    let (status, detail) = match DirFd::open(dir).and_then(|d| d.map(|d| d.stat()).transpose()) {
        Ok(None) => (
            Status::Ok,
            format!("{at}: absent (the first ADD creates it)"),
        ),
        Err(e) => (Status::Problem, format!("{at}: cannot open: {e}")),
        Ok(Some(st)) => {
            let (uid, mode) = (st.st_uid, st.st_mode & 0o7777);
            let detail = format!("{at}: owner uid {uid}, mode {mode:04o}");
            if uid != 0 && uid != nix::unistd::geteuid().as_raw() {
                (Status::Problem, format!("{detail}: not owned by root"))
            } else if mode & 0o022 != 0 {
                (Status::Problem, format!("{detail}: writable by others"))
            } else {
                (Status::Ok, detail)
            }
        }
    };
    r.push("config-dir", status, detail);
}

/// Can the plugin append to its log? Checked without writing: the file is
/// opened for append without creating it (no symlink, no blocking on a
/// FIFO); an absent file needs a writable nearest existing directory.
fn check_log_file(r: &mut Report, file: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let at = file.display();
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(file);
    let (status, detail) = match opened.and_then(|f| f.metadata()) {
        Ok(m) if m.is_file() => (Status::Ok, format!("{at}: writable")),
        Ok(_) => (Status::Problem, format!("{at}: not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut dir = file;
            while let Some(p) = dir.parent().filter(|_| !dir.exists()) {
                dir = p;
            }
            match nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK) {
                Ok(()) => (
                    Status::Ok,
                    format!("{at}: absent, created at the first log line"),
                ),
                Err(e) => (
                    Status::Problem,
                    format!("{at}: absent and {} is not writable: {e}", dir.display()),
                ),
            }
        }
        Err(e) => (
            Status::Problem,
            format!("{at}: cannot open for append: {e} (the plugin logs to stderr)"),
        ),
    };
    r.push("log-file", status, detail);
}

/// One [`Pod`] per (VM directory, container) with port files.
fn pods(
    store: &Store,
    vms: &[(VmName, Ports)],
    links: Option<&[Link]>,
    agent: Option<(&Agent, &Deadline)>,
) -> Vec<Pod> {
    let mut out = Vec::new();
    for (vm, ports) in vms {
        // Containers in the order of their first port file (by VMI).
        let mut containers: Vec<&ContainerId> = Vec::new();
        for pf in &ports.good {
            if !containers.contains(&&pf.port.vm_id) {
                containers.push(&pf.port.vm_id);
            }
        }
        for c in containers {
            let files: Vec<&PortFile> = ports.good.iter().filter(|p| p.port.vm_id == *c).collect();
            let first = &files[0].port;
            out.push(Pod {
                vm: vm.to_string(),
                container: c.to_string(),
                pod_uid: first.vm_uuid.to_string(),
                netns: first.vm_namespace.clone(),
                netns_exists: netns_exists(&first.vm_namespace),
                ifaces: files
                    .iter()
                    .map(|pf| iface(store, pf, links, agent))
                    .collect(),
            });
        }
    }
    out
}

/// Does the netns path a port file recorded still exist? The path is data
/// (the plugin's own file): it is only `lstat`ed, never opened.
fn netns_exists(path: &str) -> bool {
    path.starts_with('/') && path.len() < 4096 && std::fs::symlink_metadata(path).is_ok()
}

fn iface(
    store: &Store,
    pf: &PortFile,
    links: Option<&[Link]>,
    agent: Option<(&Agent, &Deadline)>,
) -> Iface {
    let p = &pf.port;
    let link = match links {
        None => LinkState::NotChecked,
        Some(links) => match links.iter().find(|l| l.name == p.host_ifname.as_str()) {
            None => LinkState::Missing,
            Some(l) => LinkState::Present {
                up: l.is_up(),
                marked: owner(&l.name, l.alias.as_deref(), l.group)
                    == Owner::Container(p.vm_id.clone()),
                alias: l.alias.clone(),
            },
        },
    };
    let agent = match agent {
        None => AgentState::NotChecked("the agent is not reachable".into()),
        Some((_, d)) if d.expired() => AgentState::NotChecked(format!(
            "the {} s agent deadline passed",
            AGENT_BUDGET.as_secs()
        )),
        Some((a, d)) => match a.get_vmi(&p.vm_uuid, &p.vmi_uuid, d) {
            Ok(Some(_)) => AgentState::Knows,
            Ok(None) => AgentState::Unknown,
            Err(e) => AgentState::NotChecked(e.msg),
        },
    };
    let file = store
        .config_dir()
        .join(p.vm_name.as_str())
        .join(p.vmi_uuid.as_str());
    Iface {
        ifname: p.vm_ifname.to_string(),
        vmi: p.vmi_uuid.to_string(),
        port_file: file.display().to_string(),
        host: p.host_ifname.to_string(),
        link,
        agent,
    }
}

/// Findings of one check: what, and how bad.
type Findings = Vec<(Status, String)>;

/// Checks `interfaces`, `agent-vmis` and `netns` from the pods.
fn pod_findings(r: &mut Report, agent_up: bool) {
    let (mut links, mut vmis, mut netns) = (Vec::new(), Vec::new(), Vec::new());
    for p in &r.pods {
        if !p.netns_exists {
            let what = format!(
                "netns {:?} of {} (container {}) is gone",
                p.netns, p.vm, p.container
            );
            netns.push((Status::Problem, what));
        }
        for f in &p.ifaces {
            link_state_findings(p, f, &mut links);
            if agent_up {
                agent_findings(p, f, &mut vmis);
            }
        }
    }
    let n: usize = r.pods.iter().map(|p| p.ifaces.len()).sum();
    if !agent_up && n > 0 {
        let why = "not checked: the agent is not reachable";
        vmis.push((Status::Error, why.into()));
    }
    let pods = r.pods.len();
    let all_links =
        format!("{pods} pod(s), {n} interface(s): every host link is there, up and marked");
    let unchecked = r
        .pods
        .iter()
        .flat_map(|p| &p.ifaces)
        .any(|f| f.link == LinkState::NotChecked);
    // Without netlink, "host-links" already says why.
    if !unchecked {
        r.category("interfaces", links, all_links);
    }
    let known = match n {
        0 => "no VMI to ask about".to_string(),
        n => format!("the agent knows all {n} VMI(s)"),
    };
    r.category("agent-vmis", vmis, known);
    let all_netns = format!("the netns of all {pods} pod(s) exist");
    r.category("netns", netns, all_netns);
}

/// The host link of interface `f`: there, marked for the pod's container
/// and up.
fn link_state_findings(p: &Pod, f: &Iface, out: &mut Findings) {
    let of = format!("{} of {} ({})", f.host, p.vm, f.ifname);
    match &f.link {
        LinkState::NotChecked => {}
        LinkState::Missing => out.push((
            Status::Problem,
            format!("port file {}: host link {} is gone", f.port_file, f.host),
        )),
        LinkState::Present { up, marked, alias } => {
            if !marked {
                let why = format!(
                    "host link {of} is not marked for container {} (alias {alias:?})",
                    p.container
                );
                out.push((Status::Problem, why));
            }
            if !up {
                out.push((Status::Problem, format!("host link {of} is down")));
            }
        }
    }
}

/// Does the agent know the VMI of interface `f`?
fn agent_findings(p: &Pod, f: &Iface, out: &mut Findings) {
    match &f.agent {
        AgentState::Knows => {}
        AgentState::Unknown => out.push((
            Status::Problem,
            format!(
                "the agent does not know VMI {} of {} ({})",
                f.vmi, p.vm, f.ifname
            ),
        )),
        AgentState::NotChecked(why) => out.push((
            Status::Error,
            format!("VMI {} of {}: not checked: {why}", f.vmi, p.vm),
        )),
    }
}

/// Check `links`: host links marked by the plugin (or pending their mark)
/// that no port file records.
fn link_findings(r: &mut Report, vms: &[(VmName, Ports)], links: Option<&[Link]>) {
    let Some(links) = links else { return };
    let recorded = |name: &str, c: &ContainerId| {
        vms.iter()
            .flat_map(|(_, p)| &p.good)
            .any(|pf| pf.port.host_ifname.as_str() == name && pf.port.vm_id == *c)
    };
    let mut found = Vec::new();
    for l in links {
        match owner(&l.name, l.alias.as_deref(), l.group) {
            Owner::Container(c) if !recorded(&l.name, &c) => found.push((
                Status::Problem,
                format!(
                    "host link {} is marked for container {c} but no port file records it",
                    l.name
                ),
            )),
            Owner::Pending => found.push((
                Status::Problem,
                format!(
                    "host link {} is pending its mark: an ADD running now, or one that died",
                    l.name
                ),
            )),
            _ => {}
        }
    }
    r.category(
        "links",
        found,
        "every marked host link has a port file".into(),
    );
}

/// Checks `vm-dirs` and `corrupt-files` (unless the listing failed, which
/// is reported already), `multus-caches` and `lock-files`.
fn debris_findings(r: &mut Report, store: &Store, vms: &[(VmName, Ports)]) {
    let config_dir = store.config_dir().display().to_string();
    let (mut empty, mut corrupt) = (Vec::new(), Vec::new());
    for (vm, ports) in vms {
        if ports.good.is_empty() && ports.bad.is_empty() {
            let what = format!("VM directory {config_dir}/{vm} holds no port file");
            empty.push((Status::Problem, what));
        }
        for b in &ports.bad {
            let what = format!("{config_dir}/{vm}/{}: {}", b.name, b.reason);
            corrupt.push((Status::Problem, what));
        }
    }
    if !r.checks.iter().any(|c| c.name == "vm-dirs") {
        r.category("vm-dirs", empty, "no empty VM directory".into());
        r.category("corrupt-files", corrupt, "no corrupt port file".into());
    }
    let (caches, locks) = orphans(store, vms);
    let none = "no Multus cache without port files";
    r.category("multus-caches", caches, none.into());
    r.category("lock-files", locks, "no lock file without state".into());
}

/// Multus caches of pods without port files, lock files of pods without
/// state (what GC removes).
fn orphans(store: &Store, vms: &[(VmName, Ports)]) -> (Findings, Findings) {
    let with_ports = |vm: &VmName| vms.iter().any(|(v, p)| v == vm && !p.good.is_empty());
    let root = store.state_root().display().to_string();
    let caches = match store.multus_cache_names() {
        Ok(names) => names
            .into_iter()
            .filter(|vm| !with_ports(vm))
            .map(|vm| {
                let what =
                    format!("Multus cache {root}/{MULTUS_DIR}/{vm}: the pod has no port file");
                (Status::Problem, what)
            })
            .collect(),
        Err(e) => vec![(Status::Error, e.msg)],
    };
    let locks = match store.lock_names() {
        Ok(names) => names
            .into_iter()
            .filter(|vm| !store.has_state(vm))
            .map(|vm| {
                let what = format!("lock file {root}/{LOCK_DIR}/{vm}: the pod has no state");
                (Status::Problem, what)
            })
            .collect(),
        Err(e) => vec![(Status::Error, e.msg)],
    };
    (caches, locks)
}
