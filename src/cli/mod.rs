//! `cli` — command-line arguments, progress, exit codes and report printing.

pub mod args;
pub mod download;
pub mod exit;
pub mod log;
pub mod privileges;
pub mod progress;
pub mod serve;
pub mod signals;
pub mod sim;
pub mod svg;
pub mod trace;

use std::process::ExitCode;

use clap::Parser;

use self::args::{Cli, Command};

/// Entry point of the `xdpget` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(args::wget_spellings(std::env::args_os()));
    match &cli.command {
        Some(Command::Sim(args)) => sim::main(args),
        Some(Command::Serve(args)) => serve::main(args),
        None => download::main(&cli.download),
    }
}
