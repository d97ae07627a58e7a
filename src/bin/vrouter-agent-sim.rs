//! vRouter agent simulator: the agent's port-IPC REST API (docs/agent-api.md) as
//! the CNI plugin sees it, for tests and `make demo`.
//!
//! It behaves like the agent plus kube-manager: the first `GET /vm-cfg/<name>`
//! provisions a pod (VM UUID, one VMI per network, MACs, addresses), `POST
//! /vm` binds a VMI, `GET /vm/...` answers once the VMI is bound (at once in
//! nested mode), `DELETE /vm/<uuid>` unbinds. Wire details follow the agent:
//! status line reason always `OK`, `Content-Type: application/json;
//! charset=UTF-8`, pretty data bodies, compact error bodies, lower-case-only
//! UUID routes, `Unknown Request` for anything else.
//!
//! It shares no code with the plugin's client on purpose: a test double that
//! reused the client's parser would agree with its bugs.
//!
//! Run with `--help` for the flags. std + serde_json only; one thread per
//! connection.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const USAGE: &str = "\
vrouter-agent-sim: simulates the vRouter agent's port-IPC API (port 9091)

USAGE: vrouter-agent-sim [FLAGS]

  --listen ADDR          listen address (default 127.0.0.1:9091; port 0 = any free
                         port; `:PORT` = all interfaces, like the real agent).
                         The first stdout line is `listening on <ip:port>`.
  --networks N           extra networks per pod besides the default one (default 0)
  --network-names A,B    names of the extra networks (sets N when --networks is absent);
                         NAME=IFNAME also annotates {interface:IFNAME}
  --ipv6                 also give every VMI an IPv6 address (v6-* fields)
  --no-ipv4              give no IPv4 address (IPv6-only pods; needs --ipv6)
  --nested               VMIs are VLAN sub-interfaces (vlan-id 100, 101, ...)
                         and GET /vm answers without a POST
  --vm-uuid UUID         VM UUID (pod UID) of every provisioned pod (default random)
  --pod-uid VM=UUID      VM UUID of the pod whose VM name is VM (`cluster__ns__pod`),
                         as kube-manager gives a pod's VM the pod's UID; repeatable,
                         wins over --vm-uuid for that pod
  --record FILE          append one JSON line per request:
                         {\"seq\":N,\"method\":M,\"path\":P,\"body\":B,\"status\":S|null}
  --fault EP:KIND[=N]    misbehave on endpoint EP for the next N matching requests
                         (default: forever); repeatable, applied in the order given.
                         EP: vm-cfg (GET /vm-cfg), vm (GET /vm/..), post (POST /vm),
                             delete (DELETE /vm/..), any (also unmatched requests)
                         KIND: 404 (Not Found), 500 (error), hang (never answer),
                               garbage (200, non-JSON body), empty (200, []),
                               partial (vm-cfg only: the VMI with the highest index left out),
                               delay-MS (the normal answer, MS milliseconds late)
  --dataplane            on a bound POST: tap up, gateway /32 (/128) on the tap,
                         route to the pod address via the tap; undone on DELETE
  --verbose              log every request to stderr
  --help                 this text
";

// ---------------------------------------------------------------------------
// Command line

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Endpoint {
    VmCfg,
    Vm,
    Post,
    Delete,
    Any,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    NotFound,
    ServerError,
    Hang,
    Garbage,
    Empty,
    Partial,
    /// The normal answer, this many milliseconds late.
    Delay(u64),
}

#[derive(Debug)]
struct Fault {
    endpoint: Endpoint,
    kind: Kind,
    /// None: forever.
    remaining: Option<u32>,
}

fn parse_fault(spec: &str) -> Result<Fault, String> {
    let (ep, rest) = spec
        .split_once(':')
        .ok_or(format!("--fault {spec}: expected EP:KIND[=N]"))?;
    let (kind, count) = match rest.split_once('=') {
        Some((k, n)) => (
            k,
            Some(
                n.parse::<u32>()
                    .map_err(|_| format!("--fault {spec}: bad count"))?,
            ),
        ),
        None => (rest, None),
    };
    let endpoint = match ep {
        "vm-cfg" => Endpoint::VmCfg,
        "vm" => Endpoint::Vm,
        "post" => Endpoint::Post,
        "delete" => Endpoint::Delete,
        "any" => Endpoint::Any,
        _ => return Err(format!("--fault {spec}: unknown endpoint {ep}")),
    };
    let kind = match kind {
        "404" => Kind::NotFound,
        "500" => Kind::ServerError,
        "hang" => Kind::Hang,
        "garbage" => Kind::Garbage,
        "empty" => Kind::Empty,
        "partial" if endpoint == Endpoint::VmCfg => Kind::Partial,
        k if k.starts_with("delay-") => Kind::Delay(
            k["delay-".len()..]
                .parse()
                .map_err(|_| format!("--fault {spec}: bad delay"))?,
        ),
        _ => return Err(format!("--fault {spec}: unknown kind {kind} for {ep}")),
    };
    Ok(Fault {
        endpoint,
        kind,
        remaining: count,
    })
}

struct Options {
    listen: String,
    networks: Vec<String>,
    ipv4: bool,
    ipv6: bool,
    nested: bool,
    vm_uuid: Option<String>,
    /// VM name -> VM UUID (lower case), from --pod-uid.
    pod_uids: BTreeMap<String, String>,
    record: Option<String>,
    faults: Vec<Fault>,
    dataplane: bool,
    verbose: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        listen: "127.0.0.1:9091".into(),
        networks: Vec::new(),
        ipv4: true,
        ipv6: false,
        nested: false,
        vm_uuid: None,
        pod_uids: BTreeMap::new(),
        record: None,
        faults: Vec::new(),
        dataplane: false,
        verbose: false,
    };
    let (mut count, mut names): (Option<usize>, Option<Vec<String>>) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            // `:PORT` means every interface, like the real agent.
            "--listen" => {
                let v = val()?;
                o.listen = match v.strip_prefix(':') {
                    Some(port) => format!("0.0.0.0:{port}"),
                    None => v,
                };
            }
            "--networks" => count = Some(val()?.parse().map_err(|_| "--networks: not a number")?),
            "--network-names" => {
                names = Some(
                    val()?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                )
            }
            "--ipv6" => o.ipv6 = true,
            "--no-ipv4" => o.ipv4 = false,
            "--nested" => o.nested = true,
            "--vm-uuid" => {
                let v = val()?;
                o.vm_uuid =
                    Some(parse_uuid_strict(&v).ok_or(format!("--vm-uuid {v}: not a UUID"))?);
            }
            "--pod-uid" => add_pod_uid(&mut o.pod_uids, &val()?)?,
            "--record" => o.record = Some(val()?),
            "--fault" => o.faults.push(parse_fault(&val()?)?),
            "--dataplane" => o.dataplane = true,
            "--verbose" | "-v" => o.verbose = true,
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if !o.ipv4 && !o.ipv6 {
        return Err("--no-ipv4 needs --ipv6".into());
    }
    o.networks = networks(count, names)?;
    Ok(o)
}

