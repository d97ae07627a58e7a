//! vRouter agent port-IPC client (blocking ureq, timeouts on every request).
//!
//! The agent answers `404` both for "not yet" and "never", may never answer
//! `/vm-cfg` at all, and returns partial lists while kube-manager is still
//! creating VMIs (agent-api.md §9). So every request carries connect and total
//! timeouts, bodies are size-capped, and the two poll phases share one shape:
//! one deadline (`poll_retries` x `poll_timeout`), a first sleep of 25 ms that
//! doubles up to `poll_timeout`, and every "not ready" answer retried.
//!
//! Everything the agent sends is validated before use: UUIDs end up in file
//! paths and URLs, MACs and addresses in netlink requests.

use crate::cni::error::{code, Error, Result};
use crate::ids::{ContainerId, IfName, Uuid, VmName};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Largest response body we read (the agent's answers are a few KiB).
const MAX_BODY: u64 = 1 << 20;
/// Connect timeout of every request (the agent is local or one hop away).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Upper bound of one request; the poll timeout lowers it.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A request near the deadline still gets at least this long (bounded by the
/// per-request timeout), so the last attempt is not doomed by a tiny budget.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_millis(200);
/// First sleep between attempts: a pod starts within milliseconds of the
/// agent becoming ready.
const FIRST_SLEEP: Duration = Duration::from_millis(25);
/// `vlan-id` of a VMI that is not a VLAN sub-interface.
pub const NO_VLAN: u32 = 65535;

/// Parsed `annotations` of a `/vm-cfg` element: `{key:value}` strings, split
/// at the first `:`; unknown keys kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Annotations(pub BTreeMap<String, String>);

impl Annotations {
    /// Parses the agent's strings; malformed entries are skipped, never panic;
    /// of duplicate keys the last wins.
    ///
    /// The agent writes `{` + key + `:` + value + `}` with no quoting, so we
    /// strip exactly one brace on each side (tolerating their absence), split
    /// at the first `:` (values may contain colons) and keep the rest as is.
    pub fn parse(raw: &[String]) -> Annotations {
        let mut map = BTreeMap::new();
        for s in raw {
            let inner = s.strip_prefix('{').unwrap_or(s);
            let inner = inner.strip_suffix('}').unwrap_or(inner);
            match inner.split_once(':') {
                Some((k, v)) if !k.is_empty() => {
                    map.insert(k.to_string(), v.to_string());
                }
                _ => log::debug!("skipping malformed annotation {s:?}"),
            }
        }
        Annotations(map)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `index` as (i, total), None when absent or malformed (including
    /// `total == 0` and `i >= total`).
    pub fn index(&self) -> Option<(u32, u32)> {
        let (i, total) = self.get("index")?.split_once('/')?;
        let (i, total) = (i.parse::<u32>().ok()?, total.parse::<u32>().ok()?);
        (i < total).then_some((i, total))
    }

    /// The network name: `default` for the cluster network, else the
    /// NetworkAttachmentDefinition name.
    pub fn network(&self) -> Option<&str> {
        self.get("network")
    }

    /// The interface name the pod's networks annotation asked for, if any.
    pub fn interface(&self) -> Option<&str> {
        self.get("interface")
    }
}

/// One element of `GET /vm-cfg/<vm-name>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VmiConfig {
    /// VMI UUID (`id`), lower-cased.
    pub id: String,
    /// VM UUID (`vm-uuid`): the pod UID, lower-cased.
    pub vm_uuid: String,
    /// VN UUID (`vn-id`), lower-cased: the `vn-uuid` of the POST.
    pub vn_id: String,
    /// VN FQ name, informational.
    pub vn_name: String,
    /// MAC address, lower-cased `xx:xx:xx:xx:xx:xx`.
    pub mac_address: String,
    /// 65535 when the VMI is not a VLAN sub-interface.
    pub vlan_id: u32,
    /// The parsed annotations.
    pub annotations: Annotations,
}

/// One element of `GET /vm/<vm-uuid>[/<vmi-uuid>]`. UUIDs are lower-cased;
/// addresses are validated (v4 fields parse as IPv4, v6 fields as IPv6).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VmiOper {
    /// VMI UUID.
    pub id: String,
    /// VM UUID (the agent's `instance-id`).
    pub instance_id: String,
    /// VN UUID (may be empty).
    pub vn_id: String,
    /// Oper MAC address.
    pub mac_address: String,
    /// Primary IPv4 address, present once a v4 IPAM matched.
    pub ip_address: Option<String>,
    /// IPv4 prefix length (0..=32).
    pub plen: Option<u8>,
    /// IPv4 gateway (`0.0.0.0` when none).
    pub gateway: Option<String>,
    /// IPv4 DNS server (`0.0.0.0` when none).
    pub dns_server: Option<String>,
    /// Primary IPv6 address (the agent sends no v6 prefix length).
    pub v6_ip_address: Option<String>,
    /// IPv6 gateway.
    pub v6_gateway: Option<String>,
    /// IPv6 DNS server.
    pub v6_dns_server: Option<String>,
}

impl VmiOper {
    /// True when the agent has given the VMI an IPv4 or IPv6 address.
    pub fn has_address(&self) -> bool {
        let v4 = self
            .ip_address
            .as_deref()
            .and_then(|a| a.parse::<Ipv4Addr>().ok());
        let v6 = self
            .v6_ip_address
            .as_deref()
            .and_then(|a| a.parse::<Ipv6Addr>().ok());
        v4.is_some_and(|a| !a.is_unspecified()) || v6.is_some_and(|a| !a.is_unspecified())
    }
}

/// The body of `POST /vm`, also the content of the port file's agent part.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortRequest {
    /// Pod UID.
    #[serde(rename = "vm-uuid")]
    pub vm_uuid: Uuid,
    /// `<cluster>__<namespace>__<pod>`.
    #[serde(rename = "vm-name")]
    pub vm_name: VmName,
    /// Host-side interface name.
    #[serde(rename = "host-ifname")]
    pub host_ifname: IfName,
    /// Must be the VMI's configured VN (`vn-id` of `/vm-cfg`).
    #[serde(rename = "vn-uuid")]
    pub vn_uuid: Uuid,
    /// VMI UUID.
    #[serde(rename = "vmi-uuid")]
    pub vmi_uuid: Uuid,
    /// The CNI container id.
    #[serde(rename = "vm-id")]
    pub vm_id: ContainerId,
    /// The interface name inside the pod.
    #[serde(rename = "vm-ifname")]
    pub vm_ifname: IfName,
    /// The netns path (as the reference sends it).
    #[serde(rename = "vm-namespace")]
    pub vm_namespace: String,
}

