//! Why a transfer failed, as one sentence for the user and a wget exit code.

use std::net::SocketAddr;

use crate::driver::DriverError;
use crate::http::HttpError;
use crate::sink::SinkError;
use crate::tls::TlsError;
use crate::wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("connecting to {remote} timed out")]
    ConnectTimeout { remote: SocketAddr },
    #[error("connection to {remote} refused")]
    Refused { remote: SocketAddr },
    #[error("{remote} reset the connection")]
    Reset { remote: SocketAddr },
    #[error("{remote} stopped acknowledging our segments; the connection timed out")]
    RetransmissionsExhausted { remote: SocketAddr },
    #[error("no data from {remote} for {seconds} s (read timeout)")]
    ReadTimeout { remote: SocketAddr, seconds: u64 },
    #[error("{remote} sent fewer than {bytes_per_second} bytes/s for {seconds} s (--speed-limit)")]
    TooSlow {
        remote: SocketAddr,
        bytes_per_second: u64,
        seconds: u64,
    },
    #[error("internal error: a segment did not fit its frame: {0}")]
    Frame(#[from] WireError),
    #[error("unable to resolve host address '{host}'")]
    Resolve { host: String },
    #[error("{count} redirections exceeded")]
    TooManyRedirects { count: u32 },
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Setup(String),
    /// A segmented download found that the file on the server is not the one it started
    /// with: its ranges would come from two versions.
    #[error("the file changed on the server during the download: {0}")]
    Changed(&'static str),
    /// A 401 that stays (wget's "Username/Password Authentication Failed", exit 6).
    #[error("{0}")]
    Auth(String),
}

impl EngineError {
    /// wget's exit code class: 3 file I/O, 4 network, 5 TLS, others from the HTTP layer.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Http(e) => e.exit_code(),
            EngineError::Sink(_) => 3,
            EngineError::Tls(e) => e.exit_code(),
            EngineError::Frame(_)
            | EngineError::Setup(_)
            | EngineError::Changed(_)
            | EngineError::Interrupted => 1,
            EngineError::TooManyRedirects { .. } => 8,
            EngineError::Resolve { .. } => 4,
            EngineError::Auth(_) => 6,
            EngineError::Driver(_)
            | EngineError::ConnectTimeout { .. }
            | EngineError::Refused { .. }
            | EngineError::Reset { .. }
            | EngineError::RetransmissionsExhausted { .. }
            | EngineError::ReadTimeout { .. }
            | EngineError::TooSlow { .. } => 4,
        }
    }

    /// Whether trying again may help (wget retries network errors, not fatal ones).
    pub fn is_retryable(&self) -> bool {
        self.exit_code() == 4
    }
}
