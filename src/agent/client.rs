//! The poll client: what the plugin asks the agent, each call within the
//! command's one [`Deadline`] (docs/agent-api.md §12).
//!
//! No request and no sleep goes past the deadline: a request gets the
//! smaller of the per-request timeout and the time left, and a sleep that
//! would leave no time for another attempt ends the call instead. Answers
//! that are not complete yet are polled again (first sleep 25 ms, doubling
//! up to the poll timeout); answers that can never be used fail at once
//! with code 101; a deadline that passes is code 11, naming the agent, the
//! VM, the attempts and the last answer.

use super::http::{Answer, Failure, Http, Method};
use super::wire::{self, PortRequest, Reject, VmiConfig, VmiOper};
use crate::cni::error::{code, Error, Result};
use crate::deadline::Deadline;
use crate::ids::{Uuid, VmName};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// First sleep between attempts: a pod starts within milliseconds of the
/// agent becoming ready.
const FIRST_SLEEP: Duration = Duration::from_millis(25);
/// Bounds of one request's timeout (the poll timeout, clamped): shorter
/// fails spuriously on a busy node, longer only delays the retry.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one agent.
pub struct Agent {
    http: Http,
    poll_timeout: Duration,
}

/// What a classifier makes of one HTTP answer.
enum Step<T> {
    Done(T),
    /// Not yet: the reason, for the log and the final message.
    Again(String),
    Fail(Error),
}

impl Agent {
    /// A client of the agent at `addr`; nothing is contacted yet.
    /// `poll_timeout` caps one request (within 100 ms..=5 s) and the sleep
    /// between attempts. Connections are kept alive for the process.
    pub fn new(addr: SocketAddr, poll_timeout: Duration) -> Agent {
        Agent::with_keep_alive(addr, poll_timeout, true)
    }

    /// [`Agent::new`], choosing whether to keep connections alive (the
    /// benchmark compares both).
    pub fn with_keep_alive(addr: SocketAddr, poll_timeout: Duration, keep_alive: bool) -> Agent {
        Agent {
            http: Http::new(addr, keep_alive),
            poll_timeout,
        }
    }

    /// `ip:port` (IPv6 in brackets), for messages.
    pub fn address(&self) -> String {
        self.http.peer()
    }

    fn request_timeout(&self) -> Duration {
        self.poll_timeout
            .clamp(MIN_REQUEST_TIMEOUT, MAX_REQUEST_TIMEOUT)
    }

    /// `GET /vm-cfg/<vm>` until the VMI list is complete: every VMI valid,
    /// the list consistent, as many as the `index` total says. Returns the
    /// VMIs sorted by index (0 = the cluster network). An invalid list is
    /// code 101 at once; code 11 when the deadline passes.
    pub fn poll_vm_cfg(&self, vm: &VmName, deadline: &Deadline) -> Result<Vec<VmiConfig>> {
        let path = format!("/vm-cfg/{vm}");
        let what = format!("the interfaces of VM {vm}");
        self.run(Method::Get, &path, &what, deadline, true, |a| {
            self.ready(a, &what, &path, wire::decode_vm_cfg(&a.body))
        })
    }

    /// `GET /vm/<vm>` (or `/vm/<vm>/<vmi>` for one VMI) until each VMI of
    /// `vmis` has an address; returns them in the order asked. Code 101 for
    /// an invalid answer, 11 when the deadline passes.
    pub fn poll_vm(&self, vm: &Uuid, vmis: &[&Uuid], deadline: &Deadline) -> Result<Vec<VmiOper>> {
        let path = match vmis {
            [] => return Ok(Vec::new()),
            [one] => format!("/vm/{vm}/{one}"),
            _ => format!("/vm/{vm}"),
        };
        let what = format!("the IP addresses of VM {vm}");
        self.run(Method::Get, &path, &what, deadline, true, |a| {
            let picked =
                wire::decode_vm(&a.body, vm).and_then(|opers| wire::pick_ready(&opers, vmis));
            self.ready(a, &what, &path, picked)
        })
    }