/// Returns the lower-cased canonical form of a UUID
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex of either case), or None.
/// Agent-supplied ids end up in URLs and file names: nothing else passes.
pub fn parse_uuid(s: &str) -> Option<String> {
    let ok = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    ok.then(|| s.to_ascii_lowercase())
}

/// Lower-cased `xx:xx:xx:xx:xx:xx`, or None.
fn parse_mac(s: &str) -> Option<String> {
    let ok = s.len() == 17
        && s.bytes().enumerate().all(|(i, b)| match i % 3 {
            2 => b == b':',
            _ => b.is_ascii_hexdigit(),
        });
    ok.then(|| s.to_ascii_lowercase())
}

/// `/vm-cfg` element as the agent sends it (kebab-case). Agents before
/// 2020-05 called `vm-uuid` `instance-id`.
#[derive(serde::Deserialize)]
struct WireVmiConfig {
    id: String,
    #[serde(rename = "vm-uuid", alias = "instance-id")]
    vm_uuid: String,
    #[serde(rename = "vn-id")]
    vn_id: String,
    #[serde(rename = "vn-name", default)]
    vn_name: String,
    #[serde(rename = "mac-address")]
    mac_address: String,
    #[serde(rename = "vlan-id", default = "no_vlan")]
    vlan_id: u32,
    /// Left out by the agent when the VMI has no annotations.
    #[serde(default)]
    annotations: Vec<String>,
}

fn no_vlan() -> u32 {
    NO_VLAN
}

impl WireVmiConfig {
    fn validate(self) -> std::result::Result<VmiConfig, String> {
        let uuid = |what: &str, v: &str| parse_uuid(v).ok_or(format!("bad {what} {v:?}"));
        if self.vlan_id > NO_VLAN {
            return Err(format!("bad vlan-id {}", self.vlan_id));
        }
        Ok(VmiConfig {
            id: uuid("id", &self.id)?,
            vm_uuid: uuid("vm-uuid", &self.vm_uuid)?,
            vn_id: uuid("vn-id", &self.vn_id)?,
            vn_name: self.vn_name,
            mac_address: parse_mac(&self.mac_address)
                .ok_or(format!("bad mac-address {:?}", self.mac_address))?,
            vlan_id: self.vlan_id,
            annotations: Annotations::parse(&self.annotations),
        })
    }
}

