//! `engine` — the busy-poll loop that binds a driver, connections, HTTP exchanges and sinks.
//!
//! - [`host`]: many connections over one driver: four-tuple index, timers, fair transmit.
//! - [`transfer`]: one HTTP exchange as a session of the host.
//! - [`tunnel`]: the `CONNECT` before TLS through an HTTP proxy.
//! - [`segmented`]: `-x N`: one file over several connections, into one sink.
//! - [`segments`]: the plan of `-x N`'s ranges.
//! - [`body`]: where an exchange's body goes (a sink of its own, or a piece of a file).
//! - [`sim_server`]: the simulator's HTTP server, a host in passive open.
//! - [`endpoint`]: the addresses of a connection and its frame template.
//! - [`progress`]: counters the loop publishes for the progress display.
//! - [`stats`]: latency histograms for `--stats`.
//! - [`error`]: why a transfer failed, with wget's exit codes.

pub mod body;
pub mod endpoint;
pub mod error;
pub mod fetch;
pub mod host;
pub mod lookup;
pub mod network;
pub mod progress;
pub mod runtime;
pub mod segmented;
pub mod segments;
pub mod sim_server;
pub mod simulate;
pub mod stats;
pub mod thread_share;
pub mod transfer;
pub mod tunnel;

pub use endpoint::Endpoint;
pub use error::EngineError;
pub use transfer::{TransferEnd, TransferFailure, TransferOptions};
