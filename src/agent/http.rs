//! The HTTP transport to the agent and the Mesos manager (docs/agent-api.md
//! §1): blocking ureq, a typed peer address (no name is ever resolved), no
//! proxy, no redirects, capped bodies, connect and total timeouts on every
//! request. This is the one place where a failed exchange becomes a plugin
//! error ([`Failure::into_error`], [`Answer::into_error`]).

use crate::cni::error::{code, Error};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Largest response body read. [`super::wire::MAX_VMIS`] VMIs of the
/// agent's pretty-printed JSON take about 50 KiB.
pub const MAX_BODY: u64 = 256 << 10;
/// Connect timeout of every request (the agent is local or one hop away).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A request method and its body.
#[derive(Clone, Copy)]
pub enum Method<'a> {
    Get,
    /// A JSON body.
    Post(&'a str),
    Delete,
}

impl Method<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post(_) => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The plugin error for an answer that refuses `what`: code 101 with the
    /// peer's own text.
    pub fn into_error(self, peer: &str, what: &str) -> Error {
        Error::new(
            code::AGENT,
            format!(
                "{what}: {peer} answered HTTP {}: {}",
                self.status,
                super::wire::error_text(&self.body)
            ),
        )
    }
}

/// Why an exchange produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer: refused, reset, timed out, not HTTP. The peer may come
    /// back: retrying is right.
    Transport(String),
    /// An answer with a body longer than [`MAX_BODY`]: never usable.
    TooLarge(u16),
    /// Our own request cannot be sent: a bug, retrying cannot help.
    Fatal(String),
}

impl Failure {
    /// The plugin error for an exchange about `what` with `peer` that
    /// failed: code 11 when nothing answered, 101 for an oversized answer,
    /// 999 for our own bug.
    pub fn into_error(self, peer: &str, what: &str) -> Error {
        match self {
            Failure::Transport(e) => Error::new(
                code::TRY_AGAIN_LATER,
                format!("{what}: {peer} did not answer: {e}"),
            ),
            Failure::TooLarge(status) => Error::new(
                code::AGENT,
                format!("{what}: {peer} answered HTTP {status} with a body over {MAX_BODY} bytes"),
            ),
            Failure::Fatal(e) => Error::new(
                code::INTERNAL,
                format!("{what}: bad request to {peer}: {e}"),
            ),
        }
    }

    /// Classifies a ureq error of a request that had `timeout`.
    fn from_ureq(e: ureq::Error, timeout: Duration, status: Option<u16>) -> Failure {
        match e {
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => Failure::Fatal(e.to_string()),
            ureq::Error::BodyExceedsLimit(_) => Failure::TooLarge(status.unwrap_or(0)),
            ureq::Error::Timeout(_) => {
                Failure::Transport(format!("no answer within {} ms", timeout.as_millis()))
            }
            ureq::Error::Io(io) => Failure::Transport(io.to_string()),
            other => Failure::Transport(other.to_string()),
        }
    }

    /// A failure a connection closed by the peer while it sat idle in the
    /// pool produces: the request never reached a live connection.
    fn is_stale_connection(e: &ureq::Error) -> bool {
        use std::io::ErrorKind::*;
        matches!(e, ureq::Error::Io(io)
            if matches!(io.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe))
    }
}

/// An HTTP/1.1 client of one peer.
pub struct Http {
    agent: ureq::Agent,
    peer: SocketAddr,
    keep_alive: bool,
    /// An exchange completed, so the pool may hold a connection that the
    /// peer has closed since.
    pooled: AtomicBool,
}

