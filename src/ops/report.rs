//! What `doctor` found, and its two renderings: a table for people and
//! one JSON document for programs.

use super::clean;
use serde_json::{Map, Value};
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
            .map(|c| {
                obj(vec![
                    ("check", c.name.into()),
                    ("status", c.status.as_str().into()),
                    ("detail", c.detail.as_str().into()),
                ])
            })
            .collect();
        let pods: Vec<Value> = self.pods.iter().map(pod_json).collect();
        let code = self.exit_code();
        let node_file = self.node_file.as_ref().map(|p| p.display().to_string());
        obj(vec![
            (
                "status",
                ["healthy", "problems", "unchecked"][code as usize].into(),
            ),
            ("exit-code", code.into()),
            ("summary", self.verdict().into()),
            (
                "node-configuration",
                node_file.map_or(Value::Null, Value::String),
            ),
            ("checks", checks.into()),
            ("pods", pods.into()),
        ])
        .to_string()
    }

    pub fn to_table(&self) -> String {
        let mut out = String::from("contrail-k8s-cni doctor\n\n");
        let rows: Vec<Vec<String>> = self
            .checks
            .iter()
            .map(|c| {
                vec![
                    c.status.as_str().to_string(),
                    c.name.to_string(),
                    clean(&c.detail),
                ]
            })
            .collect();
        out.push_str(&table(&["STATUS", "CHECK", "DETAIL"], &rows));
        if !self.pods.is_empty() {
            out.push('\n');
            out.push_str(&table(&POD_HEADER, &pod_rows(&self.pods)));
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
fn pod_rows(pods: &[Pod]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for p in pods {
        let netns = format!(
            "{}{}",
            clean(&p.netns),
            if p.netns_exists { "" } else { " (GONE)" }
        );
        for (i, f) in p.ifaces.iter().enumerate() {
            let first = |s: &str| if i == 0 { s.to_string() } else { String::new() };
            rows.push(vec![
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
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (cell, w) in cells.zip(&width) {
            s.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count()) + 2;
            s.extend(std::iter::repeat_n(' ', pad));
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&mut header.iter().copied());
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

/// A JSON object of `pairs`, in order of the keys.
fn obj(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

fn pod_json(p: &Pod) -> Value {
    let ifaces: Vec<Value> = p.ifaces.iter().map(iface_json).collect();
    obj(vec![
        ("vm-name", p.vm.as_str().into()),
        ("container-id", p.container.as_str().into()),
        ("pod-uid", p.pod_uid.as_str().into()),
        ("netns", p.netns.as_str().into()),
        ("netns-exists", p.netns_exists.into()),
        ("interfaces", ifaces.into()),
    ])
}

fn iface_json(f: &Iface) -> Value {
    let (exists, up, marked, alias) = match &f.link {
        LinkState::Present { up, marked, alias } => (true.into(), *up, *marked, alias.as_deref()),
        LinkState::Missing => (false.into(), false, false, None),
        LinkState::NotChecked => (Value::Null, false, false, None),
    };
    let agent: Value = match &f.agent {
        AgentState::Knows => "knows".into(),
        AgentState::Unknown => "unknown".into(),
        AgentState::NotChecked(why) => format!("not checked: {why}").into(),
    };
    obj(vec![
        ("ifname", f.ifname.as_str().into()),
        ("vmi", f.vmi.as_str().into()),
        ("port-file", f.port_file.as_str().into()),
        ("host-link", f.host.as_str().into()),
        ("link-exists", exists),
        ("link-up", up.into()),
        ("marked", marked.into()),
        ("alias", alias.map_or(Value::Null, Value::from)),
        ("agent", agent),
    ])
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
