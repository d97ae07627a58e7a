//! STATUS (CNI 1.1): can the plugin serve ADD right now? The agent must
//! answer HTTP (any answer: it has no status route, a 404 "Unknown Request"
//! proves it is up) and the state directory must be writable. Nothing is
//! created but a probe file that is removed at once.

use super::{Ctx, Request};
use crate::cni::error::{code, Error, Result};
use std::time::Duration;

/// The whole STATUS must finish within about a second when the agent is down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(900);

pub fn status(req: &Request) -> Result<()> {
    let ctx = Ctx::new(req, PROBE_TIMEOUT);
    ctx.agent.probe(PROBE_TIMEOUT).map_err(|e| {
        Error::new(
            code::NOT_AVAILABLE,
            format!("vRouter agent at {} is not answering", ctx.agent.address()),
        )
        .with_details(e.msg)
    })?;
    ctx.store
        .probe_writable()
        .map_err(|e| Error::new(code::NOT_AVAILABLE, format!("config-dir: {}", e.msg)))
}
