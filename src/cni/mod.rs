//! The CNI protocol, nothing Contrail-specific: environment, versions,
//! results, errors.

pub mod args;
pub mod error;
pub mod result;
pub mod version;

pub use error::{code, Context, Error, Result};