/// `/vm` element as the agent sends it.
#[derive(serde::Deserialize)]
struct WireVmiOper {
    id: String,
    #[serde(rename = "instance-id", default)]
    instance_id: String,
    #[serde(rename = "vn-id", default)]
    vn_id: String,
    #[serde(rename = "mac-address", default)]
    mac_address: String,
    #[serde(rename = "ip-address")]
    ip_address: Option<String>,
    plen: Option<u32>,
    gateway: Option<String>,
    #[serde(rename = "dns-server")]
    dns_server: Option<String>,
    #[serde(rename = "v6-ip-address")]
    v6_ip_address: Option<String>,
    #[serde(rename = "v6-gateway")]
    v6_gateway: Option<String>,
    #[serde(rename = "v6-dns-server")]
    v6_dns_server: Option<String>,
}

impl WireVmiOper {
    fn validate(self) -> std::result::Result<VmiOper, String> {
        fn addr<T: std::str::FromStr>(
            what: &str,
            v: Option<String>,
        ) -> std::result::Result<Option<String>, String> {
            match v {
                Some(s) if s.parse::<T>().is_err() => Err(format!("bad {what} {s:?}")),
                other => Ok(other),
            }
        }
        let lower_uuid = |what: &str, v: &str| -> std::result::Result<String, String> {
            if v.is_empty() {
                return Ok(String::new());
            }
            parse_uuid(v).ok_or(format!("bad {what} {v:?}"))
        };
        let plen = match self.plen {
            Some(p) if p > 32 => return Err(format!("bad plen {p}")),
            Some(p) => u8::try_from(p).ok(),
            None => None,
        };
        Ok(VmiOper {
            id: parse_uuid(&self.id).ok_or(format!("bad id {:?}", self.id))?,
            instance_id: lower_uuid("instance-id", &self.instance_id)?,
            vn_id: lower_uuid("vn-id", &self.vn_id)?,
            mac_address: self.mac_address.to_ascii_lowercase(),
            ip_address: addr::<Ipv4Addr>("ip-address", self.ip_address)?,
            plen,
            gateway: addr::<Ipv4Addr>("gateway", self.gateway)?,
            dns_server: addr::<Ipv4Addr>("dns-server", self.dns_server)?,
            v6_ip_address: addr::<Ipv6Addr>("v6-ip-address", self.v6_ip_address)?,
            v6_gateway: addr::<Ipv6Addr>("v6-gateway", self.v6_gateway)?,
            v6_dns_server: addr::<Ipv6Addr>("v6-dns-server", self.v6_dns_server)?,
        })
    }
}

/// Parses a `/vm` answer body into validated elements.
fn parse_opers(body: &str) -> std::result::Result<Vec<VmiOper>, String> {
    let wire: Vec<WireVmiOper> =
        serde_json::from_str(body).map_err(|e| format!("malformed body: {e}"))?;
    wire.into_iter().map(WireVmiOper::validate).collect()
}

/// Checks a `/vm-cfg` answer: a non-empty array, every element with a valid
/// `index`, all of one VM, one `total`, each index once and none missing.
/// Returns the VMIs sorted by index; Err says why it is not complete yet.
fn complete_vm_cfg(body: &str) -> std::result::Result<Vec<VmiConfig>, String> {
    let wire: Vec<WireVmiConfig> =
        serde_json::from_str(body).map_err(|e| format!("malformed body: {e}"))?;
    let mut vmis = wire
        .into_iter()
        .map(WireVmiConfig::validate)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let first = vmis.first().ok_or("empty VMI list")?;
    let (vm_uuid, mut total) = (first.vm_uuid.clone(), None);
    let mut seen = Vec::new();
    for v in &vmis {
        let (i, t) = v
            .annotations
            .index()
            .ok_or(format!("VMI {} has no valid index annotation", v.id))?;
        if *total.get_or_insert(t) != t {
            return Err(format!(
                "VMIs disagree on the index total ({t} vs {total:?})"
            ));
        }
        if v.vm_uuid != vm_uuid {
            return Err(format!(
                "VMIs of different VMs ({} and {vm_uuid})",
                v.vm_uuid
            ));
        }
        if seen.contains(&i) {
            return Err(format!("index {i} appears twice"));
        }
        seen.push(i);
    }
    let total = total.unwrap_or(0) as usize;
    if vmis.len() != total {
        return Err(format!("incomplete: {} of {total} VMIs", vmis.len()));
    }
    vmis.sort_by_key(|v| v.annotations.index().map(|(i, _)| i));
    Ok(vmis)
}