/// `--pod-uid VM=UUID`: the UUID kube-manager gives pod `VM`'s VM.
fn add_pod_uid(pod_uids: &mut BTreeMap<String, String>, v: &str) -> Result<(), String> {
    let (name, uid) = v
        .split_once('=')
        .ok_or(format!("--pod-uid {v}: expected VM=UUID"))?;
    let uid = parse_uuid_strict(uid).ok_or(format!("--pod-uid {v}: not a UUID"))?;
    if name.is_empty() {
        return Err(format!("--pod-uid {v}: empty VM name"));
    }
    if pod_uids.insert(name.to_string(), uid).is_some() {
        return Err(format!("--pod-uid {v}: {name} given twice"));
    }
    Ok(())
}

/// The extra networks from `--networks N` and `--network-names A,B`.
fn networks(count: Option<usize>, names: Option<Vec<String>>) -> Result<Vec<String>, String> {
    let networks = match (count, names) {
        (Some(n), Some(names)) if n != names.len() => {
            return Err("--networks and --network-names disagree".into())
        }
        (_, Some(names)) => names,
        (n, None) => (1..=n.unwrap_or(0)).map(|i| format!("net{i}")).collect(),
    };
    if networks.len() > 200 {
        return Err("at most 200 extra networks".into());
    }
    Ok(networks)
}

