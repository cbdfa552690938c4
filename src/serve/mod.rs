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
//! | `mapped` | a file body mapped read-only under a read lease, lent to TCP ([`MappedFile`]) |
//! | `opener` | the `xdpget-open` thread: paths resolved, files opened and mapped off the busy-poll thread |
//! | `listing` | a directory without `index.html` → a plain HTML listing |
//! | `log` | the access log line (Common Log Format) |
//! | `session` | one connection: heads in, responses out, keep-alive, timeouts ([`ServerSession`]) |
//! | `connection` | a session as the engine host's [`crate::engine::host::Session`], and the listener |
//! | `run` | the loop: the host over a driver until a stop signal |
//! | `sim` | the server as the simulator's far end, for tests without root |
//!
//! A file body is copied once: from a read-only mapping of the file into the transmit
//! frames (the connection's send buffer only refers to the mapping), with a read lease that
//! keeps the file from being truncated under it; a file that cannot be leased is read with
//! `pread` instead. See docs/design.md ("xdpget serve").

pub mod connection;
pub mod listing;
pub mod log;
pub mod mapped;
pub mod opener;
pub mod paths;
pub mod respond;
pub mod run;
pub mod session;
pub mod sim;

pub use connection::{
    LogSink, ServeConfig, ServeConnection, listen, listen_with_opener, server_tcp_config,
};
pub use log::AccessLogEntry;
pub use mapped::MappedFile;
pub use paths::Root;
pub use respond::{Body, Response};
pub use session::{Outgoing, ServerSession, SessionEnd, SessionLimits};
