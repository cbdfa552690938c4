//! `engine` — the busy-poll loop that binds a driver, a connection, an HTTP exchange and a sink.
//!
//! - [`transfer`]: one request on one connection — the loop itself.
//! - [`endpoint`]: the addresses of a connection and its frame template.
//! - [`progress`]: counters the loop publishes for the progress display.
//! - [`stats`]: latency histograms for `--stats`.
//! - [`error`]: why a transfer failed, with wget's exit codes.

pub mod endpoint;
pub mod error;
pub mod fetch;
pub mod network;
pub mod progress;
pub mod segments;
pub mod simulate;
pub mod stats;
pub mod transfer;

pub use endpoint::Endpoint;
pub use error::EngineError;
pub use transfer::{TransferEnd, TransferFailure, TransferOptions};
