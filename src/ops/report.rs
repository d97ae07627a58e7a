//! What `doctor` found, and its two renderings: a table for people and
//! one JSON document for programs.

use super::clean;
use serde_json::{json, Value};
use std::path::PathBuf;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Checked, and something is wrong.
    Problem,
    /// Could not be checked.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Problem => "problem",
            Status::Error => "error",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

/// A pod interface's host link, as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    NotChecked,
    Missing,
    Present {
        up: bool,
        /// Carries the mark of the port file's container.
        marked: bool,
        alias: Option<String>,
    },
}

/// Whether the agent knows a VMI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    Knows,
    Unknown,
    NotChecked(String),
}

/// One interface of a pod, from its port file.
#[derive(Debug, Clone)]
pub struct Iface {
    pub ifname: String,
    pub vmi: String,
    pub port_file: String,
    pub host: String,
    pub link: LinkState,
    pub agent: AgentState,
}

/// One sandbox with state: the port files of one container in one VM
/// directory.
#[derive(Debug, Clone)]
pub struct Pod {
    pub vm: String,
    pub container: String,
    pub pod_uid: String,
    pub netns: String,
    pub netns_exists: bool,
    pub ifaces: Vec<Iface>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub node_file: Option<PathBuf>,
    pub checks: Vec<Check>,
    pub pods: Vec<Pod>,
}

impl Report {
    pub fn push(&mut self, name: &'static str, status: Status, detail: String) {
        self.checks.push(Check {
            name,
            status,
            detail,
        });
    }

    /// The findings of check `name`, or one `ok` line saying `ok` when
    /// there are none.
    pub fn category(&mut self, name: &'static str, findings: Vec<(Status, String)>, ok: String) {
        if findings.is_empty() {
            self.push(name, Status::Ok, ok);
        }
        for (status, detail) in findings {
            self.push(name, status, detail);
        }
    }

    fn count(&self, s: Status) -> usize {
        self.checks.iter().filter(|c| c.status == s).count()
    }

    /// 0 healthy, 1 problems found, 2 could not check (and found none).
    pub fn exit_code(&self) -> i32 {
        if self.count(Status::Problem) > 0 {
            1
        } else if self.count(Status::Error) > 0 {
            2
        } else {
            0
        }
    }

    fn verdict(&self) -> String {
        let (p, e) = (self.count(Status::Problem), self.count(Status::Error));
        let unchecked = |n: usize| match n {
            0 => String::new(),
            n => format!(", {n} check(s) could not run"),
        };
        match self.exit_code() {
            0 => "healthy".into(),
            1 => format!("{p} problem(s) found{}", unchecked(e)),
            _ => format!("not healthy: {e} check(s) could not run"),
        }
    }

    pub fn to_json(&self) -> String {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| json!({"check": c.name, "status": c.status.as_str(), "detail": c.detail}))
            .collect();
        let pods: Vec<Value> = self.pods.iter().map(pod_json).collect();
        let status = ["healthy", "problems", "unchecked"][self.exit_code() as usize];
        json!({
            "status": status,
            "exit-code": self.exit_code(),
            "summary": self.verdict(),
            "node-configuration": self.node_file.as_ref().map(|p| p.display().to_string()),
            "checks": checks,
            "pods": pods,
        })
        .to_string()
    }

    pub fn to_table(&self) -> String {
        let mut out = String::from("contrail-k8s-cni doctor\n\n");
        let rows: Vec<[String; 3]> = self
            .checks
            .iter()
            .map(|c| {
                [
                    c.status.as_str().to_string(),
                    c.name.to_string(),
                    clean(&c.detail),
                ]
            })
            .collect();
        out.push_str(&table(["STATUS", "CHECK", "DETAIL"], &rows));
        if !self.pods.is_empty() {
            out.push('\n');
            out.push_str(&table(POD_HEADER, &pod_rows(&self.pods)));
        }
        out.push('\n');
        out.push_str(&self.verdict());
        out.push('\n');
        out
    }
}

