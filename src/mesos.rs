//! The Mesos manager notification (docs/agent-api.md §11): `POST
//! /add_cni_info` or `/del_cni_info` with `{"cid","cmd","args"}`, through the
//! agent's transport and within the command's deadline.

use crate::agent::http::{Failure, Http, Method};
use crate::cni::error::Result;
use crate::deadline::Deadline;
use crate::ids::ContainerId;
use std::net::SocketAddr;
use std::time::Duration;

/// Upper bound of the one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The command the manager is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Add,
    Del,
}

impl Cmd {
    fn route(self) -> &'static str {
        match self {
            Cmd::Add => "/add_cni_info",
            Cmd::Del => "/del_cni_info",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "ADD",
            Cmd::Del => "DEL",
        }
    }
}

/// Tells the Mesos manager at `addr` about `cmd` for `container`; `stdin`
/// is the raw network configuration, sent as a string. One request, sent
/// once (nothing says the manager's routes are idempotent): 200 is
/// success, another status code 101, no answer (or no time left) code 11.
pub fn notify(
    addr: SocketAddr,
    cmd: Cmd,
    container: &ContainerId,
    stdin: &str,
    deadline: &Deadline,
) -> Result<()> {
    let route = cmd.route();
    let body =
        serde_json::json!({ "cid": container, "cmd": cmd.name(), "args": stdin }).to_string();
    let what = format!("Mesos manager POST {route}");
    let http = Http::new(addr, false);
    let peer = http.peer();
    let timeout = deadline.cap(REQUEST_TIMEOUT);
    if timeout.is_zero() {
        return Err(
            Failure::Transport("no time left before the deadline".into()).into_error(&peer, &what),
        );
    }
    let answer = http
        .exchange(Method::Post(&body), route, timeout)
        .map_err(|f| f.into_error(&peer, &what))?;
    log::info!("{what} to {peer}: HTTP {}", answer.status);
    match answer.status {
        200 => Ok(()),
        _ => Err(answer.into_error(&peer, &what)),
    }
}