/// The agent's error text: the `error` member of a JSON error body, else the
/// body itself, shortened.
fn error_text(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => e.error,
        Err(_) => body.chars().take(200).collect(),
    }
}

/// Why one request produced no HTTP answer.
enum Failure {
    /// Refused, reset, timed out...: the agent may come back, retry.
    Transport(String),
    /// Our own request is unusable (bad address): retrying cannot help.
    Fatal(String),
}

impl Failure {
    /// Classifies a ureq error of a request that had `timeout`.
    fn from_ureq(e: ureq::Error, timeout: Duration) -> Failure {
        match e {
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => Failure::Fatal(e.to_string()),
            ureq::Error::Timeout(_) => {
                Failure::Transport(format!("no answer within {} ms", timeout.as_millis()))
            }
            ureq::Error::Io(io) => Failure::Transport(io.to_string()),
            other => Failure::Transport(other.to_string()),
        }
    }

    /// The plugin error for a single (non-polled) request.
    fn into_error(self, what: &str, addr: &str) -> Error {
        match self {
            Failure::Transport(e) => Error::new(
                code::TRY_AGAIN_LATER,
                format!("{what}: vRouter agent at {addr} did not answer: {e}"),
            ),
            Failure::Fatal(e) => Error::new(
                code::INTERNAL,
                format!("{what}: bad request to {addr}: {e}"),
            ),
        }
    }
}

enum Method<'a> {
    Get,
    Post(&'a str),
    Delete,
}

/// A client of one agent, with the poll budget of one phase:
/// `poll_retries` x `poll_timeout`.
pub struct Agent {
    http: ureq::Agent,
    /// `ip:port`, IPv6 in brackets: both the URL authority and the name in messages.
    addr: String,
    poll_timeout: Duration,
    poll_retries: u32,
}

/// `ip:port`, bracketing IPv6 literals.
fn authority(ip: &str, port: u16) -> String {
    if ip.parse::<Ipv6Addr>().is_ok() {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// A blocking ureq agent for a local, unauthenticated HTTP/1.1 peer: no
/// proxy from the environment (it would redirect calls to the local agent),
/// error statuses as values (their bodies carry the agent's reason), no
/// redirects, no pooling (one short exchange per attempt; a stale pooled
/// connection would only add a failure mode).
fn http_agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(MAX_REQUEST_TIMEOUT))
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        LiteralResolver,
    )
}

/// The agent and the Mesos manager are addressed by IP literals (config
/// validates them), so no name is ever looked up. ureq's default resolver
/// would run getaddrinfo on a thread spawned per request (to honour the
/// timeout), pulling in musl's DNS client; this one only parses.
#[derive(Debug)]
struct LiteralResolver;

impl ureq::unversioned::resolver::Resolver for LiteralResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().ok_or(ureq::Error::HostNotFound)?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let ip: std::net::IpAddr = host.parse().map_err(|_| ureq::Error::HostNotFound)?;
        let port = authority.port_u16().unwrap_or(80);
        let mut addrs = self.empty();
        addrs.push(std::net::SocketAddr::new(ip, port));
        Ok(addrs)
    }
}

/// One exchange with `timeout` for all of it; returns status and body
/// (bodies of error statuses too, capped at [`MAX_BODY`]).
fn exchange(
    http: &ureq::Agent,
    url: &str,
    method: Method,
    timeout: Duration,
) -> std::result::Result<(u16, String), Failure> {
    // Every request gets its own limits: the connect timeout and a total
    // timeout covering the body too.
    fn limits<B>(rb: ureq::RequestBuilder<B>, timeout: Duration) -> ureq::RequestBuilder<B> {
        rb.config()
            .timeout_connect(Some(CONNECT_TIMEOUT.min(timeout)))
            .timeout_global(Some(timeout))
            .build()
    }
    let res = match method {
        Method::Get => limits(http.get(url), timeout).call(),
        Method::Delete => limits(http.delete(url), timeout).call(),
        Method::Post(body) => {
            let rb = http.post(url).header("Content-Type", "application/json");
            limits(rb, timeout).send(body)
        }
    };
    let mut resp = res.map_err(|e| Failure::from_ureq(e, timeout))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .lossy_utf8(true)
        .read_to_string()
        .map_err(|e| Failure::from_ureq(e, timeout))?;
    Ok((status, body))
}

