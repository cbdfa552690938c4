//! Exit codes, as wget documents them (wget(1), "EXIT STATUS").

use std::process::ExitCode;

/// Why xdpget stopped. The numeric values are wget's, so scripts written for wget work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// No problems occurred.
    Ok = 0,
    /// Generic error code.
    Generic = 1,
    /// Parse error: a bad command-line option or URL.
    Parse = 2,
    /// File I/O error: the output could not be created, written or grown.
    FileIo = 3,
    /// Network failure: no route, refused, timed out, reset, or a body that ended early.
    Network = 4,
    /// SSL verification failure (kept for wget compatibility; xdpget has no TLS yet).
    Tls = 5,
    /// Username/password authentication failure.
    Auth = 6,
    /// Protocol errors: the server's answer was not valid HTTP.
    Protocol = 7,
    /// Server issued an error response (4xx, 5xx).
    ServerError = 8,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