    /// One `GET /vm/<vm>/<vmi>` (CHECK, doctor): the VMI as the agent has it
    /// now, with or without an address; None on 404 or when the answer
    /// does not list it. No answer is code 11, an invalid one 101.
    pub fn get_vmi(&self, vm: &Uuid, vmi: &Uuid, deadline: &Deadline) -> Result<Option<VmiOper>> {
        let path = format!("/vm/{vm}/{vmi}");
        let what = format!("GET {path}");
        self.run(Method::Get, &path, &what, deadline, false, |a| {
            match a.status {
                200 => match wire::decode_vm(&a.body, vm) {
                    Ok(opers) => Step::Done(opers.into_iter().find(|o| o.id == *vmi)),
                    Err(r) => Step::Fail(self.invalid(&what, &path, r.reason())),
                },
                404 => Step::Done(None),
                _ => Step::Fail(a.clone().into_error(&self.who(), &what)),
            }
        })
    }

    /// `POST /vm`: subscribes the host interface to the VMI. 200 or 201 is
    /// success, another status code 101 with the agent's text. A request
    /// that got no answer (refused, timed out) is sent again within the
    /// deadline: the agent's port add is idempotent.
    pub fn post_vm(&self, req: &PortRequest, deadline: &Deadline) -> Result<()> {
        let body = req.to_json();
        let what = format!("POST /vm for VMI {} ({})", req.vmi_uuid, req.host_ifname);
        self.run(
            Method::Post(&body),
            "/vm",
            &what,
            deadline,
            true,
            |a| match a.status {
                200 | 201 => Step::Done(()),
                _ => Step::Fail(a.clone().into_error(&self.who(), &what)),
            },
        )
    }

    /// `DELETE /vm/<vm>`, sent again within the deadline when nothing
    /// answered. The agent answers 200 for anything that matches the route,
    /// so success proves little (docs/agent-api.md §5).
    pub fn delete_vm(&self, vm: &Uuid, deadline: &Deadline) -> Result<()> {
        let path = format!("/vm/{vm}");
        let what = format!("DELETE {path}");
        self.run(Method::Delete, &path, &what, deadline, true, |a| {
            match a.status {
                200 => Step::Done(()),
                _ => Step::Fail(a.clone().into_error(&self.who(), &what)),
            }
        })
    }

    /// One `GET /vm-cfg/<vm>`: the uuid the agent knows the VM by, None
    /// when it does not know the VM (404) or its list is not complete or
    /// usable. It confirms that a VM uuid read from a file is this pod's.
    pub fn vm_uuid_of(&self, vm: &VmName, deadline: &Deadline) -> Result<Option<Uuid>> {
        let path = format!("/vm-cfg/{vm}");
        let what = format!("GET {path}");
        self.run(Method::Get, &path, &what, deadline, false, |a| {
            match (a.status, wire::decode_vm_cfg(&a.body)) {
                (200, Ok(vmis)) => Step::Done(vmis.first().map(|v| v.vm_uuid.clone())),
                (200, Err(_)) | (404, _) => Step::Done(None),
                _ => Step::Fail(a.clone().into_error(&self.who(), &what)),
            }
        })
    }

    /// Is the agent up? Any HTTP answer within `timeout` proves it (STATUS,
    /// doctor); returns how long the answer took. `GET /` is not a route,
    /// so a live agent says 404 `Unknown Request`, inline: unlike
    /// `/vm-cfg` it cannot hang. No answer is code 50.
    pub fn probe(&self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        let timeout = timeout.max(Duration::from_millis(1));
        match self.http.exchange(Method::Get, "/", timeout) {
            Ok(a) => {
                let took = start.elapsed();
                log::debug!("{}: probe: HTTP {} in {took:?}", self.who(), a.status);
                Ok(took)
            }
            Err(Failure::TooLarge(_)) => Ok(start.elapsed()),
            Err(Failure::Transport(e) | Failure::Fatal(e)) => Err(Error::new(
                code::NOT_AVAILABLE,
                format!("{} is not reachable: {e}", self.who()),
            )),
        }
    }

    fn who(&self) -> String {
        format!("vRouter agent at {}", self.http.peer())
    }

