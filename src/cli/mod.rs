//! `cli` — command-line arguments, progress, exit codes and report printing.

pub mod args;
pub mod exit;
pub mod progress;

use std::process::ExitCode;

use clap::Parser;

use self::args::Cli;
use self::exit::Exit;

/// Entry point of the `xdpget` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = cli;
    eprintln!("xdpget: not built yet");
    Exit::Generic.into()
}
