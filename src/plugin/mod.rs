//! Orchestration: each CNI command, with rollback. Owned by the lead.

use crate::cni::args::Env;
use crate::cni::error::Result;
use crate::cni::result::CniResult;
use crate::config::NetConf;

/// One invocation: validated environment plus merged configuration.
pub struct Request {
    pub env: Env,
    pub conf: NetConf,
}

pub fn add(req: &Request) -> Result<CniResult> {
    let _ = req;
    todo!("lead")
}

pub fn del(req: &Request) -> Result<()> {
    let _ = req;
    todo!("lead")
}

pub fn check(req: &Request) -> Result<()> {
    let _ = req;
    todo!("lead")
}

pub fn status(req: &Request) -> Result<()> {
    let _ = req;
    todo!("lead")
}

pub fn gc(req: &Request) -> Result<()> {
    let _ = req;
    todo!("lead")
}