impl Http {
    /// A client of `peer`. With `keep_alive`, one idle connection is kept
    /// for the next request of this process; without, every request opens
    /// its own.
    pub fn new(peer: SocketAddr, keep_alive: bool) -> Http {
        let idle = usize::from(keep_alive);
        let config = ureq::Agent::config_builder()
            // A proxy from the environment would send calls meant for the
            // local agent elsewhere.
            .proxy(None)
            // Error statuses are answers: their bodies carry the agent's reason.
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections(idle)
            .max_idle_connections_per_host(idle)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build();
        Http {
            agent: ureq::Agent::with_parts(
                config,
                // Plain TCP only: ureq's default chain adds SOCKS and
                // CONNECT-proxy connectors (no proxy is used) and TLS
                // (not built); about 10 KB.
                ureq::unversioned::transport::TcpConnector::default(),
                LiteralResolver,
            ),
            peer,
            keep_alive,
            pooled: AtomicBool::new(false),
        }
    }

    /// `ip:port` (IPv6 in brackets), for URLs and messages.
    pub fn peer(&self) -> String {
        self.peer.to_string()
    }

    /// One exchange, all of it (connect, send, answer, body) within
    /// `timeout`. A request that fails on a connection the peer closed
    /// while it was idle is sent once more on a new connection, within
    /// the same `timeout`.
    pub fn exchange(
        &self,
        method: Method,
        path: &str,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let start = Instant::now();
        let url = format!("http://{}{path}", self.peer);
        match self.once(&url, method, timeout) {
            Err(e)
                if self.keep_alive
                    && self.pooled.load(Ordering::Relaxed)
                    && Failure::is_stale_connection(&e) =>
            {
                log::debug!(
                    "{} {url}: {e} on a kept-alive connection: sending again",
                    method.name()
                );
                self.pooled.store(false, Ordering::Relaxed);
                let left = timeout.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Err(Failure::from_ureq(e, timeout, None));
                }
                self.once(&url, method, left)
                    .map_err(|e| Failure::from_ureq(e, timeout, None))
            }
            other => other.map_err(|e| Failure::from_ureq(e, timeout, None)),
        }
        .and_then(|(status, resp)| self.read_body(status, resp, timeout))
    }

    fn once(
        &self,
        url: &str,
        method: Method,
        timeout: Duration,
    ) -> Result<(u16, ureq::http::Response<ureq::Body>), ureq::Error> {
        // Every request gets its own limits: the connect timeout and a
        // total timeout covering the body too.
        fn limits<B>(rb: ureq::RequestBuilder<B>, timeout: Duration) -> ureq::RequestBuilder<B> {
            rb.config()
                .timeout_connect(Some(CONNECT_TIMEOUT.min(timeout)))
                .timeout_global(Some(timeout))
                .build()
        }
        let res = match method {
            Method::Get => limits(self.agent.get(url), timeout).call(),
            Method::Delete => limits(self.agent.delete(url), timeout).call(),
            Method::Post(body) => {
                let rb = self
                    .agent
                    .post(url)
                    .header("Content-Type", "application/json");
                limits(rb, timeout).send(body)
            }
        }?;
        Ok((res.status().as_u16(), res))
    }

    fn read_body(
        &self,
        status: u16,
        mut resp: ureq::http::Response<ureq::Body>,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| Failure::from_ureq(e, timeout, Some(status)))?;
        self.pooled.store(self.keep_alive, Ordering::Relaxed);
        Ok(Answer { status, body })
    }
}

/// The agent and the Mesos manager are addressed by IP literals, so no name
/// is ever looked up. ureq's default resolver would run getaddrinfo on a
/// thread spawned per request (to honour the timeout), pulling in musl's
/// DNS client; this one only parses.
#[derive(Debug)]
struct LiteralResolver;

impl ureq::unversioned::resolver::Resolver for LiteralResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().ok_or(ureq::Error::HostNotFound)?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let ip: std::net::IpAddr = host.parse().map_err(|_| ureq::Error::HostNotFound)?;
        let port = authority.port_u16().unwrap_or(80);
        let mut addrs = self.empty();
        addrs.push(SocketAddr::new(ip, port));
        Ok(addrs)
    }
}
