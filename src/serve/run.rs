//! The server's loop: one host of [`ServeConnection`]s over one driver, until a stop signal.
//!
//! The same loop runs over AF_XDP, the raw socket and the simulator (the driver supplies
//! the clock and the waiting, docs/design.md "The driver supplies the clock").

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::connection::ServeConnection;
use super::opener::Opener;
use crate::driver::Driver;
use crate::engine::EngineError;
use crate::engine::host::Host;

/// How the loop idles.
#[derive(Clone, Copy, Debug)]
pub struct LoopOptions {
    /// Busy-poll this long with nothing to do before blocking in the driver's wait.
    pub idle_before_wait: Duration,
    /// The longest single wait, so that a stop signal is seen within it.
    pub max_wait: Duration,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            idle_before_wait: Duration::from_millis(2),
            max_wait: Duration::from_millis(100),
        }
    }
}

/// What the loop did, for the last line of `xdpget serve`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeSummary {
    pub connections: u64,
    pub requests: u64,
}

/// Serves until `stop` is set (or `until` says so, for tests), then resets every
/// connection and sends the resets. A driver error ends it. With an `opener` (the
/// listener's connections submit to it, [`super::listen_with_opener`]), its answers are
/// handed to their connections at every turn, and the loop does not sleep while some are
/// outstanding (the opener thread cannot wake it).
pub fn serve<D: Driver>(
    driver: &mut D,
    host: &mut Host<ServeConnection>,
    opener: Option<&Opener>,
    options: LoopOptions,
    stop: &AtomicBool,
    mut until: impl FnMut(&Host<ServeConnection>, &ServeSummary) -> bool,
) -> Result<ServeSummary, EngineError> {
    let mut summary = ServeSummary::default();
    let mut idle_since = None;
    loop {
        let now = driver.now();
        let mut answered = false;
        while let Some(answer) = opener.and_then(Opener::try_answer) {
            answered = true;
            let token = answer.token;
            if let Some(handle) = host.find(token.local, token.remote)
                && let Some(connection) = host.session_mut(handle)
            {
                connection.deliver(token, answer.response);
                host.wake(handle);
            }
        }
        let step = host.poll(driver, now)?;
        while let Some((_, finished)) = host.take_finished() {
            summary.requests += u64::from(finished.served());
        }
        summary.connections = host.counters().accepted;
        if stop.load(Ordering::Relaxed) || until(host, &summary) {
            host.abort_all();
            host.flush(driver, now)?;
            return Ok(summary);
        }
        let waiting_for_opener = opener.is_some_and(|o| o.outstanding() > 0);
        if step.received == 0 && step.sent == 0 && !answered && !waiting_for_opener {
            let since = *idle_since.get_or_insert(now);
            if now - since >= options.idle_before_wait {
                let deadline = host
                    .poll_timeout()
                    .map_or(now + options.max_wait, |t| t.min(now + options.max_wait));
                driver.wait(Some(deadline))?;
                idle_since = None;
            }
        } else {
            idle_since = None;
        }
    }
}
