//! Making answers off the busy-poll thread: a thread named `xdpget-open` resolves each
//! request's path, opens, leases and maps the file (or reads the directory for a listing)
//! and sends the finished [`Response`] back; the loop hands it to its connection.
//!
//! Everything that may wait for the disk — `canonicalize`, `open`, `fstat`, the lease,
//! `mmap`, `readdir` — happens here, so a slow disk (or a cold directory) stalls only the
//! request that needs it, never every connection's packets. What stays on the busy-poll
//! thread is what is bounded: parsing the head, and copying the body from the mapping.
//!
//! ```text
//! ServerSession (deferred) ─ take_open_job ─► ServeConnection ─ OpenJob ─► xdpget-open
//!      ▲                                                              respond(root, head)
//!      └─ on_response ◄─ ServeConnection::deliver ◄─ loop: Opener::try_answer ◄─ OpenAnswer
//! ```
//!
//! An answer names its connection by four-tuple (the host finds the handle); an answer for
//! a connection that is gone is dropped. The simulator's server answers inline instead
//! (`ServerSession` without `defer_opens`): virtual time cannot wait for a thread.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use super::paths::Root;
use super::respond::{Response, respond};
use crate::http::server_request::RequestHead;

/// The connection an answer is for: its four-tuple (to find it in the host) and the
/// listener's serial number of it (a new connection on the same four-tuple, the client
/// having reused its port, must not take its predecessor's answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenToken {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub serial: u64,
}

/// One request to answer.
pub struct OpenJob {
    pub token: OpenToken,
    pub root: Arc<Root>,
    pub head: RequestHead,
    /// The wall clock for `Date`, seconds since the epoch.
    pub wall: i64,
}

/// One finished answer.
pub struct OpenAnswer {
    pub token: OpenToken,
    pub response: Response,
}

/// Where connections send their jobs (cheap to clone, one per connection).
#[derive(Clone)]
pub struct OpenSubmitter {
    jobs: Sender<OpenJob>,
    outstanding: Arc<AtomicUsize>,
}

impl OpenSubmitter {
    /// Queues `job`; gives it back if the opener thread is gone.
    pub fn submit(&self, job: OpenJob) -> Result<(), Box<OpenJob>> {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        self.jobs.send(job).map_err(|e| {
            self.outstanding.fetch_sub(1, Ordering::Relaxed);
            Box::new(e.0)
        })
    }
}

/// The opener thread and the loop's end of its channels. Dropping it ends the thread
/// (once every submitter is gone too) and waits for it.
pub struct Opener {
    submitter: Option<OpenSubmitter>,
    answers: Receiver<OpenAnswer>,
    thread: Option<JoinHandle<()>>,
}

impl Opener {
    /// Starts the thread.
    pub fn start() -> io::Result<Opener> {
        let (jobs, job_rx) = channel::<OpenJob>();
        let (answer_tx, answers) = channel::<OpenAnswer>();
        let thread = std::thread::Builder::new()
            .name("xdpget-open".to_string())
            .spawn(move || {
                for job in job_rx {
                    let response = respond(&job.root, &job.head, job.wall);
                    let answer = OpenAnswer {
                        token: job.token,
                        response,
                    };
                    if answer_tx.send(answer).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Opener {
            submitter: Some(OpenSubmitter {
                jobs,
                outstanding: Arc::new(AtomicUsize::new(0)),
            }),
            answers,
            thread: Some(thread),
        })
    }

    /// A submitter for the listener's connections.
    pub fn submitter(&self) -> OpenSubmitter {
        self.submitter.clone().expect("set until drop")
    }

    /// The next finished answer, if any (never blocks).
    pub fn try_answer(&self) -> Option<OpenAnswer> {
        let answer = self.answers.try_recv().ok()?;
        if let Some(submitter) = &self.submitter {
            submitter.outstanding.fetch_sub(1, Ordering::Relaxed);
        }
        Some(answer)
    }

    /// Jobs submitted and not yet taken back with `try_answer`: while there are some, the
    /// loop must not sleep long (the thread cannot wake it).
    pub fn outstanding(&self) -> usize {
        self.submitter
            .as_ref()
            .map_or(0, |s| s.outstanding.load(Ordering::Relaxed))
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        // The thread ends when every sender is gone: ours here, the connections' with the
        // host (dropped before the opener by the caller).
        self.submitter = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::server_request::parse_request;
    use crate::serve::respond::Body;
    use std::time::Duration;

    #[test]
    fn answers_come_back_from_the_thread_with_their_token() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), b"aaaa").unwrap();
        let root = Arc::new(Root::new(tmp.path()).unwrap());
        let opener = Opener::start().unwrap();
        let submitter = opener.submitter();
        let token = |port| OpenToken {
            local: SocketAddr::from(([10, 0, 0, 2], 8080)),
            remote: SocketAddr::from(([10, 0, 0, 1], port)),
            serial: u64::from(port),
        };
        for (port, target) in [(1000, "/a.txt"), (1001, "/missing")] {
            let text = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            let head = parse_request(text.as_bytes()).unwrap().unwrap();
            let job = OpenJob {
                token: token(port),
                root: Arc::clone(&root),
                head,
                wall: 0,
            };
            assert!(submitter.submit(job).is_ok());
        }
        let mut answers = Vec::new();
        for _ in 0..500 {
            answers.extend(opener.try_answer());
            if answers.len() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(answers.len(), 2, "the thread answered");
        assert_eq!(opener.outstanding(), 0);
        assert_eq!(answers[0].token, token(1000));
        assert_eq!(answers[0].response.status, 200);
        assert!(matches!(answers[0].response.body, Body::Mapped { .. }));
        assert_eq!(answers[1].token, token(1001));
        assert_eq!(answers[1].response.status, 404);
        drop(submitter);
        drop(opener);
    }
}