// ---------------------------------------------------------------------------
// The simulated agent state

struct Vmi {
    id: String,
    vn_id: String,
    vn_name: String,
    mac: String,
    vlan_id: u32,
    annotations: Vec<String>,
    index: usize,
    ip4: Option<Ipv4Addr>,
    gw4: Ipv4Addr,
    dns4: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    gw6: Ipv6Addr,
    dns6: Ipv6Addr,
    /// The host interface of the POST that bound it; None: not bound.
    bound: Option<String>,
}

struct Pod {
    name: String,
    vm_uuid: String,
    vmis: Vec<Vmi>,
}

struct State {
    opts: Options,
    pods: Vec<Pod>,
    /// VN UUID per network index, fixed for the run.
    vns: Vec<String>,
    /// Addresses handed out per network.
    next_host: Vec<u32>,
    next_vlan: u32,
    rng: u64,
    seq: u64,
    record: Option<File>,
}

impl State {
    fn uuid(&mut self) -> String {
        // splitmix64: no crate needed, unique enough for a test double.
        let mut next = || {
            self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let (a, b) = (next(), next());
        let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    /// The pod called `name`, provisioned on first sight as kube-manager
    /// would: one VMI on the default network plus one per extra network.
    fn pod(&mut self, name: &str) -> &mut Pod {
        if let Some(i) = self.pods.iter().position(|p| p.name == name) {
            return &mut self.pods[i];
        }
        let parts: Vec<&str> = name.split("__").collect();
        let (cluster, ns, pod_name) = match parts.as_slice() {
            [c, n, p] => (c.to_string(), n.to_string(), p.to_string()),
            _ => ("k8s".to_string(), "default".to_string(), name.to_string()),
        };
        let vm_uuid = match self.opts.pod_uids.get(name).or(self.opts.vm_uuid.as_ref()) {
            Some(u) => u.clone(),
            None => self.uuid(),
        };
        let total = self.opts.networks.len() + 1;
        let mut vmis: Vec<Vmi> = (0..total)
            .map(|index| self.new_vmi(index, total, [&cluster, &ns, &pod_name]))
            .collect();
        // The agent orders /vm-cfg by VMI UUID; so do we.
        vmis.sort_by(|a, b| a.id.cmp(&b.id));
        self.pods.push(Pod {
            name: name.to_string(),
            vm_uuid,
            vmis,
        });
        let last = self.pods.len() - 1;
        &mut self.pods[last]
    }

    /// VMI `index` of `total` of a new pod named `[cluster, ns, pod]`, with
    /// the annotations kube-manager writes and the next free addresses.
    fn new_vmi(&mut self, index: usize, total: usize, [cluster, ns, pod_name]: [&str; 3]) -> Vmi {
        let (network, ifname) = if index == 0 {
            ("default".to_string(), None)
        } else {
            let spec = &self.opts.networks[index - 1];
            match spec.split_once('=') {
                Some((n, i)) => (n.to_string(), Some(i.to_string())),
                None => (spec.clone(), None),
            }
        };
        let id = self.uuid();
        let host = self.next_host[index];
        self.next_host[index] += 1;
        let net = 32 + index as u8;
        let v4 = |h: u32| Ipv4Addr::new(10, net, (h >> 8) as u8, h as u8);
        let v6 =
            |h: u32| Ipv6Addr::new(0xfd00, 0, 0, index as u16, 0, 0, (h >> 16) as u16, h as u16);
        let vlan_id = if self.opts.nested {
            self.next_vlan += 1;
            100 + (self.next_vlan - 1) % 3900
        } else {
            65535
        };
        let vn_name = if index == 0 {
            format!("default-domain:{cluster}-default:{cluster}-default-pod-network")
        } else {
            format!("default-domain:{cluster}-{ns}:{network}")
        };
        let mac = format!(
            "02:{}:{}:{}:{}:{}",
            &id[0..2],
            &id[2..4],
            &id[4..6],
            &id[6..8],
            &id[9..11]
        );
        let mut annotations = vec![
            format!("{{cluster:{cluster}}}"),
            format!("{{index:{index}/{total}}}"),
            "{kind:Pod}".to_string(),
            format!("{{name:{pod_name}}}"),
            format!("{{namespace:{ns}}}"),
            format!("{{network:{network}}}"),
            "{owner:k8s}".to_string(),
            format!("{{project:{cluster}-{ns}}}"),
        ];
        annotations.extend(ifname.map(|i| format!("{{interface:{i}}}")));
        Vmi {
            id,
            vn_id: self.vns[index].clone(),
            vn_name,
            mac,
            vlan_id,
            annotations,
            index,
            ip4: self.opts.ipv4.then(|| v4(host)),
            gw4: v4(1),
            dns4: v4(2),
            ip6: self.opts.ipv6.then(|| v6(host)),
            gw6: v6(1),
            dns6: v6(2),
            bound: None,
        }
    }

    /// The first fault for `ep` (None: an unmatched request) with requests
    /// left; consumes one.
    fn take_fault(&mut self, ep: Option<Endpoint>) -> Option<Kind> {
        let f = self.opts.faults.iter_mut().find(|f| {
            (Some(f.endpoint) == ep || f.endpoint == Endpoint::Any) && f.remaining != Some(0)
        })?;
        if let Some(n) = f.remaining.as_mut() {
            *n -= 1;
        }
        Some(f.kind)
    }

    fn record(&mut self, req: &Request, status: Option<u16>) {
        self.seq += 1;
        if self.opts.verbose {
            eprintln!("{} {} -> {:?}", req.method, req.path, status);
        }
        if let Some(f) = self.record.as_mut() {
            let line = json!({"seq": self.seq, "method": req.method, "path": req.path, "body": req.body, "status": status});
            // One write(2) per line, so a reader never sees half of one; a
            // failed write must not take the simulator down.
            let _ = f
                .write_all(format!("{line}\n").as_bytes())
                .and_then(|()| f.flush());
        }
    }
}

// ---------------------------------------------------------------------------
// Wire format

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking handler thread must not wedge every later request.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the agent's route regexes accept: lower-case hex only.
fn is_lower_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

fn parse_uuid_strict(s: &str) -> Option<String> {
    let l = s.to_ascii_lowercase();
    is_lower_uuid(&l).then_some(l)
}

/// The agent parses body UUIDs by stream extraction: the first 36 characters
/// count, anything unparsable is the nil UUID (and not an error).
fn parse_uuid_lenient(s: &str) -> Option<String> {
    s.get(..36)
        .and_then(parse_uuid_strict)
        .filter(|u| u != "00000000-0000-0000-0000-000000000000")
}

fn pretty(v: &impl serde::Serialize) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    match v.serialize(&mut ser) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => "[]".into(),
    }
}

