//! `cli` — command-line arguments, progress, exit codes and report printing.

pub mod svg;
pub mod trace;

use std::process::ExitCode;

/// Entry point of the `xdpget` binary.
pub fn main() -> ExitCode {
    eprintln!("xdpget: not built yet");
    ExitCode::from(1)
}
