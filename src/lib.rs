//! contrail-k8s-cni: a Kubernetes CNI plugin for the Tungsten Fabric /
//! OpenSDN vRouter. Data flows one way: env + stdin -> plan -> kernel +
//! agent -> result.

pub mod agent;
pub mod cni;
pub mod config;
pub mod deadline;
pub mod ids;
pub mod logging;
pub mod mesos;
pub mod netlink;
pub mod netns;
pub mod ops;
pub mod plugin;
pub mod store;
#[cfg(test)]
mod testutil;
pub mod vif;