/// The agent's error bodies: compact, text wrapped in `{ }` by the handler.
fn error_body(text: &str) -> String {
    json!({ "error": format!("{{ {text} }}") }).to_string()
}

fn unknown_request() -> (u16, String) {
    (404, json!({"error": "Unknown Request"}).to_string())
}

fn not_found() -> (u16, String) {
    (404, error_body("Not Found"))
}

/// `HHHHHH:MM:SS.ffffff`, hours since 1970, as the agent's `time` field.
fn agent_time() -> String {
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let s = us / 1_000_000;
    format!(
        "{}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        us % 1_000_000
    )
}

#[derive(serde::Serialize)]
struct CfgElem<'a> {
    id: &'a str,
    #[serde(rename = "vm-uuid")]
    vm_uuid: &'a str,
    #[serde(rename = "vn-id")]
    vn_id: &'a str,
    #[serde(rename = "vn-name")]
    vn_name: &'a str,
    #[serde(rename = "mac-address")]
    mac_address: &'a str,
    /// Stale on first add in the real agent: always false here.
    #[serde(rename = "sub-interface")]
    sub_interface: bool,
    #[serde(rename = "vlan-id")]
    vlan_id: u32,
    annotations: &'a [String],
}

#[derive(serde::Serialize)]
struct OperElem {
    id: String,
    #[serde(rename = "instance-id")]
    instance_id: String,
    #[serde(rename = "vn-id")]
    vn_id: String,
    #[serde(rename = "vm-project-id")]
    vm_project_id: String,
    #[serde(rename = "mac-address")]
    mac_address: String,
    #[serde(rename = "system-name")]
    system_name: String,
    #[serde(rename = "rx-vlan-id")]
    rx_vlan_id: u32,
    #[serde(rename = "tx-vlan-id")]
    tx_vlan_id: u32,
    #[serde(rename = "vhostuser-mode")]
    vhostuser_mode: u32,
    #[serde(rename = "ip-address", skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plen: Option<u32>,
    #[serde(rename = "dns-server", skip_serializing_if = "Option::is_none")]
    dns_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(rename = "v6-ip-address", skip_serializing_if = "Option::is_none")]
    v6_ip_address: Option<String>,
    #[serde(rename = "v6-dns-server", skip_serializing_if = "Option::is_none")]
    v6_dns_server: Option<String>,
    #[serde(rename = "v6-gateway", skip_serializing_if = "Option::is_none")]
    v6_gateway: Option<String>,
    author: String,
    time: String,
}

