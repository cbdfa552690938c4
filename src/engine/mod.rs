//! `engine` — the busy-poll loop that binds a driver, a connection, an HTTP exchange and a sink.

pub mod progress;
pub mod stats;
