//! `serve/` — `xdpget serve`: a static file server on the same TCP engine. It sits above
//! `engine` (its connections are sessions of the engine's host), beside `cli`.
//!
//! The request head is parsed by the `http` layer
//! ([`crate::http::server_request`]); this module decides what to answer and sends it:
//!
//! | file | job |
//! |---|---|
//! | `paths` | request-target → a file under the served directory, never outside it ([`Root`]) |
//! | `respond` | request + file → status, header fields, body source ([`Response`]) |
//! | `listing` | a directory without `index.html` → a plain HTML listing |
//! | `log` | the access log line (Common Log Format) |
//! | `session` | one connection: heads in, responses out, keep-alive, timeouts ([`ServerSession`]) |
//! | `connection` | a session as the engine host's [`crate::engine::host::Session`], and the listener |
//! | `run` | the loop: the host over a driver until a stop signal |
//! | `sim` | the server as the simulator's far end, for tests without root |
//!
//! File bodies are read with `pread` straight into the transmit buffer the caller hands
//! [`ServerSession::fill`]; see docs/design.md ("xdpget serve") for why not an mmap.

pub mod connection;
pub mod listing;
pub mod log;
pub mod paths;
pub mod respond;
pub mod run;
pub mod session;
pub mod sim;

pub use connection::{LogSink, ServeConfig, ServeConnection, listen, server_tcp_config};
pub use log::AccessLogEntry;
pub use paths::Root;
pub use respond::{Body, Response};
pub use session::{Outgoing, ServerSession, SessionEnd, SessionLimits};