fn oper_elem(vm_uuid: &str, v: &Vmi) -> OperElem {
    OperElem {
        id: v.id.clone(),
        instance_id: vm_uuid.to_string(),
        vn_id: v.vn_id.clone(),
        vm_project_id: "00000000-0000-4000-8000-00000000beef".into(),
        mac_address: v.mac.clone(),
        system_name: v.bound.clone().unwrap_or_default(),
        rx_vlan_id: v.vlan_id,
        tx_vlan_id: v.vlan_id,
        vhostuser_mode: 0,
        ip_address: v.ip4.map(|a| a.to_string()),
        plen: v.ip4.map(|_| 16),
        dns_server: v.ip4.map(|_| v.dns4.to_string()),
        gateway: v.ip4.map(|_| v.gw4.to_string()),
        v6_ip_address: v.ip6.map(|a| a.to_string()),
        v6_dns_server: v.ip6.map(|_| v.dns6.to_string()),
        v6_gateway: v.ip6.map(|_| v.gw6.to_string()),
        author: "vrouter-agent-sim".into(),
        time: agent_time(),
    }
}

// ---------------------------------------------------------------------------
// Routes

/// What to do with a request.
enum Answer {
    Reply(u16, String),
    /// A reply sent this late.
    Late(Duration, u16, String),
    Hang,
}