impl Agent {
    /// A client of the agent at `ip:port`. Nothing is contacted yet.
    pub fn new(ip: &str, port: u16, poll_timeout: Duration, poll_retries: u32) -> Agent {
        Agent {
            http: http_agent(),
            addr: authority(ip, port),
            poll_timeout,
            poll_retries,
        }
    }

    /// `ip:port`, for messages.
    pub fn address(&self) -> String {
        self.addr.clone()
    }

    /// The timeout of one request: the poll timeout, within 100 ms..=5 s (a
    /// shorter one would fail spuriously on a busy node).
    fn request_timeout(&self) -> Duration {
        self.poll_timeout
            .clamp(Duration::from_millis(100), MAX_REQUEST_TIMEOUT)
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        timeout: Duration,
    ) -> std::result::Result<(u16, String), Failure> {
        let url = format!("http://{}{}", self.addr, path);
        exchange(&self.http, &url, method, timeout)
    }

    /// The poll loop shared by both phases: GET `path` until a 200 body is
    /// accepted by `ready` (which says why not otherwise) or the deadline
    /// passes. At least one attempt is made, even with a zero budget.
    fn poll<T>(
        &self,
        what: &str,
        path: &str,
        ready: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> Result<T> {
        let start = Instant::now();
        let budget = self.poll_timeout.saturating_mul(self.poll_retries);
        let deadline = start + budget;
        let per_request = self.request_timeout();
        let max_sleep = self.poll_timeout.max(Duration::from_millis(1));
        let mut sleep = FIRST_SLEEP.min(max_sleep);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            // Near the deadline the request is shortened, but never below
            // MIN_REQUEST_TIMEOUT: the poll ends by deadline + one request timeout.
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout = per_request.min(remaining.max(MIN_REQUEST_TIMEOUT));
            let last = match self.call(Method::Get, path, timeout) {
                Ok((200, body)) => match ready(&body) {
                    Ok(v) => {
                        log::info!(
                            "agent {}: {what} ready after {attempts} attempt(s), {:?}",
                            self.addr,
                            start.elapsed()
                        );
                        return Ok(v);
                    }
                    Err(why) => format!("HTTP 200: {why}"),
                },
                // 404 is "not yet" as much as "never" (agent-api.md §9.1).
                Ok((status, body)) => format!("HTTP {status}: {}", error_text(&body)),
                Err(Failure::Transport(e)) => e,
                Err(Failure::Fatal(e)) => {
                    return Err(Error::new(
                        code::INTERNAL,
                        format!("{what}: bad request to agent {}: {e}", self.addr),
                    ));
                }
            };
            log::debug!(
                "agent {}: GET {path} attempt {attempts}: not ready: {last}",
                self.addr
            );
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::new(
                    code::TRY_AGAIN_LATER,
                    format!(
                        "vRouter agent at {} did not provide {what} within {} ms ({attempts} attempts, GET {path}); last answer: {last}",
                        self.addr,
                        (now - start).as_millis()
                    ),
                )
                .with_details(format!(
                    "poll budget {} x {:?}; is the agent running and has kube-manager created the pod's interfaces?",
                    self.poll_retries, self.poll_timeout
                )));
            }
            std::thread::sleep(sleep.min(deadline - now));
            sleep = (sleep * 2).min(max_sleep);
        }
    }

    /// Polls `/vm-cfg/<vm_name>` until the list is complete (`index` total);
    /// code 11 when the deadline passes, naming agent, VM, last status and body.
    /// The VMIs are returned sorted by their `index` (0 = default network).
    pub fn poll_vm_cfg(&self, vm_name: &str) -> Result<Vec<VmiConfig>> {
        vm_name_arg(vm_name)?;
        let what = format!("the interfaces of VM {vm_name}");
        self.poll(&what, &format!("/vm-cfg/{vm_name}"), complete_vm_cfg)
    }

    /// Polls `/vm/<vm_uuid>` (or `/vm/<vm_uuid>/<vmi>` when exactly one VMI
    /// is asked for) until every VMI in `vmis` has an IPv4 or IPv6 address.
    /// Returns them in the order of `vmis`. Code 11 on deadline.
    pub fn poll_vm(&self, vm_uuid: &str, vmis: &[&str]) -> Result<Vec<VmiOper>> {
        let vm = uuid_arg("VM", vm_uuid)?;
        let wanted = vmis
            .iter()
            .map(|v| uuid_arg("VMI", v))
            .collect::<Result<Vec<_>>>()?;
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let path = match wanted.as_slice() {
            [one] => format!("/vm/{vm}/{one}"),
            _ => format!("/vm/{vm}"),
        };
        let what = format!("the IP addresses of VM {vm}");
        self.poll(&what, &path, |body| {
            let opers = parse_opers(body)?;
            wanted
                .iter()
                .map(|w| {
                    let o = opers
                        .iter()
                        .find(|o| &o.id == w)
                        .ok_or(format!("VMI {w} missing from the answer"))?;
                    if o.has_address() {
                        Ok(o.clone())
                    } else {
                        Err(format!("VMI {w} has no IP address yet"))
                    }
                })
                .collect()
        })
    }

    /// One `GET /vm/<vm>/<vmi>` (no polling), for CHECK. None on 404 or when
    /// the answer does not contain the VMI.
    pub fn get_vmi(&self, vm_uuid: &str, vmi_uuid: &str) -> Result<Option<VmiOper>> {
        let (vm, vmi) = (uuid_arg("VM", vm_uuid)?, uuid_arg("VMI", vmi_uuid)?);
        let path = format!("/vm/{vm}/{vmi}");
        let what = format!("GET {path}");
        let (status, body) = self
            .call(Method::Get, &path, self.request_timeout())
            .map_err(|f| f.into_error(&what, &self.addr))?;
        log::debug!("agent {}: {what}: HTTP {status}", self.addr);
        match status {
            200 => {
                let opers = parse_opers(&body).map_err(|e| self.agent_error(&what, status, &e))?;
                Ok(opers.into_iter().find(|o| o.id == vmi))
            }
            404 => Ok(None),
            _ => Err(self.agent_error(&what, status, &error_text(&body))),
        }
    }

    /// `POST /vm`: subscribes the host interface to the VMI. UUIDs are sent
    /// lower-cased; 200 or 201 is success, anything else code 101 with the
    /// agent's text, no answer code 11.
    pub fn post_vm(&self, req: &PortRequest) -> Result<()> {
        // The agent makes `vm-name` a directory name of its own port file.
        let body = serde_json::to_string(req)
            .map_err(|e| Error::new(code::INTERNAL, format!("encoding POST /vm: {e}")))?;
        let what = format!("POST /vm for VMI {} ({})", req.vmi_uuid, req.host_ifname);
        let (status, answer) = self
            .call(Method::Post(&body), "/vm", self.request_timeout())
            .map_err(|f| f.into_error(&what, &self.addr))?;
        log::info!("agent {}: {what}: HTTP {status}", self.addr);
        match status {
            200 | 201 => Ok(()),
            _ => Err(self.agent_error(&what, status, &error_text(&answer))),
        }
    }

    /// `DELETE /vm/<vm_uuid>`. The agent answers 200 for anything that
    /// matches the route, so success proves little (agent-api.md §5).
    pub fn delete_vm(&self, vm_uuid: &str) -> Result<()> {
        let vm = uuid_arg("VM", vm_uuid)?;
        let path = format!("/vm/{vm}");
        let what = format!("DELETE {path}");
        let (status, answer) = self
            .call(Method::Delete, &path, self.request_timeout())
            .map_err(|f| f.into_error(&what, &self.addr))?;
        log::info!("agent {}: {what}: HTTP {status}", self.addr);
        match status {
            200 => Ok(()),
            _ => Err(self.agent_error(&what, status, &error_text(&answer))),
        }
    }

    /// Ok when the agent answers any HTTP response within `timeout` (STATUS).
    /// `GET /` is not a route, so a live agent says 404 `Unknown Request`;
    /// unlike `/vm-cfg` it is answered inline and cannot hang. No answer is
    /// code 50 (NOT_AVAILABLE).
    pub fn probe(&self, timeout: Duration) -> Result<()> {
        match self.call(Method::Get, "/", timeout.max(Duration::from_millis(1))) {
            Ok((status, _)) => {
                log::debug!("agent {}: probe: HTTP {status}", self.addr);
                Ok(())
            }
            Err(Failure::Transport(e) | Failure::Fatal(e)) => Err(Error::new(
                code::NOT_AVAILABLE,
                format!("vRouter agent at {} is not reachable: {e}", self.addr),
            )),
        }
    }

    fn agent_error(&self, what: &str, status: u16, text: &str) -> Error {
        Error::new(
            code::AGENT,
            format!(
                "{what}: vRouter agent at {} answered HTTP {status}: {text}",
                self.addr
            ),
        )
    }
}