const POD_HEADER: [&str; 7] = [
    "POD (VM NAME)",
    "CONTAINER",
    "NETNS",
    "IF",
    "HOST LINK",
    "LINK",
    "AGENT",
];

fn link_text(l: &LinkState) -> String {
    match l {
        LinkState::NotChecked => "not checked".into(),
        LinkState::Missing => "MISSING".into(),
        LinkState::Present { up, marked, .. } => format!(
            "{}, {}",
            if *up { "up" } else { "DOWN" },
            if *marked { "marked" } else { "NOT MARKED" }
        ),
    }
}

fn agent_text(a: &AgentState) -> String {
    match a {
        AgentState::Knows => "knows the VMI".into(),
        AgentState::Unknown => "VMI UNKNOWN".into(),
        AgentState::NotChecked(_) => "not checked".into(),
    }
}

/// One row per interface; the pod's columns only on its first.
fn pod_rows(pods: &[Pod]) -> Vec<[String; 7]> {
    let mut rows = Vec::new();
    for p in pods {
        let netns = format!(
            "{}{}",
            clean(&p.netns),
            if p.netns_exists { "" } else { " (GONE)" }
        );
        for (i, f) in p.ifaces.iter().enumerate() {
            let first = |s: &str| if i == 0 { s.to_string() } else { String::new() };
            rows.push([
                first(&p.vm),
                first(&p.container),
                first(&netns),
                f.ifname.clone(),
                f.host.clone(),
                link_text(&f.link),
                agent_text(&f.agent),
            ]);
        }
    }
    rows
}

/// Left-aligned columns, two spaces apart; the last one is not padded.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut width = header.map(str::len);
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = width[i]));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header);
    for r in rows {
        out.push_str(&line(r.each_ref().map(String::as_str)));
    }
    out
}

fn pod_json(p: &Pod) -> Value {
    let ifaces: Vec<Value> = p
        .ifaces
        .iter()
        .map(|f| {
            let (exists, up, marked, alias) = match &f.link {
                LinkState::Present { up, marked, alias } => {
                    (Some(true), *up, *marked, alias.clone())
                }
                LinkState::Missing => (Some(false), false, false, None),
                LinkState::NotChecked => (None, false, false, None),
            };
            let agent = match &f.agent {
                AgentState::Knows => json!("knows"),
                AgentState::Unknown => json!("unknown"),
                AgentState::NotChecked(why) => json!(format!("not checked: {why}")),
            };
            json!({
                "ifname": f.ifname, "vmi": f.vmi, "port-file": f.port_file,
                "host-link": f.host, "link-exists": exists, "link-up": up,
                "marked": marked, "alias": alias, "agent": agent,
            })
        })
        .collect();
    json!({
        "vm-name": p.vm, "container-id": p.container, "pod-uid": p.pod_uid,
        "netns": p.netns, "netns-exists": p.netns_exists, "interfaces": ifaces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_verdicts() {
        let mut r = Report::default();
        r.push("a", Status::Ok, "fine".into());
        assert_eq!((r.exit_code(), r.verdict().as_str()), (0, "healthy"));
        r.push("b", Status::Error, "x".into());
        assert_eq!(r.exit_code(), 2);
        r.push("c", Status::Problem, "y".into());
        assert_eq!(r.exit_code(), 1, "a problem found beats a check not run");
        let v: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["status"], "problems");
        assert_eq!(v["checks"][2]["detail"], "y");
    }

    #[test]
    fn tables_align_and_escape() {
        let mut r = Report::default();
        r.category("links", vec![], "none".into());
        r.push("corrupt-files", Status::Problem, "bad\nname\x1b[2J".into());
        let t = r.to_table();
        assert!(t.contains("ok       links          none\n"), "{t}");
        assert!(t.contains("bad\\nname\\u{1b}[2J"), "{t}");
        assert!(t.ends_with("1 problem(s) found\n"), "{t}");
    }
}