fn route(state: &Mutex<State>, req: &Request) -> Answer {
    let path = req.path.as_str();
    let m = req.method.as_str();
    let seg: Vec<&str> = path
        .strip_prefix("/vm/")
        .map(|r| r.split('/').collect())
        .unwrap_or_default();
    // None: no route matches; only `any` faults apply to those.
    let endpoint = match (m, path) {
        ("GET", p) if p.starts_with("/vm-cfg/") => Some(Endpoint::VmCfg),
        ("POST", "/vm") => Some(Endpoint::Post),
        ("DELETE", _) if seg.len() == 1 && is_lower_uuid(seg[0]) => Some(Endpoint::Delete),
        ("GET", _) if (1..=2).contains(&seg.len()) && seg.iter().all(|s| is_lower_uuid(s)) => {
            Some(Endpoint::Vm)
        }
        _ => None,
    };
    let name = path.strip_prefix("/vm-cfg/").unwrap_or_default();
    let mut st = lock(state);
    if endpoint == Some(Endpoint::VmCfg) {
        // Provisioning happens on the first ask, whatever the fault says.
        if !name.is_empty() {
            st.pod(name);
        }
    }
    let fault = st.take_fault(endpoint);
    let (status, body) = match fault {
        Some(Kind::Hang) => return Answer::Hang,
        Some(Kind::NotFound) => not_found(),
        Some(Kind::ServerError) => (500, error_body("Simulated failure")),
        Some(Kind::Garbage) => (200, "this is not JSON <html>".to_string()),
        Some(Kind::Empty) => (200, "[]".to_string()),
        Some(Kind::Partial) => vm_cfg(&mut st, name, true),
        None | Some(Kind::Delay(_)) => match endpoint {
            Some(Endpoint::VmCfg) => vm_cfg(&mut st, name, false),
            Some(Endpoint::Post) => post_vm(&mut st, &req.body),
            Some(Endpoint::Delete) => delete_vm(&mut st, seg[0]),
            Some(_) => get_vm(&st, seg[0], seg.get(1).copied()),
            None => unknown_request(),
        },
    };
    match fault {
        Some(Kind::Delay(ms)) => Answer::Late(Duration::from_millis(ms), status, body),
        _ => Answer::Reply(status, body),
    }
}

fn vm_cfg(st: &mut State, name: &str, partial: bool) -> (u16, String) {
    let Some(pod) = st.pods.iter().find(|p| p.name == name) else {
        return not_found();
    };
    let top = pod.vmis.len().saturating_sub(1);
    let elems: Vec<CfgElem> = pod
        .vmis
        .iter()
        .filter(|v| !partial || v.index != top)
        .map(|v| CfgElem {
            id: &v.id,
            vm_uuid: &pod.vm_uuid,
            vn_id: &v.vn_id,
            vn_name: &v.vn_name,
            mac_address: &v.mac,
            sub_interface: false,
            vlan_id: v.vlan_id,
            annotations: &v.annotations,
        })
        .collect();
    (200, pretty(&elems))
}

fn is_oper(nested: bool, v: &Vmi) -> bool {
    nested || v.bound.is_some()
}

fn get_vm(st: &State, vm: &str, vmi: Option<&str>) -> (u16, String) {
    let nested = st.opts.nested;
    match vmi {
        // Form 2: the VM part only has to be a non-nil UUID; the VMI is
        // looked up on its own (docs/agent-api.md §6).
        Some(vmi) => {
            if vm == "00000000-0000-0000-0000-000000000000" {
                return not_found();
            }
            for p in &st.pods {
                if let Some(v) = p.vmis.iter().find(|v| v.id == vmi && is_oper(nested, v)) {
                    return (200, pretty(&[oper_elem(&p.vm_uuid, v)]));
                }
            }
            not_found()
        }
        // Form 1: every VMI of the VM must be ready, or the whole answer is 404.
        None => match st.pods.iter().find(|p| p.vm_uuid == vm) {
            Some(p) if p.vmis.iter().all(|v| is_oper(nested, v)) => {
                let elems: Vec<OperElem> =
                    p.vmis.iter().map(|v| oper_elem(&p.vm_uuid, v)).collect();
                (200, pretty(&elems))
            }
            _ => not_found(),
        },
    }
}

