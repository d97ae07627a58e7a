//! The vRouter agent's port-IPC API (docs/agent-api.md): the JSON decoded
//! into checked values ([`wire`]), the HTTP transport ([`http`]) and the
//! poll client ([`Agent`]), every call bounded by the command's deadline.

mod client;
pub mod http;
pub mod wire;

pub use client::Agent;
pub use wire::{Annotations, PortRequest, Reject, VmiConfig, VmiOper, MAX_VMIS, NO_VLAN};