/// Checks a VM name before it goes into a URL or the agent's file tree: the
/// store's file-name rule, and only characters that reach the agent intact
/// (it matches `/vm-cfg/(.*)` without URL-decoding).
fn vm_name_arg(vm_name: &str) -> Result<()> {
    VmName::parse(vm_name).map_err(|e| Error::new(code::INVALID_CONFIG, e.to_string()))?;
    if vm_name
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"/?#%".contains(&b))
    {
        Ok(())
    } else {
        Err(Error::new(
            code::INTERNAL,
            format!("VM name {vm_name:?} cannot be sent to the agent"),
        ))
    }
}

/// Validates and lower-cases a UUID argument before it goes into a URL.
fn uuid_arg(what: &str, v: &str) -> Result<String> {
    parse_uuid(v).ok_or_else(|| Error::new(code::INTERNAL, format!("invalid {what} UUID {v:?}")))
}

/// Mesos manager notification: `POST http://<ip>:<port>/<add|del>_cni_info`
/// with `{"cid","cmd","args"}` (args = the raw stdin config as a string).
/// `cmd` is `ADD` or `DEL` (any case); a non-200 answer is code 101, no
/// answer code 11.
pub fn mesos_notify(ip: &str, port: u16, cmd: &str, container_id: &str, stdin: &str) -> Result<()> {
    let cmd = cmd.to_ascii_uppercase();
    let route = match cmd.as_str() {
        "ADD" => "/add_cni_info",
        "DEL" => "/del_cni_info",
        _ => {
            return Err(Error::new(
                code::INTERNAL,
                format!("no Mesos notification for command {cmd:?}"),
            ))
        }
    };
    let body = serde_json::json!({ "cid": container_id, "cmd": cmd, "args": stdin }).to_string();
    let addr = authority(ip, port);
    let what = format!("Mesos manager POST {route}");
    let (status, answer) = exchange(
        &http_agent(),
        &format!("http://{addr}{route}"),
        Method::Post(&body),
        MAX_REQUEST_TIMEOUT,
    )
    .map_err(|f| match f {
        Failure::Transport(e) => Error::new(
            code::TRY_AGAIN_LATER,
            format!("{what}: {addr} did not answer: {e}"),
        ),
        Failure::Fatal(e) => Error::new(
            code::INTERNAL,
            format!("{what}: bad request to {addr}: {e}"),
        ),
    })?;
    log::info!("{what} to {addr}: HTTP {status}");
    match status {
        200 => Ok(()),
        _ => Err(Error::new(
            code::AGENT,
            format!(
                "{what}: {addr} answered HTTP {status}: {}",
                error_text(&answer)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(raw: &[&str]) -> Annotations {
        Annotations::parse(&raw.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn annotations_split_at_first_colon_and_keep_unknown_keys() {
        let a = ann(&[
            "{index:1/3}",
            "{network:a:b:c}",
            "{extra:x}",
            "{nocolon}",
            "{:empty-key}",
            "",
            "{",
            "}",
        ]);
        assert_eq!(a.index(), Some((1, 3)));
        assert_eq!(a.network(), Some("a:b:c"));
        assert_eq!(a.get("extra"), Some("x"));
        assert_eq!(a.0.len(), 3);
    }

    #[test]
    fn annotations_strip_exactly_one_brace_each_side() {
        let a = ann(&["{{k:v}}", "missing:braces", "{half:open", "quote:\"\\x"]);
        assert_eq!(a.get("{k"), Some("v}"));
        assert_eq!(a.get("missing"), Some("braces"));
        assert_eq!(a.get("half"), Some("open"));
        assert_eq!(a.get("quote"), Some("\"\\x"));
    }

    #[test]
    fn index_rejects_malformed() {
        for bad in [
            "{index:1}",
            "{index:3/3}",
            "{index:0/0}",
            "{index:-1/2}",
            "{index:a/b}",
            "{index: 0/1}",
        ] {
            assert_eq!(ann(&[bad]).index(), None, "{bad}");
        }
        assert_eq!(ann(&["{index:0/1}"]).index(), Some((0, 1)));
    }

    #[test]
    fn uuid_and_mac_validation() {
        assert_eq!(
            parse_uuid("0B1C2D3E-0000-4000-8000-00000000000A").as_deref(),
            Some("0b1c2d3e-0000-4000-8000-00000000000a")
        );
        for bad in [
            "",
            "../../etc/passwd",
            "0b1c2d3e-0000-4000-8000-00000000000",
            "0b1c2d3e-0000-4000-8000-00000000000g",
            "0b1c2d3e00000-4000-8000-00000000000a",
        ] {
            assert!(parse_uuid(bad).is_none(), "{bad}");
        }
        assert_eq!(
            parse_mac("02:AB:cd:00:11:22").as_deref(),
            Some("02:ab:cd:00:11:22")
        );
        assert!(parse_mac("02:ab:cd:00:11").is_none());
        assert!(parse_mac("02-ab-cd-00-11-22").is_none());
    }

    fn cfg(id: u8, index: &str) -> String {
        format!(
            r#"{{"id":"00000000-0000-4000-8000-0000000000{id:02x}","vm-uuid":"11111111-0000-4000-8000-000000000000",
            "vn-id":"22222222-0000-4000-8000-000000000000","vn-name":"d:p:n","mac-address":"02:00:00:00:00:{id:02x}",
            "vlan-id":65535,"annotations":["{{index:{index}}}"]}}"#
        )
    }

    #[test]
    fn vm_cfg_completeness_checks_every_element() {
        let ok = format!("[{},{}]", cfg(2, "1/2"), cfg(1, "0/2"));
        let v = complete_vm_cfg(&ok).unwrap();
        assert_eq!(v[0].annotations.index(), Some((0, 2)), "sorted by index");
        let cases = [
            (format!("[{}]", cfg(1, "0/2")), "incomplete"),
            (format!("[{},{}]", cfg(1, "0/2"), cfg(2, "1/3")), "disagree"),
            (format!("[{},{}]", cfg(1, "0/2"), cfg(2, "0/2")), "twice"),
            (
                format!("[{},{}]", cfg(1, "0/1"), cfg(2, "bad")),
                "no valid index",
            ),
            ("[]".to_string(), "empty"),
            ("{}".to_string(), "malformed"),
            ("garbage".to_string(), "malformed"),
        ];
        for (body, why) in cases {
            let e = complete_vm_cfg(&body).unwrap_err();
            assert!(e.contains(why), "{body}: {e}");
        }
    }

    #[test]
    fn vm_cfg_rejects_unsafe_ids() {
        let body = format!("[{}]", cfg(1, "0/1"))
            .replace("00000000-0000-4000-8000-000000000001", "../../x");
        assert!(complete_vm_cfg(&body).unwrap_err().contains("bad id"));
    }

    #[test]
    fn oper_validation() {
        let o = parse_opers(
            r#"[{"id":"00000000-0000-4000-8000-00000000000A","instance-id":"","vn-id":"","mac-address":"02:00:00:00:00:01",
            "ip-address":"10.0.0.5","plen":24,"gateway":"10.0.0.1","dns-server":"10.0.0.2","v6-ip-address":"fd00::5"}]"#,
        )
        .unwrap();
        assert_eq!(o[0].id, "00000000-0000-4000-8000-00000000000a");
        assert!(o[0].has_address());
        assert!(parse_opers(
            r#"[{"id":"00000000-0000-4000-8000-000000000001","ip-address":"fd00::1"}]"#
        )
        .is_err());
        assert!(
            parse_opers(r#"[{"id":"00000000-0000-4000-8000-000000000001","plen":33}]"#).is_err()
        );
        let none = parse_opers(
            r#"[{"id":"00000000-0000-4000-8000-000000000001","ip-address":"0.0.0.0"}]"#,
        )
        .unwrap();
        assert!(!none[0].has_address());
    }

    #[test]
    fn error_text_prefers_the_error_member() {
        assert_eq!(error_text(r#"{"error":"{ Not Found }"}"#), "{ Not Found }");
        assert_eq!(error_text("plain"), "plain");
    }
}