/// `POST /vm` with the agent's checks, in the agent's order.
fn post_vm(st: &mut State, body: &str) -> (u16, String) {
    let doc: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return (500, error_body(&format!("Invalid Json string ==> {body}"))),
    };
    let Some(obj) = doc.as_object() else {
        return (
            500,
            error_body(&format!("Unexpected Json string ==> {body}")),
        );
    };
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let mut fields = BTreeMap::new();
    for (key, is_uuid) in [
        ("vm-uuid", true),
        ("host-ifname", false),
        ("vm-name", false),
        ("vn-uuid", true),
        ("vmi-uuid", true),
    ] {
        match text(key) {
            Some(v) => fields.insert(key, v),
            None if is_uuid => {
                return (
                    500,
                    error_body(&format!("Invalid or missing data for <{key}>")),
                )
            }
            None => {
                return (
                    500,
                    error_body(&format!("Invalid or missing field for <{key}>")),
                )
            }
        };
    }
    let (vm, vn, vmi) = (
        parse_uuid_lenient(&fields["vm-uuid"]),
        parse_uuid_lenient(&fields["vn-uuid"]),
        parse_uuid_lenient(&fields["vmi-uuid"]),
    );
    let ifname = fields["host-ifname"].clone();
    let dataplane = st.opts.dataplane;
    // The subscription binds only when (vm, vn, vmi) matches the config;
    // anything else is stored by the agent but never bound (still 200).
    for p in st.pods.iter_mut() {
        if Some(&p.vm_uuid) != vm.as_ref() {
            continue;
        }
        for v in p.vmis.iter_mut() {
            if Some(&v.id) == vmi.as_ref() && Some(&v.vn_id) == vn.as_ref() {
                v.bound = Some(ifname.clone());
                if dataplane {
                    dataplane_add(v, &ifname);
                }
            }
        }
    }
    (200, "{}".to_string())
}

fn delete_vm(st: &mut State, vm: &str) -> (u16, String) {
    let dataplane = st.opts.dataplane;
    for p in st.pods.iter_mut().filter(|p| p.vm_uuid == vm) {
        for v in p.vmis.iter_mut() {
            if let Some(ifname) = v.bound.take() {
                if dataplane {
                    dataplane_del(v, &ifname);
                }
            }
        }
    }
    (200, "{}".to_string())
}

/// Runs `ip` (errors are reported, not fatal: the tap may be gone already).
fn ip(args: &[&str]) {
    match Command::new("ip").args(args).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => eprintln!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!("ip {}: {e}", args.join(" ")),
    }
}

fn dataplane_add(v: &Vmi, tap: &str) {
    ip(&["link", "set", tap, "up"]);
    if let Some(a) = v.ip4 {
        ip(&["addr", "replace", &format!("{}/32", v.gw4), "dev", tap]);
        ip(&["route", "replace", &format!("{a}/32"), "dev", tap]);
    }
    if let Some(a) = v.ip6 {
        ip(&[
            "addr",
            "replace",
            &format!("{}/128", v.gw6),
            "dev",
            tap,
            "nodad",
        ]);
        ip(&["-6", "route", "replace", &format!("{a}/128"), "dev", tap]);
    }
}

fn dataplane_del(v: &Vmi, tap: &str) {
    if let Some(a) = v.ip4 {
        ip(&["route", "del", &format!("{a}/32"), "dev", tap]);
        ip(&["addr", "del", &format!("{}/32", v.gw4), "dev", tap]);
    }
    if let Some(a) = v.ip6 {
        ip(&["-6", "route", "del", &format!("{a}/128"), "dev", tap]);
        ip(&["addr", "del", &format!("{}/128", v.gw6), "dev", tap]);
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1

struct Request {
    method: String,
    path: String,
    body: String,
    close: bool,
}

const MAX_LINE: u64 = 16 * 1024;
const MAX_HEADERS: usize = 100;
const MAX_BODY: usize = 1 << 20;

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_line(r: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(bad("line too long or truncated"));
    }
    Ok(Some(
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string(),
    ))
}

/// Reads one request; None at a clean end of the connection.
fn read_request(r: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let line = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v)) => (m.to_string(), t.to_string(), v.to_string()),
        _ => return Err(bad("bad request line")),
    };
    let mut close = version == "HTTP/1.0";
    let mut length = 0usize;
    for _ in 0..=MAX_HEADERS {
        let Some(h) = read_line(r)? else {
            return Err(bad("eof in headers"));
        };
        if h.is_empty() {
            // The query string is not part of the match (docs/agent-api.md §1).
            let path = target.split('?').next().unwrap_or_default().to_string();
            let mut body = vec![0; length];
            r.read_exact(&mut body)?;
            let body = String::from_utf8_lossy(&body).into_owned();
            return Ok(Some(Request {
                method,
                path,
                body,
                close,
            }));
        }
        let (k, v) = h.split_once(':').ok_or(bad("bad header"))?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
        match k.as_str() {
            "content-length" => {
                length = v.parse().map_err(|_| bad("bad content-length"))?;
                if length > MAX_BODY {
                    return Err(bad("body too large"));
                }
            }
            "transfer-encoding" => return Err(bad("chunked bodies are not supported")),
            "connection" if v.contains("close") => close = true,
            "connection" if v.contains("keep-alive") => close = false,
            _ => {}
        }
    }
    Err(bad("too many headers"))
}