    /// The classifier of the two poll phases: 200 with a complete answer is
    /// done, a 200 that is not complete and any other status are not yet
    /// (404 means "not yet" as much as "never", docs/agent-api.md §9), an
    /// invalid answer fails.
    fn ready<T>(
        &self,
        a: &Answer,
        what: &str,
        path: &str,
        decoded: std::result::Result<T, Reject>,
    ) -> Step<T> {
        if a.status != 200 {
            return Step::Again(format!("HTTP {}: {}", a.status, wire::error_text(&a.body)));
        }
        match decoded {
            Ok(v) => Step::Done(v),
            Err(Reject::NotYet(why)) => Step::Again(format!("HTTP 200: {why}")),
            Err(Reject::Invalid(why)) => Step::Fail(self.invalid(what, path, &why)),
        }
    }

    fn invalid(&self, what: &str, path: &str, why: &str) -> Error {
        Error::new(
            code::AGENT,
            format!(
                "{} sent an invalid answer for {what} (GET {path}): {why}",
                self.who()
            ),
        )
    }

    /// The one request loop: send `method path` and hand each HTTP answer to
    /// `classify`. With `retry`, "not yet" and no answer are tried again
    /// after a sleep, while the deadline leaves time for it; without, the
    /// first failure is final.
    fn run<T>(
        &self,
        method: Method,
        path: &str,
        what: &str,
        deadline: &Deadline,
        retry: bool,
        classify: impl Fn(&Answer) -> Step<T>,
    ) -> Result<T> {
        let start = Instant::now();
        let budget = deadline.remaining();
        let max_sleep = self.poll_timeout.max(Duration::from_millis(1));
        let mut sleep = FIRST_SLEEP.min(max_sleep);
        let mut attempts = 0u32;
        let mut last = String::from("none, the deadline had passed");
        loop {
            let timeout = deadline.cap(self.request_timeout());
            if timeout.is_zero() {
                return Err(self.out_of_time(method, path, what, attempts, start, budget, &last));
            }
            attempts += 1;
            last = match self.http.exchange(method, path, timeout) {
                Ok(a) => match classify(&a) {
                    Step::Done(v) => {
                        log::info!(
                            "{}: {} {path}: HTTP {} after {attempts} attempt(s), {} ms",
                            self.who(),
                            method.name(),
                            a.status,
                            start.elapsed().as_millis()
                        );
                        return Ok(v);
                    }
                    Step::Again(why) => why,
                    Step::Fail(e) => return Err(e),
                },
                Err(Failure::Transport(e)) if retry => e,
                Err(f) => return Err(f.into_error(&self.who(), what)),
            };
            log::debug!(
                "{}: {} {path} attempt {attempts}: not done: {last}",
                self.who(),
                method.name()
            );
            if !retry {
                return Err(Error::new(
                    code::TRY_AGAIN_LATER,
                    format!("{what}: {}: {last}", self.who()),
                ));
            }
            // A sleep that would reach the deadline leaves no time for
            // another attempt: stop now rather than wait to fail.
            if deadline.remaining() <= sleep {
                return Err(self.out_of_time(method, path, what, attempts, start, budget, &last));
            }
            std::thread::sleep(sleep);
            sleep = (sleep * 2).min(max_sleep);
        }
    }

    /// Code 11: the deadline leaves no time for another attempt.
    #[allow(clippy::too_many_arguments)]
    fn out_of_time(
        &self,
        method: Method,
        path: &str,
        what: &str,
        attempts: u32,
        start: Instant,
        budget: Duration,
        last: &str,
    ) -> Error {
        Error::new(
            code::TRY_AGAIN_LATER,
            format!(
                "{what}: {} gave no usable answer within {} ms ({attempts} attempts, {} {path}); last answer: {last}",
                self.who(),
                start.elapsed().as_millis(),
                method.name()
            ),
        )
        .with_details(format!(
            "{} ms of the command's deadline were left at the first attempt; is the agent running and has kube-manager created the pod's interfaces?",
            budget.as_millis()
        ))
    }
}
