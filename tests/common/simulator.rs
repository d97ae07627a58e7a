//! Starts `vrouter-agent-sim` for a test and reads back what it recorded.
//!
//! The simulator is spawned from the test's thread, so it lives in the
//! test's network namespace (`enter_fresh_netns()` first) and can bind
//! loopback without clashing with other tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running simulator; killed on drop.
pub struct Sim {
    child: Child,
    /// `ip:port` it listens on.
    pub addr: String,
    pub port: u16,
    pub record: PathBuf,
    _dir: super::TempDir,
}

/// One line of the record file.
#[derive(Debug, Clone)]
pub struct Rec {
    pub method: String,
    pub path: String,
    pub body: String,
    pub status: Option<u16>,
}

impl Sim {
    /// Starts the simulator on `127.0.0.1:0` with extra `args`.
    pub fn start(args: &[&str]) -> Sim {
        Sim::start_on("127.0.0.1:0", args)
    }

    pub fn start_on(listen: &str, args: &[&str]) -> Sim {
        let dir = super::TempDir::new("sim");
        let record = dir.path().join("record.jsonl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vrouter-agent-sim"))
            .arg("--listen")
            .arg(listen)
            .arg("--record")
            .arg(&record)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn vrouter-agent-sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Sim {
            child,
            addr,
            port,
            record,
            _dir: dir,
        }
    }

    /// Every request recorded so far. The simulator appends one line per
    /// request while it runs: a last line without its newline is still
    /// being written and is not counted yet.
    pub fn requests(&self) -> Vec<Rec> {
        let mut text = std::fs::read_to_string(&self.record).unwrap_or_default();
        if !text.ends_with('\n') {
            text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
        }
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("record line is JSON");
                Rec {
                    method: v["method"].as_str().unwrap().to_string(),
                    path: v["path"].as_str().unwrap().to_string(),
                    body: v["body"].as_str().unwrap().to_string(),
                    status: v["status"].as_u64().map(|s| s as u16),
                }
            })
            .collect()
    }

    /// One raw HTTP exchange; returns (status line, headers, body).
    pub fn raw(&self, method: &str, path: &str, body: &str) -> (String, Vec<String>, String) {
        raw_http(&self.addr, method, path, body)
    }

    /// How many requests had `method` and a path starting with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    }

    /// `GET path` and parse the JSON body.
    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = self.raw("GET", path, "");
        let code = status.split(' ').nth(1).unwrap().parse().unwrap();
        (
            code,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one request with `Connection: close` and reads the whole answer.
pub fn raw_http(addr: &str, method: &str, path: &str, body: &str) -> (String, Vec<String>, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read answer");
    split_response(&out)
}

pub fn split_response(out: &str) -> (String, Vec<String>, String) {
    let (head, body) = out.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_string();
    (status, lines.map(String::from).collect(), body.to_string())
}

/// A minimal HTTP server for the Mesos manager and raw-request checks:
/// answers every request with `status` and `body`, and records the request
/// head and body before answering (so a client that got its answer finds
/// its request recorded).
pub struct Capture {
    pub port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Capture {
    pub fn start(status: u16, body: &'static str) -> Capture {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut req_body = vec![0; len];
                if r.read_exact(&mut req_body).is_err() {
                    continue;
                }
                log.lock()
                    .unwrap()
                    .push((head, String::from_utf8_lossy(&req_body).into_owned()));
                let mut w = s;
                let _ = write!(
                    w,
                    "HTTP/1.1 {status} OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Capture { port, seen }
    }

    /// Every request so far: (head, body).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// The first request: (head, body).
    pub fn request(self) -> (String, String) {
        self.requests()
            .into_iter()
            .next()
            .expect("no request was made")
    }
}