fn respond(w: &mut TcpStream, status: u16, body: &str) -> io::Result<()> {
    // One write per response; the reason phrase is always OK, like the agent.
    let msg = format!(
        "HTTP/1.1 {status} OK\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    w.write_all(msg.as_bytes())?;
    w.flush()
}

fn serve(state: Arc<Mutex<State>>, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    loop {
        let req = match read_request(&mut r) {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                let _ = respond(&mut w, 400, &error_body(&e.to_string()));
                return;
            }
        };
        match route(&state, &req) {
            Answer::Reply(status, body) => {
                lock(&state).record(&req, Some(status));
                if respond(&mut w, status, &body).is_err() || req.close {
                    return;
                }
            }
            Answer::Late(delay, status, body) => {
                lock(&state).record(&req, Some(status));
                std::thread::sleep(delay);
                if respond(&mut w, status, &body).is_err() || req.close {
                    return;
                }
            }
            Answer::Hang => {
                lock(&state).record(&req, None);
                // Never answer; hold the connection until the client gives up.
                let _ = w.set_read_timeout(None);
                let _ = io::copy(&mut r, &mut io::sink());
                return;
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vrouter-agent-sim: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let record = opts.record.as_ref().map(|p| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap_or_else(|e| panic!("--record {p}: {e}"))
    });
    let listener =
        TcpListener::bind(&opts.listen).unwrap_or_else(|e| panic!("bind {}: {e}", opts.listen));
    let local = listener.local_addr().expect("local address");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    let mut state = State {
        pods: Vec::new(),
        vns: Vec::new(),
        next_host: vec![16; opts.networks.len() + 1],
        next_vlan: 0,
        rng: seed,
        seq: 0,
        record,
        opts,
    };
    state.vns = (0..state.next_host.len()).map(|_| state.uuid()).collect();
    let state = Arc::new(Mutex::new(state));
    println!("listening on {local}");
    io::stdout().flush().expect("flush stdout");
    let listener = Arc::new(listener);
    for _ in 0..ACCEPTORS {
        let (l, st) = (Arc::clone(&listener), Arc::clone(&state));
        std::thread::spawn(move || acceptor(l, st));
    }
    loop {
        std::thread::park();
    }
}

/// Threads waiting in accept(). Each connection is served by the thread
/// that accepted it, which first starts its replacement: a thread started
/// only once the connection is there waits a scheduler slice before it
/// runs (3 ms per connection on a busy 2-core machine), a delay the
/// agent's own event loop does not have and the plugin's benchmark would
/// otherwise count.
const ACCEPTORS: usize = 4;

fn acceptor(listener: Arc<TcpListener>, state: Arc<Mutex<State>>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let (l, st) = (Arc::clone(&listener), Arc::clone(&state));
                std::thread::spawn(move || acceptor(l, st));
                serve(state, stream);
                return;
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}
